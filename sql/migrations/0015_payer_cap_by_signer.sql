-- 0015: the open-payments cap per payer (MAX_PENDING_PER_PAYER) counts an EOA's payments and a contract
-- wallet's apart. A contract wallet's signature is accepted by its shape and checked on chain later
-- (shared/x402/wallets.py), so anyone can post "contract-signed" payments naming any payer; counted
-- with the payer's own, they could fill its cap and lock a real EOA buyer out. An EOA's payments carry
-- a signature checked at acceptance (65 bytes: "0x" and 130 hex digits); those are the payer's own.
CREATE OR REPLACE FUNCTION reserve_supply_and_limit_payers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer := nullif(current_setting('x402.max_pending_per_payer', true), '')::integer;
    r record;
    over_cap text;
BEGIN
    IF cap IS NOT NULL THEN
        FOR r IN SELECT DISTINCT hashtextextended('x402-payer:' || payer, 0) AS k FROM inserted ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(r.k);
        END LOOP;
        SELECT i.payer INTO over_cap
          FROM (SELECT DISTINCT payer, length(signature) = 132 AS eoa FROM inserted) AS i
         WHERE (SELECT count(*) FROM payment_queue AS p
                 WHERE p.payer = i.payer AND (length(p.signature) = 132) = i.eoa
                   AND p.status IN ('pending', 'processing', 'sent')) > cap
         LIMIT 1;
        IF over_cap IS NOT NULL THEN
            RAISE EXCEPTION 'payer % already has % open payments', over_cap, cap USING ERRCODE = 'XM002';
        END IF;
    END IF;
    FOR r IN SELECT token_address, sum(quantity)::bigint AS quantity FROM inserted GROUP BY 1 ORDER BY 1 LOOP
        PERFORM reserve_supply(r.token_address, r.quantity);
    END LOOP;
    RETURN NULL;
END $$;

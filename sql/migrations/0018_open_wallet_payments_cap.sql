-- 0018: at most MAX_PENDING_WALLET_PAYMENTS contract-signed payments open at once, over all payers.
-- A contract wallet's signature is only checked on chain (payment-sender's pre-flight), so anyone can
-- post such payments naming any payer — fresh payers pass the per-payer cap (0015) — and each reserves
-- supply until its pre-flight fails it: without a cap a flood of them could hold the whole supply, and
-- every buyer would hear sold_out. EOA-signed payments (checked at acceptance) never count here. The
-- API sets the cap as the session setting x402.max_pending_wallet_payments; over it the statement is
-- refused with XM002, the API's 429 with Retry-After.
CREATE INDEX payment_queue_open_wallet_payments ON payment_queue (created_at)
 WHERE length(signature) <> 132 AND status IN ('pending', 'processing', 'sent');

CREATE OR REPLACE FUNCTION reserve_supply_and_limit_payers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer := nullif(current_setting('x402.max_pending_per_payer', true), '')::integer;
    wallet_cap integer := nullif(current_setting('x402.max_pending_wallet_payments', true), '')::integer;
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
    IF wallet_cap IS NOT NULL AND EXISTS (SELECT 1 FROM inserted WHERE length(signature) <> 132) THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('x402-wallet-payments', 0));
        IF (SELECT count(*) FROM payment_queue
             WHERE length(signature) <> 132 AND status IN ('pending', 'processing', 'sent')) > wallet_cap THEN
            RAISE EXCEPTION 'more than % contract-signed payments are open', wallet_cap USING ERRCODE = 'XM002';
        END IF;
    END IF;
    FOR r IN SELECT token_address, sum(quantity)::bigint AS quantity FROM inserted GROUP BY 1 ORDER BY 1 LOOP
        PERFORM reserve_supply(r.token_address, r.quantity);
    END LOOP;
    RETURN NULL;
END $$;

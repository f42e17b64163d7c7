-- 0009: supply reservations spread over slots, and payments accepted in groups, so that accepting
-- payments of one token no longer queues every insert behind one row lock.
--
-- Until now (0004) each accepted payment updated tokens.reserved_mints from a row trigger: every
-- insert of a token waited for the previous one to commit, which capped the ingress at a few hundred
-- payments per second. Now a token's unreserved supply is split over 16 rows of
-- token_supply_slots, each counting the mint units still free in it:
--
-- * Reserve (payments are accepted, or a failed one is requeued): take the quantity from the
--   transaction's home slot (its transaction id mod 16: transactions running at the same time mostly
--   land on different rows, and all of one transaction's reservations on the same row). If that slot
--   cannot hold it, rebalance: lock every slot of the token in slot order, and if their sum holds the
--   quantity, take it and spread what is left evenly over the slots; else refuse (XM001 sold_out, as
--   before). So "sold out" stays exact: a payment is refused only when the token's whole free supply
--   cannot hold it.
-- * Release (a payment fails): give the quantity back to the transaction's home slot. Slots count
--   free units, not whose reservation they hold, so any slot is the right one, and a release never
--   needs more than one row lock, however many payments a statement fails.
-- * Invariant: sum(available) over a token's slots = max_mint_count - reserved mints, where reserved
--   mints are the quantities of every accepted payment that has not failed (0004's definition).
--   tokens.reserved_mints is gone (it would be a second copy, stale or contended); the view
--   token_reservations has `reserved_mints` and `available_mints`.
-- * The payer cap and the reservation now run once per INSERT statement (a statement trigger over
--   the inserted rows) instead of once per row, with 0004's checks and error codes.
-- * accept_payments(...) is the API's group commit: the payments that arrived together, inserted in
--   one transaction, each with an outcome of its own (see below).
--
-- Lock order, so that nothing here deadlocks with itself: payer locks (in key order) before slots,
-- slots in (token, slot) order, and a transaction that already holds a slot never waits for
-- another: accept_payments going one by one undoes everything and starts again with all slots
-- locked (XM003) instead.

CREATE TABLE token_supply_slots (
    token_address text     NOT NULL REFERENCES tokens (address),
    slot          smallint NOT NULL CHECK (slot >= 0 AND slot < 16),
    available     bigint   NOT NULL CHECK (available >= 0),   -- mint units free in this slot
    PRIMARY KEY (token_address, slot)
);

-- Slot `slot`'s share of `total` free units spread evenly over 16 slots (the first take the rest).
CREATE FUNCTION supply_share(total bigint, slot integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT total / 16 + CASE WHEN slot < total % 16 THEN 1 ELSE 0 END;
$$;

CREATE FUNCTION create_supply_slots(token text, total bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO token_supply_slots (token_address, slot, available)
    SELECT token, s, supply_share(total, s) FROM generate_series(0, 15) AS s;
$$;

-- The slot a transaction reserves from and releases to. Transaction ids are handed out in order, so
-- transactions running at the same time get different slots.
CREATE FUNCTION home_supply_slot() RETURNS smallint LANGUAGE sql VOLATILE AS $$
    SELECT (txid_current() % 16)::smallint;
$$;

-- Lock every slot of `token`, in slot order; take `quantity` (negative: add) from their sum and
-- spread the rest evenly. False, with nothing changed, when the sum cannot give `quantity`.
CREATE FUNCTION rebalance_supply(token text, quantity bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    free bigint;
BEGIN
    PERFORM 1 FROM token_supply_slots WHERE token_address = token ORDER BY slot FOR UPDATE;
    SELECT sum(available) INTO free FROM token_supply_slots WHERE token_address = token;
    IF free IS NULL THEN
        RAISE EXCEPTION 'token % has no supply slots', token;
    END IF;
    IF free < quantity THEN
        RETURN false;
    END IF;
    UPDATE token_supply_slots SET available = supply_share(free - quantity, slot) WHERE token_address = token;
    RETURN true;
END $$;

CREATE FUNCTION reserve_supply(token text, quantity bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE token_supply_slots SET available = available - quantity
     WHERE token_address = token AND slot = home_supply_slot() AND available >= quantity;
    IF FOUND THEN
        RETURN;
    END IF;
    -- accept_payments going one by one: it may hold this token's home slot already, and must not
    -- wait for the others while holding it; it starts again with all of them locked.
    IF current_setting('x402.supply_batch', true) = 'fast' THEN
        RAISE EXCEPTION 'token % needs a supply rebalance', token USING ERRCODE = 'XM003';
    END IF;
    IF NOT rebalance_supply(token, quantity) THEN
        RAISE EXCEPTION 'token % cannot reserve % more mints', token, quantity USING ERRCODE = 'XM001';
    END IF;
END $$;

CREATE FUNCTION release_supply(token text, quantity bigint) RETURNS void LANGUAGE sql AS $$
    UPDATE token_supply_slots SET available = available + quantity
     WHERE token_address = token AND slot = home_supply_slot();
$$;

-- Existing tokens: their free supply (max_mint_count - reserved_mints) goes into the slots.
SELECT create_supply_slots(address, greatest(max_mint_count - reserved_mints, 0)) FROM tokens;

-- A new token gets its slots; a changed max_mint_count adds or takes free supply (it never takes
-- back supply already reserved: MintToken's maxMintCount is immutable, so this is a registration
-- error).
CREATE FUNCTION token_supply_slots_follow_max() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM create_supply_slots(NEW.address, NEW.max_mint_count);
    ELSIF NEW.max_mint_count <> OLD.max_mint_count THEN
        IF NOT rebalance_supply(NEW.address, OLD.max_mint_count - NEW.max_mint_count) THEN
            RAISE EXCEPTION 'max_mint_count of % cannot go below the % mints already reserved',
                NEW.address, OLD.max_mint_count - (SELECT sum(available) FROM token_supply_slots
                                                    WHERE token_address = NEW.address)
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER token_supply_slots_follow_max AFTER INSERT OR UPDATE OF max_mint_count ON tokens
    FOR EACH ROW EXECUTE FUNCTION token_supply_slots_follow_max();

-- Accepting payments: one trigger per INSERT statement (0004 ran one per row), so a statement that
-- inserts a group of payments takes each payer's lock and checks its cap once, and reserves each
-- token's supply once, for the whole group. Payer locks are taken in key order, then the tokens'
-- slots in token order: two statements never wait for each other the other way round. The checks
-- are 0004's: after the statement, no payer may have more than the cap open (XM002), and the
-- reservations must fit (XM001); either refuses the whole statement.
DROP TRIGGER reserve_supply_and_limit_payer ON payment_queue;
DROP FUNCTION reserve_supply_and_limit_payer();

CREATE FUNCTION reserve_supply_and_limit_payers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer := nullif(current_setting('x402.max_pending_per_payer', true), '')::integer;
    r record;
    over_cap text;
BEGIN
    IF cap IS NOT NULL THEN
        FOR r IN SELECT DISTINCT hashtextextended('x402-payer:' || payer, 0) AS k FROM inserted ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(r.k);
        END LOOP;
        SELECT i.payer INTO over_cap FROM (SELECT DISTINCT payer FROM inserted) AS i
         WHERE (SELECT count(*) FROM payment_queue AS p
                 WHERE p.payer = i.payer AND p.status IN ('pending', 'processing', 'sent')) > cap
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
CREATE TRIGGER reserve_supply_and_limit_payers AFTER INSERT ON payment_queue
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION reserve_supply_and_limit_payers();

-- A status change keeps 0004's row trigger: a failed payment gives its quantity back, a requeued
-- one takes it again.
CREATE OR REPLACE FUNCTION release_or_retake_supply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'failed' AND OLD.status <> 'failed' THEN
        PERFORM release_supply(OLD.token_address, OLD.quantity);
    ELSIF OLD.status = 'failed' AND NEW.status <> 'failed' THEN
        PERFORM reserve_supply(NEW.token_address, NEW.quantity);
    END IF;
    RETURN NULL;
END $$;

ALTER TABLE tokens DROP COLUMN reserved_mints;

-- For operators (and GET /api/tokens/{address}): what tokens.reserved_mints used to say.
CREATE VIEW token_reservations AS
SELECT t.address, t.symbol, t.max_mint_count,
       t.max_mint_count - s.available AS reserved_mints,
       s.available AS available_mints
  FROM tokens t
  JOIN (SELECT token_address, sum(available)::bigint AS available
          FROM token_supply_slots GROUP BY token_address) s ON s.token_address = t.address;

-- The API's group commit. One call inserts a group of payments (parallel arrays, one element per
-- payment) in one transaction and returns each payment's outcome by its position (1-based):
-- 'accepted' (payment_id = the new row), 'duplicate' (payment_id = the row already holding this
-- authorization), 'sold_out' or 'too_many_open'. Any other error fails the whole call.
--
-- First all payments in one INSERT: the common case (supply left, payers under their cap) costs one
-- statement. If the statement is refused (a payer over the cap, a token short of supply), it is
-- undone and the payments go one by one, each in a subtransaction of its own, so each gets its own
-- answer and a refused one leaves nothing behind.
CREATE FUNCTION accept_payment_rows(
    p_token text[], p_asset text[], p_payer text[], p_recipient text[], p_quantity integer[],
    p_amount numeric[], p_nonce text[], p_valid_after numeric[], p_valid_before numeric[],
    p_signature text[], p_header text[]
) RETURNS TABLE (ord bigint, outcome text, payment_id uuid) LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- One token after the other, as the INSERT of all of them would go.
    FOR r IN SELECT * FROM unnest(p_token, p_asset, p_payer, p_recipient, p_quantity, p_amount, p_nonce,
                                  p_valid_after, p_valid_before, p_signature, p_header)
                           WITH ORDINALITY AS u(token, asset, payer, recipient, quantity, amount, nonce,
                                                valid_after, valid_before, signature, header, n)
              ORDER BY u.token, u.n
    LOOP
        ord := r.n;
        BEGIN
            INSERT INTO payment_queue (token_address, asset, payer, recipient, quantity, amount, nonce,
                                       valid_after, valid_before, signature, payment_header)
            VALUES (r.token, r.asset, r.payer, r.recipient, r.quantity, r.amount, r.nonce,
                    r.valid_after, r.valid_before, r.signature, r.header)
            ON CONFLICT ON CONSTRAINT payment_queue_one_per_authorization DO NOTHING
            RETURNING id INTO payment_id;
            IF payment_id IS NOT NULL THEN
                outcome := 'accepted';
            ELSE
                outcome := 'duplicate';
                SELECT q.id INTO payment_id FROM payment_queue AS q
                 WHERE q.asset = r.asset AND q.payer = r.payer AND q.nonce = r.nonce;
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'XM001' THEN outcome := 'sold_out'; payment_id := NULL;
            WHEN SQLSTATE 'XM002' THEN outcome := 'too_many_open'; payment_id := NULL;
        END;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE FUNCTION accept_payments(
    p_token text[], p_asset text[], p_payer text[], p_recipient text[], p_quantity integer[],
    p_amount numeric[], p_nonce text[], p_valid_after numeric[], p_valid_before numeric[],
    p_signature text[], p_header text[]
) RETURNS TABLE (ord bigint, outcome text, payment_id uuid) LANGUAGE plpgsql AS $$
DECLARE
    payer_key bigint;
    ords bigint[];
    outcomes text[];
    ids uuid[];
    new_ids uuid[];
    new_assets text[];
    new_payers text[];
    new_nonces text[];
BEGIN
    BEGIN
        WITH inserted AS (
            INSERT INTO payment_queue (token_address, asset, payer, recipient, quantity, amount, nonce,
                                       valid_after, valid_before, signature, payment_header)
            SELECT u.token, u.asset, u.payer, u.recipient, u.quantity, u.amount, u.nonce,
                   u.valid_after, u.valid_before, u.signature, u.header
              FROM unnest(p_token, p_asset, p_payer, p_recipient, p_quantity, p_amount, p_nonce,
                          p_valid_after, p_valid_before, p_signature, p_header)
                   WITH ORDINALITY AS u(token, asset, payer, recipient, quantity, amount, nonce,
                                        valid_after, valid_before, signature, header, n)
             ORDER BY u.token, u.n
            ON CONFLICT ON CONSTRAINT payment_queue_one_per_authorization DO NOTHING
            RETURNING id, asset, payer, nonce
        )
        SELECT array_agg(i.id), array_agg(i.asset), array_agg(i.payer), array_agg(i.nonce)
          INTO new_ids, new_assets, new_payers, new_nonces
          FROM inserted AS i;
        -- Accepted: the first of the group to carry its authorization, if the INSERT took it.
        -- Duplicate: any other; its id is the row holding the authorization (visible now, even
        -- when it was committed by someone else while the INSERT ran).
        RETURN QUERY
        SELECT u.n,
               CASE WHEN u.first AND i.id IS NOT NULL THEN 'accepted' ELSE 'duplicate' END,
               coalesce(i.id, (SELECT q.id FROM payment_queue AS q
                                WHERE q.asset = u.asset AND q.payer = u.payer AND q.nonce = u.nonce))
          FROM (SELECT x.*, row_number() OVER (PARTITION BY x.asset, x.payer, x.nonce
                                                 ORDER BY x.token, x.n) = 1 AS first
                  FROM unnest(p_token, p_asset, p_payer, p_nonce) WITH ORDINALITY AS x(token, asset, payer, nonce, n)
               ) AS u
          LEFT JOIN unnest(new_ids, new_assets, new_payers, new_nonces) AS i(id, asset, payer, nonce)
                 ON i.asset = u.asset AND i.payer = u.payer AND i.nonce = u.nonce
         ORDER BY u.n;
        RETURN;
    EXCEPTION WHEN SQLSTATE 'XM001' OR SQLSTATE 'XM002' THEN
        NULL;  -- undone; one by one below
    END;

    -- Every payer lock first, in key order (the trigger takes them again, which does not wait):
    -- going one by one, the transaction must never hold a slot while it waits for a payer.
    IF nullif(current_setting('x402.max_pending_per_payer', true), '') IS NOT NULL THEN
        FOR payer_key IN SELECT DISTINCT hashtextextended('x402-payer:' || p, 0) FROM unnest(p_payer) AS p
                          ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(payer_key);
        END LOOP;
    END IF;
    -- Nor, holding one token's home slot, wait to rebalance another's (or the same's) slots: a
    -- payment that needs a rebalance undoes them all (XM003) ...
    PERFORM set_config('x402.supply_batch', 'fast', true);
    BEGIN
        SELECT array_agg(a.ord), array_agg(a.outcome), array_agg(a.payment_id) INTO ords, outcomes, ids
          FROM accept_payment_rows(p_token, p_asset, p_payer, p_recipient, p_quantity, p_amount, p_nonce,
                                   p_valid_after, p_valid_before, p_signature, p_header) AS a;
    EXCEPTION WHEN SQLSTATE 'XM003' THEN
        -- ... and they go again, with every slot of their tokens locked first, in (token, slot)
        -- order, so that no insert waits for a slot any more.
        PERFORM 1 FROM token_supply_slots WHERE token_address = ANY (p_token)
          ORDER BY token_address, slot FOR UPDATE;
        PERFORM set_config('x402.supply_batch', 'locked', true);
        SELECT array_agg(a.ord), array_agg(a.outcome), array_agg(a.payment_id) INTO ords, outcomes, ids
          FROM accept_payment_rows(p_token, p_asset, p_payer, p_recipient, p_quantity, p_amount, p_nonce,
                                   p_valid_after, p_valid_before, p_signature, p_header) AS a;
    END;
    PERFORM set_config('x402.supply_batch', '', true);
    RETURN QUERY SELECT * FROM unnest(ords, outcomes, ids) AS u(ord, outcome, payment_id) ORDER BY 1;
END $$;

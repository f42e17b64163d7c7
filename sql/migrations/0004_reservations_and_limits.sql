-- 0004: supply is reserved before payment is taken, and a payer has a cap on open payments.
--
-- Both are enforced by the database at insert time, atomically under any concurrency:
-- * tokens.reserved_mints counts the mints of every accepted payment that has not failed. A payment
--   that would take it past max_mint_count is refused (SQLSTATE XM001, the API answers 409 sold_out).
--   A payment that fails gives its reservation back; a requeued one takes it again.
-- * When the session sets x402.max_pending_per_payer (the API does, from MAX_PENDING_PER_PAYER), a
--   payer with that many payments still open is refused (SQLSTATE XM002, the API answers 429).
-- The checks run AFTER INSERT, so a resubmitted authorization (ON CONFLICT DO NOTHING) reserves nothing.

ALTER TABLE tokens ADD COLUMN reserved_mints bigint NOT NULL DEFAULT 0 CHECK (reserved_mints >= 0);
UPDATE tokens t SET reserved_mints = coalesce((
    SELECT sum(quantity) FROM payment_queue p
     WHERE p.token_address = t.address AND p.status NOT IN ('failed', 'confirmation_failed')), 0);

CREATE INDEX payment_queue_open_by_payer ON payment_queue (payer) WHERE status IN ('pending', 'processing', 'sent');

CREATE FUNCTION reserve_supply_and_limit_payer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer := nullif(current_setting('x402.max_pending_per_payer', true), '')::integer;
BEGIN
    IF cap IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('x402-payer:' || NEW.payer, 0));
        IF (SELECT count(*) FROM payment_queue
             WHERE payer = NEW.payer AND status IN ('pending', 'processing', 'sent')) > cap THEN
            RAISE EXCEPTION 'payer % already has % open payments', NEW.payer, cap USING ERRCODE = 'XM002';
        END IF;
    END IF;
    UPDATE tokens SET reserved_mints = reserved_mints + NEW.quantity
     WHERE address = NEW.token_address AND reserved_mints + NEW.quantity <= max_mint_count;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'token % cannot reserve % more mints', NEW.token_address, NEW.quantity
            USING ERRCODE = 'XM001';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reserve_supply_and_limit_payer AFTER INSERT ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION reserve_supply_and_limit_payer();

CREATE FUNCTION release_or_retake_supply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'failed' AND OLD.status <> 'failed' THEN
        UPDATE tokens SET reserved_mints = reserved_mints - OLD.quantity WHERE address = OLD.token_address;
    ELSIF OLD.status = 'failed' AND NEW.status <> 'failed' THEN
        UPDATE tokens SET reserved_mints = reserved_mints + NEW.quantity
         WHERE address = NEW.token_address AND reserved_mints + NEW.quantity <= max_mint_count;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'token % cannot reserve % more mints', NEW.token_address, NEW.quantity
                USING ERRCODE = 'XM001';
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER release_or_retake_supply AFTER UPDATE OF status ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION release_or_retake_supply();

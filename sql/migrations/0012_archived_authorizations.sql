-- 0012: one payment per EIP-3009 authorization, for ever — archiving included.
--
-- `x402-mint archive` moves finished payments out of payment_queue, and with them their
-- (asset, payer, nonce) key (payment_queue_one_per_authorization). A header posted again is refused
-- as expired (the ingress caps validBefore, and only expired authorizations are archived), but the
-- payer could sign a new authorization with the same nonce: a new payment row, which the old
-- Transfer would then "pay" a second time. So an archived payment leaves its key behind in
-- archived_authorizations, and a payment with an archived key is never inserted again (the row is
-- skipped, as ON CONFLICT skips a live duplicate: the ingress answers nonce_already_used).

CREATE TABLE archived_authorizations (
    asset       text NOT NULL,
    payer       text NOT NULL,
    nonce       text NOT NULL,
    payment_id  uuid NOT NULL,   -- in payment_queue_archive
    PRIMARY KEY (asset, payer, nonce)
);
INSERT INTO archived_authorizations (asset, payer, nonce, payment_id)
SELECT asset, payer, nonce, id FROM payment_queue_archive
ON CONFLICT DO NOTHING;

CREATE FUNCTION skip_archived_authorization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM archived_authorizations
                WHERE asset = NEW.asset AND payer = NEW.payer AND nonce = NEW.nonce) THEN
        RETURN NULL;  -- not inserted: this authorization already had its payment
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER skip_archived_authorization BEFORE INSERT ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION skip_archived_authorization();

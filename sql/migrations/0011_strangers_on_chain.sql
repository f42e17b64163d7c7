-- 0011: money safety against strangers on chain.
--
-- Anyone may submit a buyer's authorization, batch it with others, cancel it, or use its nonce up
-- with another authorization of the same payer. So:
--
-- * A payment is paid only by its own transfer (shared/settlement/authorizations.py): the Transfer log
--   right after its AuthorizationUsed log. A paid payment records that log (tx_hash, paid_log_index,
--   paid_block_number), a payment can only become completed / refund_owed / refunded with it, and
--   one Transfer log settles at most one payment (unique index).
-- * Whether a payment holds its quantity of the token's supply is recorded on the row
--   (supply_reserved), kept by one trigger from the status: pending, processing, sent, completed and
--   needs_review hold it; failed, refund_owed and refunded do not. Entering a holding status takes
--   the supply back (XM001 when sold out); needs_review entered from failed takes it only if it is
--   there (a payment under review must not be refused for that).
-- * Refunds (`x402-mint refund`) are sent by refund-sender through the write-ahead path, as
--   MintToken.refund(paymentKey, payer, amount), which records the payment's key on chain so that
--   it can never be refunded twice.
-- * Payments are no longer pointed at a stranger's transaction and left for the confirmer: a paying
--   transfer found at depth completes its payment at once. Payments left pointing at one ('sent' on
--   an external chain_tx) go back to payment-sender, which decides them from the chain.

ALTER TABLE payment_queue
    ADD COLUMN paid_log_index    integer,   -- the logIndex of the Transfer that paid it (in tx_hash)
    ADD COLUMN paid_block_number bigint,    -- the block of that transaction
    ADD COLUMN supply_reserved   boolean NOT NULL DEFAULT true;  -- holds `quantity` of its token's supply
UPDATE payment_queue SET supply_reserved = false WHERE status IN ('failed', 'confirmation_failed');
ALTER TABLE payment_queue_archive
    ADD COLUMN paid_log_index    integer,
    ADD COLUMN paid_block_number bigint,
    ADD COLUMN supply_reserved   boolean NOT NULL DEFAULT false;

CREATE UNIQUE INDEX payment_queue_one_per_transfer ON payment_queue (tx_hash, paid_log_index)
    WHERE paid_log_index IS NOT NULL;
CREATE INDEX payment_queue_attention ON payment_queue (updated_at)
    WHERE status IN ('needs_review', 'refund_owed');

-- Final statuses stay final; a paid status needs the transfer that paid it.
CREATE OR REPLACE FUNCTION completed_payment_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('completed', 'refunded') AND NEW.status <> OLD.status
       OR OLD.status = 'refund_owed' AND NEW.status NOT IN ('refund_owed', 'refunded') THEN
        RAISE EXCEPTION 'payment % is % and cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status IN ('completed', 'refund_owed', 'refunded') AND NEW.status <> OLD.status
       AND NEW.paid_log_index IS NULL THEN
        RAISE EXCEPTION 'payment % cannot become % without the transfer that paid it', OLD.id, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

-- Supply follows the status (replaces 0009's release_or_retake_supply).
DROP TRIGGER release_or_retake_supply ON payment_queue;
DROP FUNCTION release_or_retake_supply();
CREATE FUNCTION payment_holds_supply(status payment_status) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('pending', 'processing', 'sent', 'completed', 'needs_review');
$$;
CREATE FUNCTION keep_supply_with_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF payment_holds_supply(NEW.status) AND NOT OLD.supply_reserved THEN
        IF NEW.status = 'needs_review' THEN
            BEGIN
                PERFORM reserve_supply(NEW.token_address, NEW.quantity);
                NEW.supply_reserved := true;
            EXCEPTION WHEN SQLSTATE 'XM001' THEN
                NEW.supply_reserved := false;
            END;
        ELSE
            PERFORM reserve_supply(NEW.token_address, NEW.quantity);  -- XM001 when sold out
            NEW.supply_reserved := true;
        END IF;
    ELSIF NOT payment_holds_supply(NEW.status) AND OLD.supply_reserved THEN
        PERFORM release_supply(OLD.token_address, OLD.quantity);
        NEW.supply_reserved := false;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER keep_supply_with_status BEFORE UPDATE OF status ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION keep_supply_with_status();

-- Refunds.
ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_purpose_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_purpose_check
    CHECK (purpose IN ('payment', 'mint', 'filler', 'refund'));

CREATE TYPE refund_status AS ENUM (
    'pending',      -- operator (`x402-mint refund`): decided; refund-sender sends it
    'processing',   -- refund-sender: claimed under a lease (locked_until); nothing signed yet
    'sent',         -- refund-sender: MintToken.refund signed and stored, then broadcast
    'completed',    -- confirmer: Refunded in the receipt, or the key already refunded on chain
    'failed'        -- confirmer: retries ran out; error says why (`x402-mint refund` tries again)
);
CREATE TABLE refunds (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id      uuid NOT NULL UNIQUE,      -- one refund per payment (no foreign key: a refunded payment may be archived)
    payment_key     text NOT NULL UNIQUE CHECK (payment_key ~ '^0x[0-9a-f]{64}$'),  -- recorded on chain by MintToken.refund
    token_address   text NOT NULL REFERENCES tokens (address),
    recipient       text NOT NULL CHECK (recipient ~ '^0x[0-9a-f]{40}$'),          -- the payer
    amount          numeric(78, 0) NOT NULL CHECK (amount > 0),
    reason          text NOT NULL,
    status          refund_status NOT NULL DEFAULT 'pending',
    chain_tx_id     bigint REFERENCES chain_txs (id),
    tx_hash         text,
    error           text,
    last_error      text,
    attempts        integer NOT NULL DEFAULT 0,
    claim_token     uuid,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz
);
CREATE INDEX refunds_claimable ON refunds (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX refunds_chain_tx ON refunds (chain_tx_id) WHERE chain_tx_id IS NOT NULL;
CREATE TRIGGER refunds_notify AFTER INSERT OR UPDATE OF status ON refunds
    FOR EACH ROW EXECUTE FUNCTION notify_stage();

-- Payments pointed at a stranger's transaction go back to payment-sender (see above).
UPDATE payment_queue p
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, claim_token = NULL, locked_until = NULL,
       last_error = '0011: decided again from the chain', updated_at = now()
  FROM chain_txs t
 WHERE p.chain_tx_id = t.id AND t.external AND p.status = 'sent';
UPDATE chain_txs
   SET state = 'dropped', settled_at = now(), locked_until = NULL,
       last_error = '0011: transactions of others are no longer followed'
 WHERE external AND state = 'unconfirmed';

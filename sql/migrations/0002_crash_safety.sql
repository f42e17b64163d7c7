-- 0002: what crash-safe settlement needs beyond the first cut.
--
-- * A logical transaction keeps what is needed to re-sign it with higher fees (to, data, gas) —
--   only its own sender holds the key, so only a sender stage bumps; anyone may re-send stored bytes.
-- * An attempt may be a cancellation (a 0-value self-transfer at the same nonce) when the work it
--   carried became pointless (the authorization was used by someone else): the nonce is filled,
--   never left as a gap.
-- * A transaction that is not ours (a third party submitted the buyer's authorization) is recorded
--   as an 'external' chain_tx so the confirmer settles it like any other, from its receipt.

ALTER TYPE chain_tx_state ADD VALUE 'dropped';    -- confirmer: its nonce was used by a transaction that is not one of its attempts; work re-planned
ALTER TYPE chain_tx_state ADD VALUE 'cancelled';  -- confirmer: a cancellation attempt was mined; work re-planned

ALTER TABLE chain_txs
    ADD COLUMN to_address        text,
    ADD COLUMN data              bytea,
    ADD COLUMN gas_limit         bigint,
    ADD COLUMN external          boolean NOT NULL DEFAULT false,  -- sent by someone else; nothing to re-send
    ADD COLUMN seen_block_number bigint,   -- a receipt was seen in this block, not yet deep enough
    ADD COLUMN cancel_reason     text;     -- set by a sender when it decided to cancel the work

ALTER TABLE chain_tx_attempts
    ALTER COLUMN raw_tx DROP NOT NULL,     -- NULL for an external transaction
    ADD COLUMN kind text NOT NULL DEFAULT 'work' CHECK (kind IN ('work', 'cancel', 'external'));

-- Senders look for their own stuck transactions.
CREATE INDEX chain_txs_unconfirmed_by_sender ON chain_txs (from_address, nonce) WHERE state = 'unconfirmed';

-- Payments: why the last attempt did not go through (kept while retrying; see `error` for terminal ones).
ALTER TABLE payment_queue ADD COLUMN last_error text;
ALTER TABLE mint_queue ADD COLUMN last_error text;

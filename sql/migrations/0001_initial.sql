-- 0001: the payment-first pipeline.
--
-- Items move between stages only by changing their status. Each stage claims rows with
-- SELECT ... FOR UPDATE SKIP LOCKED and moves them in the same statement; every later change is a
-- compare-and-set on the status it expects. Names and statuses of payment_queue / mint_queue are kept
-- from the seed so its monitoring queries run unchanged (see sql/monitoring.sql).

CREATE TABLE tokens (
    address          text PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),   -- lowercase
    chain_id         bigint  NOT NULL,
    symbol           text    NOT NULL,
    asset            text    NOT NULL CHECK (asset ~ '^0x[0-9a-f]{40}$'),     -- the USDC contract
    asset_name       text    NOT NULL,      -- EIP-712 domain name of the asset, e.g. 'USD Coin'
    asset_version    text    NOT NULL,      -- EIP-712 domain version, e.g. '2'
    asset_decimals   integer NOT NULL,
    price_per_mint   numeric(78, 0) NOT NULL CHECK (price_per_mint > 0),  -- asset base units
    mint_amount      numeric(78, 0) NOT NULL CHECK (mint_amount > 0),     -- token base units per mint
    max_mint_count   bigint  NOT NULL CHECK (max_mint_count > 0),
    description      text    NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- One logical chain transaction (the Chainlink TXM model): a relayer nonce and the work it carries.
-- Signed bytes are persisted, and committed, before the first broadcast; recovery re-sends them.
CREATE TYPE chain_tx_state AS ENUM (
    'unconfirmed',   -- signed and stored by payment-sender / mint-sender; may or may not be broadcast yet
    'confirmed',     -- confirmer: a receipt for one of its attempts succeeded at the required depth
    'reverted'       -- confirmer: a receipt for one of its attempts reverted at the required depth
);

CREATE TABLE chain_txs (
    id                 bigserial PRIMARY KEY,
    chain_id           bigint NOT NULL,
    from_address       text   NOT NULL,
    nonce              bigint NOT NULL CHECK (nonce >= 0),
    purpose            text   NOT NULL CHECK (purpose IN ('payment', 'mint')),
    state              chain_tx_state NOT NULL DEFAULT 'unconfirmed',
    receipt_tx_hash    text,           -- the attempt whose receipt settled it
    block_number       bigint,
    gas_used           bigint,
    broadcast_count    integer NOT NULL DEFAULT 0,
    last_broadcast_at  timestamptz,
    last_error         text,
    locked_until       timestamptz,    -- confirmer's lease while it checks this transaction
    created_at         timestamptz NOT NULL DEFAULT now(),
    settled_at         timestamptz,
    UNIQUE (chain_id, from_address, nonce)
);
CREATE INDEX chain_txs_unconfirmed ON chain_txs (created_at) WHERE state = 'unconfirmed';

-- Every signed version of a chain_tx (one now; fee bumps add more). Any attempt's receipt settles it.
CREATE TABLE chain_tx_attempts (
    id                 bigserial PRIMARY KEY,
    chain_tx_id        bigint NOT NULL REFERENCES chain_txs (id),
    tx_hash            text   NOT NULL UNIQUE,
    raw_tx             bytea  NOT NULL,
    max_fee_per_gas    numeric(78, 0) NOT NULL,
    max_priority_fee   numeric(78, 0) NOT NULL,
    gas_limit          bigint NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_tx_attempts_tx ON chain_tx_attempts (chain_tx_id);

-- Relayer nonces live here, not in a process: allocation takes this row's lock for one short
-- transaction, so any number of sender processes can share a key.
CREATE TABLE relayer_nonces (
    chain_id     bigint NOT NULL,
    address      text   NOT NULL,
    next_nonce   bigint NOT NULL CHECK (next_nonce >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, address)
);

CREATE TYPE payment_status AS ENUM (
    'pending',              -- api: a verified x402 payment was accepted (202)
    'processing',           -- payment-sender: claimed under a lease (locked_until); nothing signed yet
    'sent',                 -- payment-sender: transferWithAuthorization signed and stored, then broadcast
    'completed',            -- confirmer: receipt succeeded; its mint rows were created in the same transaction
    'failed',               -- payment-sender (pre-flight) or confirmer (revert): the money never arrived
    'confirmation_failed'   -- kept from the seed for its monitoring queries; this design never sets it
);

CREATE TABLE payment_queue (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_address   text NOT NULL REFERENCES tokens (address),
    asset           text NOT NULL,
    payer           text NOT NULL CHECK (payer ~ '^0x[0-9a-f]{40}$'),
    recipient       text NOT NULL CHECK (recipient ~ '^0x[0-9a-f]{40}$'),
    quantity        integer NOT NULL CHECK (quantity > 0),
    amount          numeric(78, 0) NOT NULL CHECK (amount > 0),
    nonce           text NOT NULL CHECK (nonce ~ '^0x[0-9a-f]{64}$'),     -- EIP-3009 authorization nonce
    valid_after     numeric(78, 0) NOT NULL,
    valid_before    numeric(78, 0) NOT NULL,
    signature       text NOT NULL,
    payment_header  text NOT NULL,
    status          payment_status NOT NULL DEFAULT 'pending',
    chain_tx_id     bigint REFERENCES chain_txs (id),
    tx_hash         text,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    claim_token     uuid,           -- set by each claim; later writes compare-and-set on it
    locked_until    timestamptz,    -- lease: after it, another payment-sender may reclaim the row
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    CONSTRAINT payment_queue_one_per_authorization UNIQUE (asset, payer, nonce)
);
CREATE INDEX payment_queue_claimable ON payment_queue (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX payment_queue_chain_tx ON payment_queue (chain_tx_id) WHERE chain_tx_id IS NOT NULL;
CREATE INDEX payment_queue_processed_at ON payment_queue (processed_at) WHERE processed_at IS NOT NULL;

CREATE TYPE mint_status AS ENUM (
    'pending',      -- confirmer: created with its completed payment; mint-sender: back after a failed attempt
    'processing',   -- mint-sender: claimed under a lease (locked_until); nothing signed yet
    'sent',         -- mint-sender: batchMint signed and stored, then broadcast
    'completed',    -- confirmer (TokensMinted in the receipt, or already minted) / mint-sender (hasMinted)
    'failed'        -- confirmer: the token is sold out, or retries ran out; stored error says why
);

CREATE TABLE mint_queue (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id      uuid NOT NULL REFERENCES payment_queue (id),
    mint_index      integer NOT NULL CHECK (mint_index >= 0),
    mint_id         text NOT NULL UNIQUE CHECK (mint_id ~ '^0x[0-9a-f]{64}$'),   -- bytes32 given to the contract
    token_address   text NOT NULL REFERENCES tokens (address),
    recipient       text NOT NULL,
    status          mint_status NOT NULL DEFAULT 'pending',
    chain_tx_id     bigint REFERENCES chain_txs (id),
    tx_hash         text,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    claim_token     uuid,           -- set by each claim; later writes compare-and-set on it
    locked_until    timestamptz,    -- lease: after it, another mint-sender may reclaim the row
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    UNIQUE (payment_id, mint_index)
);
CREATE INDEX mint_queue_claimable ON mint_queue (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX mint_queue_chain_tx ON mint_queue (chain_tx_id) WHERE chain_tx_id IS NOT NULL;

-- Pay first, mint after, enforced by the database itself: a mint row can only be inserted for a
-- payment that is completed (in the same transaction that completed it, or later), and a completed
-- payment never leaves 'completed'.
CREATE FUNCTION mint_requires_completed_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM payment_queue WHERE id = NEW.payment_id AND status = 'completed' FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mint row for payment % which is not completed', NEW.payment_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER mint_requires_completed_payment BEFORE INSERT ON mint_queue
    FOR EACH ROW EXECUTE FUNCTION mint_requires_completed_payment();

CREATE FUNCTION completed_payment_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'completed' AND NEW.status <> 'completed' THEN
        RAISE EXCEPTION 'payment % is completed and cannot become %', OLD.id, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER completed_payment_is_final BEFORE UPDATE OF status ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION completed_payment_is_final();

-- Wake the stage that owns the new status at once (LISTEN/NOTIFY); polling stays as the safety net.
CREATE FUNCTION notify_stage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('x402_' || TG_TABLE_NAME || '_' || NEW.status::text, '');
    RETURN NULL;
END $$;
CREATE TRIGGER payment_queue_notify AFTER INSERT OR UPDATE OF status ON payment_queue
    FOR EACH ROW EXECUTE FUNCTION notify_stage();
CREATE TRIGGER mint_queue_notify AFTER INSERT OR UPDATE OF status ON mint_queue
    FOR EACH ROW EXECUTE FUNCTION notify_stage();
CREATE FUNCTION notify_chain_tx() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('x402_chain_txs_unconfirmed', '');
    RETURN NULL;
END $$;
CREATE TRIGGER chain_txs_notify AFTER INSERT OR UPDATE OF broadcast_count ON chain_txs
    FOR EACH ROW EXECUTE FUNCTION notify_chain_tx();

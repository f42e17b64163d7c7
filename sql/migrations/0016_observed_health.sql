-- 0016: what the stages see of the chain, kept where any exporter on any host can read it (metrics,
-- `x402-mint stats`, the dashboard): each relayer key's gas money and mined nonce, and each RPC
-- endpoint's health as each stage process last saw it.
CREATE TABLE relayer_status (
    chain_id     bigint NOT NULL,
    address      text   NOT NULL,
    stage        text   NOT NULL,            -- payment-sender, mint-sender, refund-sender
    balance_wei  numeric(78, 0) NOT NULL,
    mined_nonce  bigint NOT NULL,            -- the chain's transaction count of the key (at `latest`)
    observed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, address, stage)
);
CREATE TABLE rpc_endpoints (
    endpoint     text NOT NULL,              -- host:port (never the URL's path: it may hold an API key)
    reporter     text NOT NULL,              -- the stage process that saw it (host, stage, pid)
    up           boolean NOT NULL,
    head         bigint,
    lag          bigint,                     -- blocks behind the best head that reporter saw
    error        text,
    observed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, reporter)
);

-- What the dashboard and the metrics count at every refresh, without reading whole tables: payments
-- and mints by the minute they completed, and the mints of paid payments not (yet) minted.
CREATE INDEX payment_queue_completed_at ON payment_queue (processed_at) WHERE status = 'completed';
CREATE INDEX mint_queue_completed_at ON mint_queue (processed_at) WHERE status = 'completed';
CREATE INDEX mint_queue_unfinished ON mint_queue (payment_id) WHERE status <> 'completed';
-- the seed's stuck query, and the statuses that wait for an operator (rare: small indexes).
CREATE INDEX payment_queue_sent_since ON payment_queue (processed_at) WHERE status = 'sent';
CREATE INDEX payment_queue_for_operators ON payment_queue (status, created_at)
    WHERE status IN ('needs_review', 'refund_owed');

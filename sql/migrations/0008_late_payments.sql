-- 0008: a failed payment whose authorization is still unused is watched until it expires.
--
-- A payment fails when its transfer could not move the money (the buyer's balance was short, its
-- call failed inside a Multicall3 batch, ...). Its signed authorization stays valid until
-- validBefore, though, and anyone may still submit it. So payment-sender watches failed payments
-- until then: if the chain shows the money arrived after all, the payment is revived (failed → sent,
-- following the transaction that paid) and completes with its mints like any other.
ALTER TABLE payment_queue
    ADD COLUMN watch_until   numeric(78, 0),  -- set on failure (= valid_before); cleared when the watch ends
    ADD COLUMN watch_next_at timestamptz;     -- when payment-sender looks at it next
CREATE INDEX payment_queue_watched ON payment_queue (watch_next_at) WHERE watch_until IS NOT NULL;
ALTER TABLE payment_queue_archive
    ADD COLUMN watch_until   numeric(78, 0),
    ADD COLUMN watch_next_at timestamptz;

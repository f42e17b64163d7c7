-- 0003: a transaction is declared 'dropped' (its nonce used by a transaction that is not ours) only
-- after the chain has said so for a grace period, not on one reading: a node may report the nonce
-- as used a moment before it serves the receipt, and nodes behind a load balancer disagree.
ALTER TABLE chain_txs ADD COLUMN nonce_used_seen_at timestamptz;  -- confirmer: first saw the nonce used with no receipt of ours

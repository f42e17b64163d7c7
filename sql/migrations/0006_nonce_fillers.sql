-- 0006: a relayer nonce that was allocated but has no stored transaction behind it (a database
-- restored from a backup, a chain that was reset) would jam every later transaction. The key holder
-- fills such a gap with a 0-value transfer to itself: a chain_tx of purpose 'filler', which carries
-- no work (the confirmer only records its receipt).
ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_purpose_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_purpose_check CHECK (purpose IN ('payment', 'mint', 'filler'));

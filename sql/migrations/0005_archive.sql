-- 0005: retention. Finished payments (completed with every mint finished, or failed) older than a
-- cut-off move to archive tables with the same columns (`x402-mint archive`), so the live queues stay
-- small; the archive keeps every row for audits and refunds.
CREATE TABLE payment_queue_archive (LIKE payment_queue INCLUDING DEFAULTS);
ALTER TABLE payment_queue_archive ADD PRIMARY KEY (id), ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE mint_queue_archive (LIKE mint_queue INCLUDING DEFAULTS);
ALTER TABLE mint_queue_archive ADD PRIMARY KEY (id), ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX mint_queue_archive_payment ON mint_queue_archive (payment_id);

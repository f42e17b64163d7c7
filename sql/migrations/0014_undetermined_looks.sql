-- 0014: a payment goes to needs_review after PAYMENT_REVIEW_ATTEMPTS looks that found its nonce used
-- and the log that says how out of reach — counted on their own. Counting every claim (as `attempts`
-- does: leases that ran out, a node that did not answer) sent payments to review after an outage.
ALTER TABLE payment_queue ADD COLUMN undetermined_looks integer NOT NULL DEFAULT 0;
ALTER TABLE payment_queue_archive ADD COLUMN undetermined_looks integer NOT NULL DEFAULT 0;

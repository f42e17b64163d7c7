-- name: insert_mints
-- confirmer: inside the transaction that completed the payment (a trigger refuses any other time).
INSERT INTO mint_queue (payment_id, mint_index, mint_id, token_address, recipient)
SELECT %(payment_id)s, i, ids[i + 1], %(token_address)s, %(recipient)s
  FROM (SELECT %(mint_ids)s::text[] AS ids) x, generate_series(0, cardinality(%(mint_ids)s::text[]) - 1) AS i
ON CONFLICT (mint_id) DO NOTHING;

-- name: claim_mints
-- mint-sender: pending mints, and processing ones whose claimer's lease ran out.
WITH claimable AS (
    SELECT id FROM mint_queue
     WHERE status IN ('pending', 'processing')
       AND (locked_until IS NULL OR locked_until < now())
     ORDER BY created_at, mint_index
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE mint_queue m
   SET status = 'processing', claim_token = %(claim_token)s, attempts = m.attempts + 1,
       locked_until = now() + make_interval(secs => %(lease)s), updated_at = now()
  FROM claimable
 WHERE m.id = claimable.id
RETURNING m.id, m.mint_id, m.token_address, m.recipient, m.attempts;

-- name: lock_claimed_mints
SELECT id FROM mint_queue
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s
   FOR UPDATE;

-- name: mark_mints_sent
UPDATE mint_queue
   SET status = 'sent', chain_tx_id = %(chain_tx_id)s, tx_hash = %(tx_hash)s, locked_until = NULL,
       updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: complete_claimed_mints
-- mint-sender: hasMinted says these ids are already on chain.
UPDATE mint_queue
   SET status = 'completed', locked_until = NULL, processed_at = now(), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: mints_of_chain_tx
SELECT id, mint_id, attempts FROM mint_queue WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent';

-- name: complete_sent_mints
-- confirmer: the mint transaction minted these (a mint row is created when its payment is paid).
UPDATE mint_queue
   SET status = 'completed', tx_hash = %(tx_hash)s, processed_at = now(), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'sent' AND chain_tx_id = %(chain_tx_id)s
RETURNING extract(epoch FROM now() - created_at)::float8 AS since_paid_seconds;

-- name: fail_sent_mints
UPDATE mint_queue
   SET status = 'failed', tx_hash = %(tx_hash)s, error = %(error)s, processed_at = now(), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'sent' AND chain_tx_id = %(chain_tx_id)s;

-- name: retry_sent_mints
-- confirmer: the mint transaction did not mint these; they go back to mint-sender.
UPDATE mint_queue
   SET status = 'pending', error = %(error)s, chain_tx_id = NULL, tx_hash = NULL, updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'sent' AND chain_tx_id = %(chain_tx_id)s;

-- name: release_claimed_mints
-- mint-sender: a batch it could not finish (an RPC fault, no gas money) goes back to
-- pending, to be claimed again after a backoff delay.
UPDATE mint_queue
   SET status = 'pending', claim_token = NULL, last_error = %(error)s,
       locked_until = now() + make_interval(secs => %(delay)s), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: replan_mints
UPDATE mint_queue
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, claim_token = NULL,
       locked_until = NULL, updated_at = now()
 WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent'
RETURNING id;

-- name: requeue_mints
-- operator: failed mints (of a payment, or one mint) go back to mint-sender with fresh attempts.
UPDATE mint_queue
   SET status = 'pending', error = NULL, attempts = 0, chain_tx_id = NULL, tx_hash = NULL, claim_token = NULL,
       locked_until = NULL, last_error = 'requeued by an operator', updated_at = now()
 WHERE (payment_id = %(id)s OR id = %(id)s) AND status = 'failed'
RETURNING id;

-- name: insert_mints_of_payments
-- insert_mints for many payments completed in the same transaction (one row per mint).
INSERT INTO mint_queue (payment_id, mint_index, mint_id, token_address, recipient)
SELECT * FROM unnest(%(payment_ids)s::uuid[], %(indexes)s::int[], %(mint_ids)s::text[],
                     %(tokens)s::text[], %(recipients)s::text[])
ON CONFLICT (mint_id) DO NOTHING;

-- name: insert_refund
-- operator (`x402-mint refund`): the refund of a refund_owed payment, decided once (one per payment;
-- a failed one is sent again by refund_again).
INSERT INTO refunds (payment_id, payment_key, token_address, recipient, amount, reason)
VALUES (%(payment_id)s, %(payment_key)s, %(token_address)s, %(recipient)s, %(amount)s, %(reason)s)
ON CONFLICT (payment_id) DO NOTHING
RETURNING id;

-- name: refund_again
-- operator: a failed refund goes back to refund-sender with fresh attempts.
UPDATE refunds
   SET status = 'pending', error = NULL, attempts = 0, chain_tx_id = NULL, tx_hash = NULL, claim_token = NULL,
       locked_until = NULL, last_error = 'sent again by an operator', updated_at = now()
 WHERE payment_id = %(payment_id)s AND status = 'failed'
RETURNING id;

-- name: refund_of_payment
SELECT id, status, amount, recipient, tx_hash, error, reason FROM refunds WHERE payment_id = %(payment_id)s;

-- name: claim_refunds
-- refund-sender: pending refunds, and processing ones whose claimer's lease ran out.
WITH claimable AS (
    SELECT id FROM refunds
     WHERE status IN ('pending', 'processing')
       AND (locked_until IS NULL OR locked_until < now())
     ORDER BY created_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE refunds r
   SET status = 'processing', claim_token = %(claim_token)s, attempts = r.attempts + 1,
       locked_until = now() + make_interval(secs => %(lease)s), updated_at = now()
  FROM claimable
 WHERE r.id = claimable.id
RETURNING r.*;

-- name: release_claimed_refunds
-- refund-sender: a batch it could not finish (an RPC fault, no gas money) goes back to pending,
-- to be claimed again after a backoff delay.
UPDATE refunds
   SET status = 'pending', claim_token = NULL, last_error = %(error)s,
       locked_until = now() + make_interval(secs => %(delay)s), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: mark_refund_sent
-- refund-sender: MintToken.refund signed and stored (committed with this), then broadcast.
UPDATE refunds
   SET status = 'sent', chain_tx_id = %(chain_tx_id)s, tx_hash = %(tx_hash)s, locked_until = NULL,
       updated_at = now()
 WHERE id = %(id)s AND status = 'processing' AND claim_token = %(claim_token)s
RETURNING id;

-- name: fail_claimed_refund
-- refund-sender: the pre-flight says MintToken.refund would revert for a reason time will not cure
-- (the contract's USDC was withdrawn, the key lacks REFUNDER_ROLE): an operator looks.
UPDATE refunds
   SET status = 'failed', error = %(error)s, locked_until = NULL, processed_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = 'processing' AND claim_token = %(claim_token)s
RETURNING id;

-- name: refunds_of_chain_tx
SELECT id, payment_id, payment_key, attempts FROM refunds WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent';

-- name: complete_refund
-- confirmer (Refunded in the receipt) or refund-sender (the key is refunded on chain already): the
-- refund is done, and its payment is refunded, in one database transaction.
WITH done AS (
    UPDATE refunds
       SET status = 'completed', tx_hash = %(tx_hash)s, error = NULL, claim_token = NULL, locked_until = NULL,
           processed_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = %(expected)s::refund_status
       AND (%(claim_token)s::uuid IS NULL OR claim_token = %(claim_token)s::uuid)
       AND (%(chain_tx_id)s::bigint IS NULL OR chain_tx_id = %(chain_tx_id)s::bigint)
    RETURNING payment_id
)
UPDATE payment_queue p
   SET status = 'refunded', last_error = 'refunded in ' || coalesce(%(tx_hash)s, 'an earlier transaction'),
       updated_at = now()
  FROM done
 WHERE p.id = done.payment_id AND p.status = 'refund_owed'
RETURNING p.id;

-- name: retry_sent_refund
-- confirmer: the refund transaction did not refund it; back to refund-sender, whose pre-flight asks
-- the chain again.
UPDATE refunds
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, updated_at = now()
 WHERE id = %(id)s AND status = 'sent' AND chain_tx_id = %(chain_tx_id)s;

-- name: fail_sent_refund
UPDATE refunds
   SET status = 'failed', error = %(error)s, processed_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = 'sent' AND chain_tx_id = %(chain_tx_id)s;

-- name: replan_refunds
-- confirmer: the transaction carrying it will never run (nonce taken, cancelled, reorged away).
UPDATE refunds
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, claim_token = NULL,
       locked_until = NULL, updated_at = now()
 WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent'
RETURNING id;

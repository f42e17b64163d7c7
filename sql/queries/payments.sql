-- name: accept_payments
-- api (group commit): a group of verified payments in one transaction, one outcome each, by position
-- (see 0009: accepted / duplicate / sold_out / too_many_open). One row per EIP-3009 authorization;
-- a refused payment stores nothing. Parallel arrays, one element per payment.
SELECT ord, outcome, payment_id
  FROM accept_payments(%(token_address)s::text[], %(asset)s::text[], %(payer)s::text[],
                       %(recipient)s::text[], %(quantity)s::integer[], %(amount)s::numeric[],
                       %(nonce)s::text[], %(valid_after)s::numeric[], %(valid_before)s::numeric[],
                       %(signature)s::text[], %(payment_header)s::text[]);

-- name: insert_payment
-- api: a group of one (see accept_payments), as one plain statement. The statement trigger (0009)
-- refuses it with XM001 (sold out) or XM002 (payer over the cap); a second submission of the
-- authorization inserts nothing.
INSERT INTO payment_queue (token_address, asset, payer, recipient, quantity, amount, nonce,
                           valid_after, valid_before, signature, payment_header)
VALUES (%(token_address)s, %(asset)s, %(payer)s, %(recipient)s, %(quantity)s, %(amount)s, %(nonce)s,
        %(valid_after)s, %(valid_before)s, %(signature)s, %(payment_header)s)
ON CONFLICT ON CONSTRAINT payment_queue_one_per_authorization DO NOTHING
RETURNING id;

-- name: payment_id_for_authorization
-- The payment that holds this authorization, live or archived (0012).
SELECT id FROM payment_queue WHERE asset = %(asset)s AND payer = %(payer)s AND nonce = %(nonce)s
UNION ALL
SELECT payment_id FROM archived_authorizations WHERE asset = %(asset)s AND payer = %(payer)s AND nonce = %(nonce)s
LIMIT 1;

-- name: claim_payments
-- payment-sender: pending payments, and processing ones whose claimer's lease ran out.
WITH claimable AS (
    SELECT id FROM payment_queue
     WHERE status IN ('pending', 'processing')
       AND (locked_until IS NULL OR locked_until < now())
     ORDER BY created_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE payment_queue p
   SET status = 'processing', claim_token = %(claim_token)s, attempts = p.attempts + 1,
       locked_until = now() + make_interval(secs => %(lease)s), updated_at = now()
  FROM claimable
 WHERE p.id = claimable.id
RETURNING p.id, p.token_address, p.asset, p.payer, p.recipient, p.quantity, p.amount, p.nonce,
          p.valid_after, p.valid_before, p.signature, p.status, p.attempts, p.undetermined_looks,
          p.send_failures, p.created_at;  -- not payment_header: the signed terms are in the columns

-- name: lock_claimed_payments
-- payment-sender: the rows this claim still owns, locked for the write-ahead transaction; oldest first
-- (the order their transfers go out in).
SELECT id FROM payment_queue
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s
 ORDER BY created_at, id
   FOR UPDATE;

-- name: mark_payments_sent
-- payment-sender: the payments one stored transaction carries (one, or many through Multicall3).
UPDATE payment_queue
   SET status = 'sent', chain_tx_id = %(chain_tx_id)s, tx_hash = %(tx_hash)s, locked_until = NULL,
       processed_at = now(), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: defer_claimed_payment
-- payment-sender: not decided yet (validAfter not reached on chain, the node did not answer for it, a
-- use not deep enough yet, or — %(undetermined)s, counted — its nonce used and the log that says how
-- out of reach); look again after a delay.
UPDATE payment_queue
   SET status = 'pending', last_error = %(error)s, claim_token = NULL,
       undetermined_looks = undetermined_looks + CASE WHEN %(undetermined)s THEN 1 ELSE 0 END,
       locked_until = now() + make_interval(secs => %(delay)s), updated_at = now()
 WHERE id = %(id)s AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: complete_payment
-- Its own transfer paid it, at depth (shared/settlement/authorizations.py): completed, with the log
-- that paid it; its mint rows are inserted in the same database transaction. Written by whoever
-- found the transfer (payment-sender, confirmer, the watch, an operator), as a compare-and-set on
-- the status it expects and the claim or transaction holding it. A failed or needs_review payment
-- takes its supply back here (XM001 when sold out meanwhile: see owe_refund).
UPDATE payment_queue
   SET status = 'completed', tx_hash = %(tx_hash)s, paid_log_index = %(log_index)s,
       paid_block_number = %(block_number)s, error = NULL, claim_token = NULL, locked_until = NULL,
       watch_until = NULL, watch_next_at = NULL, processed_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = %(expected)s::payment_status
   AND (%(claim_token)s::uuid IS NULL OR claim_token = %(claim_token)s::uuid)
   AND (%(chain_tx_id)s::bigint IS NULL OR chain_tx_id = %(chain_tx_id)s::bigint)
RETURNING id, token_address, asset, payer, recipient, quantity, nonce,
          extract(epoch FROM now() - created_at)::float8 AS waited_seconds;

-- name: owe_refund
-- Its own transfer paid it, but it can never be minted (the supply sold out after it failed): the
-- money is owed back (`x402-mint refund`). Same compare-and-set as complete_payment.
UPDATE payment_queue
   SET status = 'refund_owed', tx_hash = %(tx_hash)s, paid_log_index = %(log_index)s,
       paid_block_number = %(block_number)s, error = %(error)s, claim_token = NULL, locked_until = NULL,
       watch_until = NULL, watch_next_at = NULL, processed_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = %(expected)s::payment_status
   AND (%(claim_token)s::uuid IS NULL OR claim_token = %(claim_token)s::uuid)
   AND (%(chain_tx_id)s::bigint IS NULL OR chain_tx_id = %(chain_tx_id)s::bigint)
RETURNING id;

-- name: fail_payment
-- The money did not move and this authorization can no longer move it (used elsewhere, cancelled,
-- expired), or — with %(watch)s — did not move now but still could until validBefore: watched until
-- then (0008), in case someone submits it later anyway. Its supply goes back (0011).
UPDATE payment_queue
   SET status = 'failed', error = %(error)s, tx_hash = coalesce(%(tx_hash)s, tx_hash), claim_token = NULL,
       locked_until = NULL, processed_at = now(), updated_at = now(),
       watch_until = CASE WHEN %(watch)s THEN valid_before END,
       watch_next_at = CASE WHEN %(watch)s THEN now() + interval '5 seconds' END
 WHERE id = %(id)s AND status = %(expected)s::payment_status
   AND (%(claim_token)s::uuid IS NULL OR claim_token = %(claim_token)s::uuid)
   AND (%(chain_tx_id)s::bigint IS NULL OR chain_tx_id = %(chain_tx_id)s::bigint)
RETURNING id;

-- name: review_payment
-- The nonce is used, but the log that says how stayed beyond the search budget, look after look:
-- an operator decides (`x402-mint resolve`). It keeps its supply (0011).
UPDATE payment_queue
   SET status = 'needs_review', error = %(error)s, claim_token = NULL, locked_until = NULL,
       watch_until = NULL, watch_next_at = NULL, updated_at = now()
 WHERE id = %(id)s AND status = %(expected)s::payment_status
   AND (%(claim_token)s::uuid IS NULL OR claim_token = %(claim_token)s::uuid)
   AND (%(chain_tx_id)s::bigint IS NULL OR chain_tx_id = %(chain_tx_id)s::bigint)
RETURNING id;

-- name: payment_by_id
-- the API: a payment's status. While it is `sent` its tx_hash is the newest attempt of the transaction
-- carrying it (a fee bump replaces the hash first recorded); once settled, the transaction that paid.
SELECT p.id, p.status,
       CASE WHEN p.status = 'sent' AND p.chain_tx_id IS NOT NULL
            THEN coalesce((SELECT a.tx_hash FROM chain_tx_attempts a
                            WHERE a.chain_tx_id = p.chain_tx_id AND a.kind <> 'cancel'
                            ORDER BY a.id DESC LIMIT 1), p.tx_hash)
            ELSE p.tx_hash END AS tx_hash,
       p.payer, p.recipient, p.token_address, p.quantity, p.amount, p.error,
       p.payment_header,
       (SELECT json_build_object('status', r.status, 'amount', r.amount::text, 'tx_hash', r.tx_hash,
                                 'error', r.error)
          FROM refunds r WHERE r.payment_id = p.id) AS refund,
       coalesce(
         (SELECT json_agg(json_build_object('id', m.id, 'mintId', m.mint_id, 'status', m.status,
                                            'tx_hash', m.tx_hash) ORDER BY m.mint_index)
            FROM mint_queue m WHERE m.payment_id = p.id), '[]'::json) AS mints
  FROM payment_queue p
 WHERE p.id = %(id)s;

-- name: release_claimed_payments
-- payment-sender: a batch it could not finish (an RPC fault, no gas money) goes back to
-- pending, to be claimed again after a backoff delay.
UPDATE payment_queue
   SET status = 'pending', claim_token = NULL, last_error = %(error)s,
       locked_until = now() + make_interval(secs => %(delay)s), updated_at = now()
 WHERE id = ANY(%(ids)s) AND status = 'processing' AND claim_token = %(claim_token)s;

-- name: payments_of_chain_tx
SELECT id, asset, payer, recipient, token_address, amount, nonce, quantity, valid_after, valid_before
  FROM payment_queue WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent';

-- name: replan_payments
-- confirmer: the transaction carrying it will never run (nonce taken, cancelled, reorged away):
-- back to payment-sender, whose pre-flight asks the chain where the authorization stands.
UPDATE payment_queue
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, claim_token = NULL,
       locked_until = NULL, updated_at = now()
 WHERE chain_tx_id = %(chain_tx_id)s AND status = 'sent'
RETURNING id;

-- name: resend_payment
-- confirmer: one payment of a settled transaction whose transfer failed on chain (its authorization
-- still unused at depth) although its pre-flight passed: back to payment-sender for a fresh pre-flight,
-- at most %(limit)s times (0017); no row: the caller fails it.
UPDATE payment_queue
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, claim_token = NULL,
       locked_until = NULL, send_failures = send_failures + 1, updated_at = now()
 WHERE chain_tx_id = %(chain_tx_id)s AND id = %(id)s AND status = 'sent' AND send_failures < %(limit)s
RETURNING id;

-- name: replan_payment
-- confirmer: one payment of a transaction whose authorization was used in a way the logs in reach do
-- not show: back to payment-sender, whose pre-flight asks the chain again.
UPDATE payment_queue
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, last_error = %(error)s, claim_token = NULL,
       locked_until = NULL, updated_at = now()
 WHERE chain_tx_id = %(chain_tx_id)s AND id = %(id)s AND status = 'sent'
RETURNING id;

-- name: requeue_payment
-- operator (`x402-mint requeue`): a failed payment goes back to payment-sender, whose pre-flight
-- decides again from the chain.
UPDATE payment_queue
   SET status = 'pending', chain_tx_id = NULL, tx_hash = NULL, error = NULL, attempts = 0, claim_token = NULL,
       locked_until = NULL, last_error = 'requeued by an operator', watch_until = NULL, watch_next_at = NULL,
       updated_at = now()
 WHERE id = %(id)s AND status = 'failed'
RETURNING id;

-- name: fail_benchmark_payments
-- `x402-mint bench ingress`: its buyers hold no USDC, so their payments could never move money;
-- they end failed (what payment-sender's pre-flight would conclude), releasing their reservations.
-- Up to %(limit)s at a time, one transaction each: every failure gives its quantity back to a supply
-- slot, and one transaction updating the same row tens of thousands of times slows down with each
-- new row version (so did tokens.reserved_mints before 0009).
UPDATE payment_queue
   SET status = 'failed', error = 'benchmark payment: the buyer holds no USDC; never sent', updated_at = now()
 WHERE id IN (SELECT id FROM payment_queue
               WHERE token_address = %(token)s AND status = 'pending'
               LIMIT %(limit)s);

-- name: claim_watched_payments
-- payment-sender: failed payments due for a look at their authorization (0008); each claim moves
-- the next look on, so copies of the stage share the watch.
WITH due AS (
    SELECT id FROM payment_queue
     WHERE watch_until IS NOT NULL AND status = 'failed' AND watch_next_at <= now()
     ORDER BY watch_next_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE payment_queue p
   SET watch_next_at = now() + make_interval(secs => %(every)s)
  FROM due
 WHERE p.id = due.id
RETURNING p.id, p.asset, p.payer, p.token_address, p.amount, p.nonce, p.valid_after, p.valid_before,
          p.watch_until;

-- name: end_watch
UPDATE payment_queue SET watch_until = NULL, watch_next_at = NULL, last_error = %(note)s, updated_at = now()
 WHERE id = %(id)s AND status = 'failed';


-- name: payment_row
-- operator decisions (shared/settlement/review.py): the whole row.
SELECT * FROM payment_queue WHERE id = %(id)s;

-- name: complete_payments
-- complete_payment for many payments of one transaction at once (the confirmer): each with the log
-- that paid it, as the same compare-and-set on the status and the transaction expected to hold it.
UPDATE payment_queue p
   SET status = 'completed', tx_hash = v.tx_hash, paid_log_index = v.log_index,
       paid_block_number = v.block_number, error = NULL, claim_token = NULL, locked_until = NULL,
       watch_until = NULL, watch_next_at = NULL, processed_at = now(), updated_at = now()
  FROM unnest(%(ids)s::uuid[], %(tx_hashes)s::text[], %(log_indexes)s::int[], %(block_numbers)s::bigint[])
       AS v(id, tx_hash, log_index, block_number)
 WHERE p.id = v.id AND p.status = %(expected)s::payment_status AND p.chain_tx_id = %(chain_tx_id)s::bigint
RETURNING p.id, p.token_address, p.asset, p.payer, p.recipient, p.quantity, p.nonce,
          extract(epoch FROM now() - p.created_at)::float8 AS waited_seconds;

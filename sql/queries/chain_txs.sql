-- name: insert_chain_tx
INSERT INTO chain_txs (chain_id, from_address, nonce, purpose, to_address, data, gas_limit)
VALUES (%(chain_id)s, %(from_address)s, %(nonce)s, %(purpose)s, %(to_address)s, %(data)s, %(gas_limit)s)
RETURNING id;

-- name: insert_chain_tx_attempt
INSERT INTO chain_tx_attempts (chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee, gas_limit, kind)
VALUES (%(chain_tx_id)s, %(tx_hash)s, %(raw_tx)s, %(max_fee)s, %(max_priority)s, %(gas_limit)s, %(kind)s)
ON CONFLICT (tx_hash) DO NOTHING;

-- name: record_broadcast
UPDATE chain_txs
   SET broadcast_count = broadcast_count + 1, last_broadcast_at = now(), last_error = %(error)s
 WHERE id = %(id)s;

-- name: claim_unconfirmed_txs
-- confirmer: unconfirmed transactions whose next check is due; the lease doubles as "next check at".
WITH due AS (
    SELECT id FROM chain_txs
     WHERE state = 'unconfirmed' AND (locked_until IS NULL OR locked_until < now())
     ORDER BY id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE chain_txs t
   SET locked_until = now() + make_interval(secs => %(lease)s)
  FROM due
 WHERE t.id = due.id
RETURNING t.id, t.chain_id, t.from_address, t.nonce, t.purpose, t.external, t.broadcast_count, t.created_at,
          t.last_broadcast_at, t.seen_block_number,
          (SELECT json_agg(json_build_object('hash', a.tx_hash, 'kind', a.kind) ORDER BY a.id)
             FROM chain_tx_attempts a WHERE a.chain_tx_id = t.id) AS attempts,
          EXISTS (SELECT 1 FROM chain_tx_attempts a WHERE a.chain_tx_id = t.id AND a.raw_tx IS NOT NULL)
            AS has_raw_tx;  -- the bytes themselves (tens of kB) only when they are re-sent: latest_raw_tx

-- name: latest_raw_tx
-- confirmer: the signed bytes of a transaction's newest stored attempt, to send them again.
SELECT a.raw_tx FROM chain_tx_attempts a
 WHERE a.chain_tx_id = %(id)s AND a.raw_tx IS NOT NULL
 ORDER BY a.id DESC LIMIT 1;

-- name: mark_receipt_seen
-- confirmer: a receipt exists but is not deep enough yet; if it later vanishes, that was a reorg.
UPDATE chain_txs SET seen_block_number = %(block_number)s, locked_until = now() + make_interval(secs => %(delay)s)
 WHERE id = %(id)s AND state = 'unconfirmed';

-- name: forget_receipt_seen
UPDATE chain_txs SET seen_block_number = NULL WHERE id = %(id)s AND state = 'unconfirmed';

-- name: drop_chain_tx
-- confirmer: compare-and-set to a state that re-plans the work ('dropped' or 'cancelled').
UPDATE chain_txs SET state = %(state)s, settled_at = now(), locked_until = NULL, last_error = %(error)s
 WHERE id = %(id)s AND state = 'unconfirmed'
RETURNING id;

-- name: stuck_txs_of_sender
-- a sender stage: its own unconfirmed transactions whose newest attempt is older than `stuck_after`.
SELECT t.id, t.nonce, t.purpose, t.to_address, t.data, t.gas_limit, t.cancel_reason,
       a.max_fee_per_gas, a.max_priority_fee, a.kind
  FROM chain_txs t
  JOIN LATERAL (SELECT * FROM chain_tx_attempts x WHERE x.chain_tx_id = t.id ORDER BY x.id DESC LIMIT 1) a ON true
 WHERE t.state = 'unconfirmed' AND NOT t.external AND t.chain_id = %(chain_id)s AND t.from_address = %(address)s
   AND (a.created_at < now() - make_interval(secs => %(stuck_after)s)
        OR (t.cancel_reason IS NOT NULL AND a.kind = 'work'))   -- a decided cancel goes out at once
 ORDER BY t.nonce
 LIMIT %(limit)s
   FOR UPDATE OF t SKIP LOCKED;

-- name: unconfirmed_payment_txs_of_sender
-- payment-sender: its payment transactions still unconfirmed, each with the payments it carries, to
-- check whether their authorizations were used by someone else or expired meanwhile (an expired
-- one's payment fails at once; a transaction left with nothing to pay is cancelled, never left to
-- run for nothing).
SELECT t.id, t.nonce,
       json_agg(json_build_object('id', p.id, 'asset', p.asset, 'payer', p.payer, 'nonce', p.nonce,
                                  'token_address', p.token_address, 'amount', p.amount,
                                  'valid_after', p.valid_after, 'valid_before', p.valid_before)
                ORDER BY p.id) AS payments
  FROM chain_txs t JOIN payment_queue p ON p.chain_tx_id = t.id AND p.status = 'sent'
 WHERE t.state = 'unconfirmed' AND NOT t.external AND t.cancel_reason IS NULL AND t.purpose = 'payment'
   AND t.chain_id = %(chain_id)s AND t.from_address = %(address)s
   AND t.created_at < now() - make_interval(secs => %(older_than)s)
 GROUP BY t.id
 ORDER BY t.nonce
 LIMIT %(limit)s;

-- name: mark_cancel
UPDATE chain_txs SET cancel_reason = %(reason)s WHERE id = %(id)s AND state = 'unconfirmed' AND cancel_reason IS NULL
RETURNING id;

-- name: recheck_chain_tx_later
UPDATE chain_txs SET locked_until = now() + make_interval(secs => %(delay)s) WHERE id = %(id)s AND state = 'unconfirmed';

-- name: settle_chain_tx
-- confirmer: compare-and-set; exactly one process can settle a transaction.
UPDATE chain_txs
   SET state = %(state)s, receipt_tx_hash = %(tx_hash)s, block_number = %(block_number)s,
       gas_used = %(gas_used)s, settled_at = now(), locked_until = NULL
 WHERE id = %(id)s AND state = 'unconfirmed'
RETURNING id;

-- name: seconds_until_next_check
-- confirmer, when nothing is due: how long until the earliest unconfirmed transaction is (NULL when
-- there is none: greatest() would turn that into 0, and an idle confirmer would poll without pause).
SELECT CASE WHEN min(locked_until) IS NOT NULL
            THEN greatest(0, extract(epoch FROM min(locked_until) - now()))::float8 END AS seconds
  FROM chain_txs WHERE state = 'unconfirmed';

-- name: attempt_hashes
SELECT tx_hash FROM chain_tx_attempts WHERE chain_tx_id = %(chain_tx_id)s ORDER BY id;

-- name: note_nonce_used
UPDATE chain_txs SET nonce_used_seen_at = coalesce(nonce_used_seen_at, now()),
       locked_until = now() + make_interval(secs => %(delay)s)
 WHERE id = %(id)s AND state = 'unconfirmed'
RETURNING extract(epoch FROM now() - nonce_used_seen_at)::float8 AS seconds;

-- name: lowest_open_nonce
-- a sender's upkeep: its lowest nonce with a transaction not yet settled, if any.
SELECT min(nonce) AS nonce FROM chain_txs
 WHERE state = 'unconfirmed' AND NOT external AND chain_id = %(chain_id)s AND from_address = %(address)s;

-- name: stored_nonces_between
SELECT nonce FROM chain_txs
 WHERE chain_id = %(chain_id)s AND from_address = %(address)s AND nonce >= %(low)s AND nonce < %(high)s;

-- name: insert_chain_tx
INSERT INTO chain_txs (chain_id, from_address, nonce, purpose)
VALUES (%(chain_id)s, %(from_address)s, %(nonce)s, %(purpose)s)
RETURNING id;

-- name: insert_chain_tx_attempt
INSERT INTO chain_tx_attempts (chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee, gas_limit)
VALUES (%(chain_tx_id)s, %(tx_hash)s, %(raw_tx)s, %(max_fee)s, %(max_priority)s, %(gas_limit)s);

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
RETURNING t.id, t.chain_id, t.from_address, t.nonce, t.purpose, t.broadcast_count, t.created_at,
          t.last_broadcast_at,
          (SELECT coalesce(array_agg(a.tx_hash ORDER BY a.id), '{}') FROM chain_tx_attempts a
            WHERE a.chain_tx_id = t.id) AS tx_hashes,
          (SELECT a.raw_tx FROM chain_tx_attempts a WHERE a.chain_tx_id = t.id
            ORDER BY a.id DESC LIMIT 1) AS latest_raw_tx;

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
-- confirmer, when nothing is due: how long until the earliest unconfirmed transaction is.
SELECT greatest(0, extract(epoch FROM min(locked_until) - now()))::float8 AS seconds
  FROM chain_txs WHERE state = 'unconfirmed';

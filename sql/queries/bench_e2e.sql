-- Figures for `x402-mint bench e2e`, over the payments of one run.

-- name: e2e_progress
SELECT count(*) FILTER (WHERE p.status IN ('completed', 'failed')) AS payments_done,
       (SELECT count(*) FROM mint_queue m WHERE m.payment_id = ANY(%(ids)s) AND m.status = 'completed') AS minted
  FROM payment_queue p WHERE p.id = ANY(%(ids)s);

-- name: e2e_latencies
SELECT p.id, p.status::text AS status, p.quantity,
       extract(epoch FROM p.created_at) AS accepted_at,
       extract(epoch FROM p.processed_at) AS paid_at,
       (SELECT extract(epoch FROM max(m.processed_at)) FROM mint_queue m WHERE m.payment_id = p.id) AS minted_at
  FROM payment_queue p WHERE p.id = ANY(%(ids)s);

-- name: e2e_transactions
SELECT t.purpose, count(*) AS txs, sum(t.gas_used) AS gas
  FROM chain_txs t
 WHERE t.id IN (SELECT chain_tx_id FROM payment_queue WHERE id = ANY(%(ids)s)
                UNION SELECT chain_tx_id FROM mint_queue WHERE payment_id = ANY(%(ids)s))
 GROUP BY t.purpose;

-- name: e2e_completed_units
SELECT count(*) AS payments, coalesce(sum(quantity), 0) AS units
  FROM payment_queue WHERE id = ANY(%(ids)s) AND status = 'completed';

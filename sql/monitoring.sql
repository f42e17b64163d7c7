-- Monitoring queries for operators (psql -f sql/monitoring.sql). The first three are the seed's,
-- unchanged; `x402-mint stats` runs the same blocks.

-- name: queue_depth
SELECT status, COUNT(*) FROM payment_queue GROUP BY status ORDER BY status;

-- name: processing_rate
SELECT DATE_TRUNC('minute', processed_at) AS minute, COUNT(*) AS payments
  FROM payment_queue
 WHERE processed_at > NOW() - INTERVAL '5 minutes'
 GROUP BY minute
 ORDER BY minute;

-- name: stuck_payments
SELECT COUNT(*) AS stuck_sent
  FROM payment_queue
 WHERE status = 'sent' AND processed_at < NOW() - INTERVAL '5 minutes';

-- name: mint_queue_depth
SELECT status, COUNT(*) FROM mint_queue GROUP BY status ORDER BY status;

-- name: paid_not_minted
-- Payments whose money arrived but whose mints are not all completed (refund decisions).
SELECT p.id, p.payer, p.quantity, p.processed_at,
       count(m.id) FILTER (WHERE m.status = 'completed') AS minted,
       count(m.id) FILTER (WHERE m.status = 'failed') AS failed_mints
  FROM payment_queue p LEFT JOIN mint_queue m ON m.payment_id = p.id
 WHERE p.status = 'completed'
 GROUP BY p.id
HAVING count(m.id) FILTER (WHERE m.status = 'completed') < p.quantity
 ORDER BY p.processed_at;

-- name: paid_after_failure_refund_needed
-- Failed payments whose money arrived later, when the token had sold out meanwhile (should be none;
-- each needs a refund). See migration 0008.
SELECT id, payer, quantity, amount, last_error
  FROM payment_queue
 WHERE status = 'failed' AND last_error LIKE 'paid by % after it failed, but sold out meanwhile%'
 ORDER BY updated_at;

-- name: failed_payments_watched
-- Failed payments whose authorization could still be submitted (until validBefore): payment-sender
-- revives any whose money arrives after all.
SELECT count(*) AS watched FROM payment_queue WHERE status = 'failed' AND watch_until IS NOT NULL;

-- name: token_supply
-- Per token: mints reserved by accepted payments that have not failed, and what is left to sell
-- (the sum over the token's supply slots; see migration 0009).
SELECT address, symbol, max_mint_count, reserved_mints, available_mints
  FROM token_reservations
 ORDER BY address;

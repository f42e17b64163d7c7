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
-- Money that arrived for a payment that can never be minted (its token sold out before its late
-- arrival, or an operator's decision), still owed: `x402-mint refund <id>` sends it back (see 0011).
-- Each row is money owed; a refund in flight shows its status.
SELECT p.id, p.payer, p.quantity, p.amount, p.tx_hash AS paid_by, r.status AS refund, p.error
  FROM payment_queue p LEFT JOIN refunds r ON r.payment_id = p.id
 WHERE p.status = 'refund_owed'
 ORDER BY p.updated_at;

-- name: needs_review
-- Payments whose authorization's nonce is used but whose paying log stayed beyond the search
-- (LOG_SEARCH_MAX_BLOCKS): they keep their supply until an operator decides with
-- `x402-mint resolve <id> --paid-by <tx> | --not-paid` (re-checked against the chain). Should be none.
SELECT id, payer, quantity, amount, updated_at, error
  FROM payment_queue
 WHERE status = 'needs_review'
 ORDER BY updated_at;

-- name: refunds
-- Refunds by status (refund-sender sends them, the confirmer settles them; failed ones need a look).
SELECT status, count(*), sum(amount) AS amount FROM refunds GROUP BY status ORDER BY status;

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

-- name: rpc_endpoints
-- Each RPC endpoint (RPC_URLS) as the stage processes saw it in the last minute (0016): out when
-- any of them took it out (no answer, or more than RPC_MAX_LAG_BLOCKS behind), and why.
SELECT endpoint, bool_and(up) AS up, max(lag) AS lag_blocks, max(head) AS head, count(*) AS reporters,
       string_agg(DISTINCT error, '; ') AS why_out
  FROM rpc_endpoints
 WHERE observed_at > now() - interval '1 minute'
 GROUP BY endpoint
 ORDER BY endpoint;

-- name: relayers
-- Each relayer key's gas money (wei) and mined nonce, as its stage last saw them (0016).
SELECT stage, address, balance_wei, mined_nonce, observed_at
  FROM relayer_status
 ORDER BY stage, address;

-- name: record_relayer_status
-- a sender stage's upkeep: its key's gas money and the chain's count of its mined transactions.
INSERT INTO relayer_status (chain_id, address, stage, balance_wei, mined_nonce, observed_at)
VALUES (%(chain_id)s, %(address)s, %(stage)s, %(balance)s, %(mined)s, now())
ON CONFLICT (chain_id, address, stage) DO UPDATE
   SET balance_wei = EXCLUDED.balance_wei, mined_nonce = EXCLUDED.mined_nonce, observed_at = now();

-- name: record_rpc_endpoint
-- every stage process: how it sees each RPC endpoint (shared/chain/endpoints.py).
INSERT INTO rpc_endpoints (endpoint, reporter, up, head, lag, error, observed_at)
VALUES (%(endpoint)s, %(reporter)s, %(up)s, %(head)s, %(lag)s, %(error)s, now())
ON CONFLICT (endpoint, reporter) DO UPDATE
   SET up = EXCLUDED.up, head = EXCLUDED.head, lag = EXCLUDED.lag, error = EXCLUDED.error, observed_at = now();

-- name: forget_old_relayer_status
DELETE FROM relayer_status WHERE observed_at < now() - interval '1 day';

-- name: forget_old_rpc_reports
-- reporters that stopped (a process restarts under a new pid) are forgotten after a day.
DELETE FROM rpc_endpoints WHERE observed_at < now() - interval '1 day';

-- name: settlement_backlog
-- API admission (api/backlog.py): accepted work that still waits for the chain — payments waiting
-- for payment-sender or their transaction (not those set aside until later, e.g. before validAfter)
-- and mints not yet on chain.
SELECT (SELECT count(*) FROM payment_queue
         WHERE status IN ('pending', 'processing', 'sent')
           AND (status <> 'pending' OR locked_until IS NULL OR locked_until <= now()))
     + (SELECT count(*) FROM mint_queue WHERE status IN ('pending', 'processing', 'sent')) AS n;

-- name: gauge_queue_depth
SELECT 'payment' AS queue, status::text AS status, count(*) AS n FROM payment_queue GROUP BY 2
UNION ALL SELECT 'mint', status::text, count(*) FROM mint_queue GROUP BY 2
UNION ALL SELECT 'refund', status::text, count(*) FROM refunds GROUP BY 2;

-- name: gauge_oldest_age
-- the oldest item of each active status: how long the oldest has waited since it was created.
SELECT 'payment' AS queue, status::text AS status, extract(epoch FROM now() - min(created_at))::float8 AS seconds
  FROM payment_queue WHERE status IN ('pending', 'processing', 'sent', 'needs_review', 'refund_owed') GROUP BY 2
UNION ALL
SELECT 'mint', status::text, extract(epoch FROM now() - min(created_at))::float8
  FROM mint_queue WHERE status IN ('pending', 'processing', 'sent') GROUP BY 2
UNION ALL
SELECT 'refund', status::text, extract(epoch FROM now() - min(created_at))::float8
  FROM refunds WHERE status IN ('pending', 'processing', 'sent') GROUP BY 2;

-- name: gauge_money
-- the seed's stuck payments, and what money waits on: paid not minted (a paid payment has all its
-- mint rows from the moment it completes, so one not completed is enough; late: paid over 5 minutes
-- ago — minting normally takes seconds), review, refunds owed.
SELECT (SELECT count(*) FROM payment_queue
         WHERE status = 'sent' AND processed_at < now() - interval '5 minutes') AS stuck,
       (SELECT count(DISTINCT m.payment_id) FROM mint_queue m JOIN payment_queue p ON p.id = m.payment_id
         WHERE m.status <> 'completed' AND p.status = 'completed') AS paid_not_minted,
       (SELECT count(DISTINCT m.payment_id) FROM mint_queue m JOIN payment_queue p ON p.id = m.payment_id
         WHERE m.status <> 'completed' AND p.status = 'completed'
           AND m.created_at < now() - interval '5 minutes') AS paid_not_minted_late,
       (SELECT count(*) FROM payment_queue WHERE status = 'needs_review') AS needs_review,
       (SELECT count(*) FROM payment_queue WHERE status = 'refund_owed') AS refund_owed;

-- name: gauge_relayers
-- each relayer key: gas money, and nonces it allocated that the chain has not mined and that have no
-- stored transaction (a gap would jam every later one: the key's upkeep fills it).
SELECT s.stage, s.address, s.balance_wei,
       (SELECT count(*) FROM generate_series(s.mined_nonce, coalesce(n.next_nonce, s.mined_nonce) - 1) AS g(nonce)
         WHERE NOT EXISTS (SELECT 1 FROM chain_txs t WHERE t.chain_id = s.chain_id AND t.from_address = s.address
                              AND t.nonce = g.nonce)) AS nonce_gaps
  FROM relayer_status s
  LEFT JOIN relayer_nonces n ON n.chain_id = s.chain_id AND n.address = s.address
 WHERE s.observed_at > now() - interval '10 minutes';  -- a key no stage uses any more drops out

-- name: gauge_rpc_endpoints
-- each RPC endpoint, as the stage processes saw it in the last minute: up only if all of them could
-- use it; the largest lag any of them saw.
SELECT endpoint, bool_and(up) AS up, max(lag) AS lag, max(head) AS head,
       count(*) AS reporters, string_agg(DISTINCT error, '; ') AS errors
  FROM rpc_endpoints WHERE observed_at > now() - interval '1 minute'
 GROUP BY endpoint ORDER BY endpoint;

-- name: token_supply_view
SELECT address, symbol, reserved_mints, available_mints FROM token_reservations ORDER BY address;

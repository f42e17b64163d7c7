-- The live dashboard (api/dashboard.py), beside the gauges of health.sql.

-- name: dashboard_minutes
-- The last 30 minutes, minute by minute: payments paid and mints completed (the seed's processing
-- rate), and 202 → tokens (a payment's creation to its last mint on chain) at p50 and p95 for the
-- payments whose last mint completed in that minute.
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - interval '29 minutes',
                           date_trunc('minute', now()), interval '1 minute') AS minute
), paid AS (
    SELECT date_trunc('minute', processed_at) AS minute, count(*) AS n
      FROM payment_queue
     WHERE status = 'completed' AND processed_at >= date_trunc('minute', now()) - interval '29 minutes'
     GROUP BY 1
), minted AS (
    SELECT date_trunc('minute', processed_at) AS minute, count(*) AS n
      FROM mint_queue
     WHERE status = 'completed' AND processed_at >= date_trunc('minute', now()) - interval '29 minutes'
     GROUP BY 1
), delivered AS (
    SELECT max(m.processed_at) AS done_at, extract(epoch FROM max(m.processed_at) - p.created_at) AS seconds
      FROM payment_queue p JOIN mint_queue m ON m.payment_id = p.id
     WHERE p.status = 'completed' AND p.processed_at >= now() - interval '1 hour'
     GROUP BY p.id
    HAVING bool_and(m.status = 'completed')
), latency AS (
    SELECT date_trunc('minute', done_at) AS minute,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95
      FROM delivered
     WHERE done_at >= date_trunc('minute', now()) - interval '29 minutes'
     GROUP BY 1
)
SELECT extract(epoch FROM minutes.minute)::bigint AS minute,
       coalesce(paid.n, 0) AS payments, coalesce(minted.n, 0) AS mints,
       latency.p50::float8 AS p50_seconds, latency.p95::float8 AS p95_seconds
  FROM minutes
  LEFT JOIN paid USING (minute) LEFT JOIN minted USING (minute) LEFT JOIN latency USING (minute)
 ORDER BY minutes.minute;

-- name: dashboard_totals
SELECT (SELECT count(*) FROM payment_queue WHERE status = 'completed') AS payments_completed,
       (SELECT count(*) FROM mint_queue WHERE status = 'completed') AS mints_completed;

-- name: archive_finished
-- operator (`x402-mint archive`): move up to %(limit)s finished payments older than the cut-off, and
-- their mints, to the archive tables, in one transaction. Nothing still in flight or still owed
-- leaves the live tables: a completed payment moves only when every one of its mints completed (one
-- with a failed mint is paid-not-minted), a failed one only when its watch is over (0008), and
-- needs_review / refund_owed never. And only once its authorization expired: its (asset, payer,
-- nonce) key leaves the live table with it, and a replay of its header is then refused as expired
-- (the ingress caps validBefore); its key stays in archived_authorizations (0012), so no new payment
-- can carry the same authorization either. Rows are copied by column name.
WITH done AS (
    SELECT p.id FROM payment_queue p
     WHERE p.status IN ('completed', 'failed', 'refunded')
       AND p.processed_at < now() - make_interval(days => %(days)s)
       AND p.watch_until IS NULL
       AND p.valid_before < extract(epoch FROM now())
       AND NOT EXISTS (SELECT 1 FROM mint_queue m WHERE m.payment_id = p.id AND m.status <> 'completed')
     ORDER BY p.processed_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), moved_mints AS (
    DELETE FROM mint_queue m USING done WHERE m.payment_id = done.id RETURNING m.*
), kept_mints AS (
    INSERT INTO mint_queue_archive
    SELECT r.* FROM moved_mints m,
           jsonb_populate_record(NULL::mint_queue_archive, to_jsonb(m) || jsonb_build_object('archived_at', now())) r
    RETURNING 1
), moved AS (
    DELETE FROM payment_queue p USING done WHERE p.id = done.id
    RETURNING p.*
), kept_keys AS (  -- the authorization stays used for good (0012)
    INSERT INTO archived_authorizations (asset, payer, nonce, payment_id)
    SELECT asset, payer, nonce, id FROM moved
    ON CONFLICT DO NOTHING
    RETURNING 1
)
INSERT INTO payment_queue_archive
SELECT r.* FROM moved p,
       jsonb_populate_record(NULL::payment_queue_archive, to_jsonb(p) || jsonb_build_object('archived_at', now())) r
RETURNING id;

-- name: archived_payment_by_id
-- api: a payment no longer in the live queue (moved by `x402-mint archive`), in the same shape.
SELECT p.id, p.status, p.tx_hash, p.payer, p.recipient, p.token_address, p.quantity, p.amount, p.error,
       p.payment_header,
       (SELECT json_build_object('status', r.status, 'amount', r.amount::text, 'tx_hash', r.tx_hash,
                                 'error', r.error)
          FROM refunds r WHERE r.payment_id = p.id) AS refund,
       coalesce(
         (SELECT json_agg(json_build_object('id', m.id, 'mintId', m.mint_id, 'status', m.status,
                                            'tx_hash', m.tx_hash) ORDER BY m.mint_index)
            FROM mint_queue_archive m WHERE m.payment_id = p.id), '[]'::json) AS mints
  FROM payment_queue_archive p
 WHERE p.id = %(id)s;

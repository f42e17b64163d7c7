-- Data for `x402-mint bench growth` (a scratch database only).

-- name: bench_live_payments
INSERT INTO payment_queue (token_address, asset, payer, recipient, quantity, amount, nonce, valid_after,
                           valid_before, signature, payment_header)
SELECT %(token)s, %(asset)s, '0x' || lpad(to_hex(i), 40, '0'), '0x' || lpad(to_hex(i), 40, '0'), 1, 1,
       '0x' || md5(i::text || 'live') || md5(i::text), 0, 9999999999, '0x', ''
  FROM generate_series(1, %(n)s) i;

-- name: bench_history
-- %(n)s completed payments, one mint each with status %(mint_status)s (run with triggers off).
WITH payments AS (
    INSERT INTO payment_queue (id, token_address, asset, payer, recipient, quantity, amount, nonce, valid_after,
                               valid_before, signature, payment_header, status, tx_hash, processed_at)
    SELECT md5((i + %(offset)s)::text)::uuid, %(token)s, %(asset)s, '0x' || lpad(to_hex(i + %(offset)s), 40, '0'),
           '0x' || lpad(to_hex(i), 40, '0'), 1, 1, '0x' || md5((i + %(offset)s)::text) || md5(i::text || 'n'),
           0, 1, '0x', '', 'completed', '0x' || md5(i::text) || md5(i::text), now() - interval '1 day'
      FROM generate_series(1, %(n)s) i
    RETURNING id, recipient
)
INSERT INTO mint_queue (payment_id, mint_index, mint_id, token_address, recipient, status, processed_at)
SELECT id, 0, '0x' || md5(id::text || 'm') || md5(id::text), %(token)s, recipient, %(mint_status)s::mint_status,
       CASE WHEN %(mint_status)s = 'completed' THEN now() - interval '1 day' END
  FROM payments;

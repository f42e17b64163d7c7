-- name: ensure_relayer_nonce
INSERT INTO relayer_nonces (chain_id, address, next_nonce)
VALUES (%(chain_id)s, %(address)s, %(next)s)
ON CONFLICT (chain_id, address) DO NOTHING;

-- name: advance_relayer_nonce
-- Never behind the chain (someone else used the key, or the database was restored). Ahead of the
-- chain is fine: those nonces belong to stored transactions the confirmer (re)broadcasts.
UPDATE relayer_nonces
   SET next_nonce = GREATEST(next_nonce, %(next)s), updated_at = now()
 WHERE chain_id = %(chain_id)s AND address = %(address)s
RETURNING next_nonce;

-- name: allocate_relayer_nonces
UPDATE relayer_nonces
   SET next_nonce = next_nonce + %(count)s, updated_at = now()
 WHERE chain_id = %(chain_id)s AND address = %(address)s
RETURNING next_nonce - %(count)s AS first_nonce;

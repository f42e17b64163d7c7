-- name: upsert_token
INSERT INTO tokens (address, chain_id, symbol, asset, asset_name, asset_version, asset_decimals,
                    price_per_mint, mint_amount, max_mint_count, description)
VALUES (%(address)s, %(chain_id)s, %(symbol)s, %(asset)s, %(asset_name)s, %(asset_version)s,
        %(asset_decimals)s, %(price_per_mint)s, %(mint_amount)s, %(max_mint_count)s, %(description)s)
ON CONFLICT (address) DO UPDATE
   SET symbol = EXCLUDED.symbol, asset = EXCLUDED.asset, asset_name = EXCLUDED.asset_name,
       asset_version = EXCLUDED.asset_version, asset_decimals = EXCLUDED.asset_decimals,
       price_per_mint = EXCLUDED.price_per_mint, mint_amount = EXCLUDED.mint_amount,
       max_mint_count = EXCLUDED.max_mint_count, description = EXCLUDED.description
RETURNING (xmax = 0) AS inserted;

-- name: take_minted_supply
-- `x402-mint token add`: a token registered for the first time starts its free supply from
-- maxMintCount − mintCount read on chain (units minted before we sold it are not ours to sell).
SELECT rebalance_supply(%(address)s::text, least(%(minted)s::bigint,
                        (SELECT sum(available) FROM token_supply_slots WHERE token_address = %(address)s))::bigint);

-- name: list_tokens
SELECT * FROM tokens ORDER BY created_at;

-- name: token_by_address
SELECT * FROM tokens WHERE address = %(address)s;

-- name: token_supply
-- Mint units minted (completed mints) and reserved (accepted payments not failed; see 0004, 0009).
SELECT
  (SELECT count(*) FROM mint_queue m WHERE m.token_address = r.address AND m.status = 'completed') AS minted,
  r.reserved_mints AS reserved
  FROM token_reservations r WHERE r.address = %(address)s;

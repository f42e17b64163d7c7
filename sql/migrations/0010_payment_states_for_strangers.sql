-- 0010: the payment states that strangers on chain make necessary (used by 0011; PostgreSQL does not
-- let a transaction use an enum value it added, so they come in a migration of their own).
ALTER TYPE payment_status ADD VALUE 'needs_review';  -- payment-sender / confirmer / watch: the nonce is used, but the log that says how is beyond the search budget, again and again; keeps its supply; an operator decides (`x402-mint resolve`)
ALTER TYPE payment_status ADD VALUE 'refund_owed';   -- watch / operator: its own transfer paid, but it can never be minted (sold out meanwhile, or an operator's decision); `x402-mint refund` sends the money back
ALTER TYPE payment_status ADD VALUE 'refunded';      -- confirmer: the refund of a refund_owed payment confirmed on chain

-- 0017: a payment whose transfer failed on chain although its pre-flight passed — the buyer spent the
-- money meanwhile, or a call before it in a shared transaction burned the gas (a payer whose code runs
-- inside USDC's signature check, e.g. an EOA delegated with EIP-7702) — goes back to payment-sender
-- for a fresh pre-flight instead of failing at once, at most PAYMENT_SEND_RETRIES times: counted here.
ALTER TABLE payment_queue ADD COLUMN send_failures integer NOT NULL DEFAULT 0;
ALTER TABLE payment_queue_archive ADD COLUMN send_failures integer NOT NULL DEFAULT 0;

-- 0013: the x402 v2 `payment-identifier` extension. A client names its payment with an id; the same id
-- with the same payload gets the answer the payment got (202, the same payment), the same id with
-- another payload a 409. Kept in PostgreSQL, so every API process on every host answers alike.
CREATE TABLE payment_identifiers (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{16,128}$'),  -- the client's
    payment_id   uuid NOT NULL,        -- the payment it named (no foreign key: the payment may be archived)
    fingerprint  bytea NOT NULL,       -- sha256 of what was paid: token, quantity, recipient, the signed authorization
    created_at   timestamptz NOT NULL DEFAULT now()
);

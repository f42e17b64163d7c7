-- 0013: the x402 v2 `payment-identifier` extension. A payer names its payment with an id; the same id
-- with the same payload gets the answer the payment got (202, the same payment), the same id with
-- another payload a 409. Kept in PostgreSQL, so every API process on every host answers alike.
--
-- An id is claimed before its payment is written (and given back if the payment is refused), so two
-- posts racing with one id never make two payments: the second finds the claim. Ids are the payer's
-- own (keyed by payer): nobody else can squat or probe them.
CREATE TABLE payment_identifiers (
    payer        text NOT NULL,
    id           text NOT NULL CHECK (id ~ '^[A-Za-z0-9_-]{16,128}$'),  -- the client's
    fingerprint  bytea NOT NULL,       -- sha256 of what was paid: token, quantity, recipient, the signed authorization
    payment_id   uuid,                 -- the payment it named; NULL while that payment is being written
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer, id)
);

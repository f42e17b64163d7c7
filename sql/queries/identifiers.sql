-- name: payment_by_identifier
-- api: the payment a client's payment identifier names, and what was paid with it.
SELECT payment_id, fingerprint FROM payment_identifiers WHERE id = %(id)s;

-- name: remember_identifier
-- api: after the 202, the identifier names its payment (the first to name it wins; a second name for
-- another payload is refused before it gets here).
INSERT INTO payment_identifiers (id, payment_id, fingerprint)
VALUES (%(id)s, %(payment_id)s, %(fingerprint)s)
ON CONFLICT (id) DO NOTHING;

-- name: payment_terms_by_id
-- api: what a payment that holds an authorization was accepted for (live or archived): a second post
-- of the same authorization with the same terms gets the same answer.
SELECT token_address, quantity, recipient, amount, valid_after, valid_before
  FROM payment_queue WHERE id = %(id)s
UNION ALL
SELECT token_address, quantity, recipient, amount, valid_after, valid_before
  FROM payment_queue_archive WHERE id = %(id)s
LIMIT 1;

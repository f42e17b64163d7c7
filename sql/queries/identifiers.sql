-- name: claim_identifier
-- api: before the payment is written, the payer's id is claimed for this payload. A claim whose
-- payment never got written (its API process died) is taken over after a minute.
INSERT INTO payment_identifiers (payer, id, fingerprint)
VALUES (%(payer)s, %(id)s, %(fingerprint)s)
ON CONFLICT (payer, id) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, claimed_at = now()
 WHERE payment_identifiers.payment_id IS NULL AND payment_identifiers.claimed_at < now() - interval '1 minute'
RETURNING payer;

-- name: identifier
-- api: what an id already names (the payload it was claimed for, and its payment once written).
SELECT fingerprint, payment_id FROM payment_identifiers WHERE payer = %(payer)s AND id = %(id)s;

-- name: name_payment
-- api: the payment is written: the id names it from now on.
UPDATE payment_identifiers SET payment_id = %(payment_id)s
 WHERE payer = %(payer)s AND id = %(id)s AND fingerprint = %(fingerprint)s AND payment_id IS NULL;

-- name: release_identifier
-- api: the payment was refused (nothing stored): the id is free again.
DELETE FROM payment_identifiers
 WHERE payer = %(payer)s AND id = %(id)s AND fingerprint = %(fingerprint)s AND payment_id IS NULL;

-- name: payment_terms_by_id
-- api: what a payment that holds an authorization was accepted for (live or archived): a second post
-- of the same authorization with the same terms and signature gets the same answer.
SELECT token_address, quantity, recipient, amount, valid_after, valid_before, signature
  FROM payment_queue WHERE id = %(id)s
UNION ALL
SELECT token_address, quantity, recipient, amount, valid_after, valid_before, signature
  FROM payment_queue_archive WHERE id = %(id)s
LIMIT 1;

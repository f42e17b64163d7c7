"""What the chain says about a payment, whoever sent the transaction: when a payment counts as paid
(``authorizations``), the ``transferWithAuthorization`` calls that pay it and their pre-flight
(``payment_calls``), what a settled transaction writes for its payments and mints (``outcomes``),
the deterministic ids of the mints a payment buys (``mint_ids``) and what a mint receipt says
(``mint_logs``), writing each verdict as a compare-and-set (``payments``), the watch over failed
payments whose authorization may still be used (``late_payments``), our payment transactions not yet
mined (``unmined``), refunds (``refunds``) and operators' decisions checked against the chain
(``review``).

May import: shared.txs, shared.chain, shared.db and the top-level modules.
"""

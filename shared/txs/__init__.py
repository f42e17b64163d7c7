"""Our own chain transactions, the Chainlink TXM way: a nonce allocated in PostgreSQL (``nonces``),
the transaction signed and stored before it is broadcast (``txstore``), stored bytes broadcast and
the outcome recorded (``broadcaster``), a stage's pool of relayer keys with their gap fillers and fee
bumps (``relayer``), the claim → process → release cycle of a sending stage (``sender_stage``), and
the retry and fee-bump rules as pure functions (``retry``).

May import: shared.chain, shared.db and the top-level modules (config, runtime); never
shared.settlement, which stands on this room.
"""

"""Code the API, the stages and the CLI share. Its rooms, lowest first:

- ``db/`` — PostgreSQL: connection pools, the named SQL blocks of ``sql/queries``, migrations.
- ``chain/`` — the EVM node: client (signing, fees, classified broadcasts), JSON-RPC batches, revert
  reasons, compiled contract artifacts, Multicall3.
- ``x402/`` — what a buyer signs and sends: x402 wire formats (v1, v2), the EIP-3009 authorization
  (EIP-712 digest, signature checks) and binding a recipient into its nonce.
- ``txs/`` — our own transactions: write-ahead store, nonces in PostgreSQL, relayer keys and their
  upkeep, broadcasting stored bytes, the sender-stage base, retry and fee-bump rules.
- ``settlement/`` — what the chain says about a payment: when it counts as paid, the transfer calls
  that pay it, what a settled transaction writes, mint ids and mint logs, the late-payment watch.

At the top level only what belongs to all: ``config`` (settings), ``logs`` (structured logging),
``runtime`` (what a stage process holds) and ``stage`` (the run loop).

Imports run one way (checked by import-linter, see pyproject.toml): settlement may use txs, and
both may use chain and db; chain, db and x402 use no other room; nothing in shared imports api,
workers or cli.
"""

"""PostgreSQL: connection pools (``pools``), the named SQL blocks of ``sql/queries`` (``queries``) and
the numbered migrations of ``sql/migrations`` (``migrations``).

May import: third-party libraries only (no other room of shared).
"""

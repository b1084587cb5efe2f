"""The storage port's backends (engine/store/port.py), one module each.

``core`` (:class:`~engine.store.backends.core.CoreStore`) runs every statement through
SQLAlchemy Core, on any driver. ``sqlite`` and ``postgres`` write the statements of the
command path (load, append, timers, outbox, ledger, the sweep, replay and verification
reads, bulk starts) as plain SQL on their driver (sqlite3, psycopg), inside the caller's
SQLAlchemy transaction, and inherit Core's for everything else. Each converts values in
one small function (``to_db``/``read_time``), and ``tests/test_store_port.py`` proves they
store byte for byte what Core stores.
"""

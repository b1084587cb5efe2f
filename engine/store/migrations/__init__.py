"""Alembic migrations of the store's schema (run through ``engine.store.migrate``)."""

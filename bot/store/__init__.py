"""The store: SQLAlchemy models and queries (storage.py), Alembic migrations beside them (migrate.py, migrations/)."""

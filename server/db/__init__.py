"""The database: tables (models.py), the engine and sessions (engine.py), Alembic migrations (migrations/)."""

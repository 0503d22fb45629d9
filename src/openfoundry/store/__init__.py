"""Persistence: SQLAlchemy Core tables, Alembic migrations, and the queries the rest of the app needs."""

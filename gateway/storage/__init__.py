"""Persistence: the relational schema, its migrations, and repositories over SQLite or PostgreSQL."""

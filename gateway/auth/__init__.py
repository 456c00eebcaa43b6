"""Caller authentication: Tollgate keys (JWT from an identity provider comes later)."""

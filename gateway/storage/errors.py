"""Storage errors, translated from the database driver where they enter."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or failed to answer."""


class AlreadyExists(StorageError):
    """A record with that identity exists already."""


class UnknownRecord(StorageError):
    """A record the operation refers to does not exist."""

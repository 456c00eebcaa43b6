"""Storage errors, translated from the database driver where they enter."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or failed to answer."""


class StorageRejected(StorageError):
    """The database is up but refused what was written: a value it cannot store (a NUL in a text, an
    integer past 64 bits, a number too large for its column)."""


class AlreadyExists(StorageError):
    """A record with that identity exists already."""


class UnknownRecord(StorageError):
    """A record the operation refers to does not exist."""

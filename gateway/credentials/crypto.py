"""Envelope encryption of provider credentials with AES-256-GCM.

Each credential is encrypted under its own random data key; the data key is encrypted ("wrapped")
under the master key. The id of the master key is stored beside each record so the master key can
be rotated later. The associated data binds the ciphertext to its owner (tenant, provider, record
id): a ciphertext copied into another row fails to decrypt. A canary encrypted at first start lets
the gateway refuse a wrong master key before it serves anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger("tollgate.master_key")

NONCE_BYTES = 12
KEY_BYTES = 32
CANARY = b"tollgate keyring canary v1"
ACCEPTED = (
    f"expected {2 * KEY_BYTES} hex digits, or {KEY_BYTES} bytes in base64 (standard or urlsafe alphabet, "
    "padding optional) as `tollgate master-key generate` writes"
)
# Set by `tollgate serve` for its workers to the key file whose mode it has already checked (and warned
# about): each worker loads the key again, and one start should say so once, not once per process.
MODE_CHECKED_ENV = "TOLLGATE_MASTER_KEY_FILE_CHECKED"


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one this database was set up with."""


class DecryptionError(Exception):
    """A ciphertext failed authentication: wrong key, wrong owner, or tampered with."""


class MasterKey:
    """The key-encryption key. Its bytes never leave this object; `id` is a public fingerprint."""

    __slots__ = ("_aead", "id")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise MasterKeyError(f"the master key must be {KEY_BYTES} bytes, got {len(material)}")
        self._aead = AESGCM(material)
        self.id = "mk-" + hmac.new(material, b"tollgate master key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    @classmethod
    def generate(cls) -> tuple[MasterKey, str]:
        """A new random master key and its text form (urlsafe base64) for a key file."""
        material = os.urandom(KEY_BYTES)
        return cls(material), base64.urlsafe_b64encode(material).decode().rstrip("=")

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse 64 hex digits or base64 (standard or urlsafe, padding optional), strictly: surrounding
        whitespace aside, a character of neither alphabet, or anything after the padding, is an error
        rather than skipped, so that a damaged key is refused instead of read as another one."""
        value = text.strip()
        if len(value) == 2 * KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in value):
            return cls(bytes.fromhex(value))
        try:
            material = base64.b64decode(
                value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"the master key is neither 64 hex digits nor base64: {ACCEPTED}") from None
        if len(material) != KEY_BYTES:
            raise MasterKeyError(f"the master key must be {KEY_BYTES} bytes, got {len(material)}: {ACCEPTED}")
        return cls(material)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise DecryptionError("authentication failed") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    wrapped_data_key: bytes
    ciphertext: bytes


def credential_aad(record_id: str, tenant_id: str | None, provider: str) -> bytes:
    """Associated data binding a credential to its owner and row."""
    owner = "shared" if tenant_id is None else f"tenant:{tenant_id}"
    return "\x1f".join(("tollgate.credential.v1", owner, provider, record_id)).encode()


def seal_envelope(master: MasterKey, plaintext: bytes, aad: bytes) -> Envelope:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)
    return Envelope(master.seal(data_key, aad), ciphertext)


def open_envelope(master: MasterKey, envelope: Envelope, aad: bytes) -> bytes:
    data_key = master.open(envelope.wrapped_data_key, aad)
    try:
        return AESGCM(data_key).decrypt(
            envelope.ciphertext[:NONCE_BYTES], envelope.ciphertext[NONCE_BYTES:], aad
        )
    except (InvalidTag, ValueError):
        raise DecryptionError("authentication failed") from None


def canary_aad(master_key_id: str) -> bytes:
    return f"tollgate.keyring.v1\x1f{master_key_id}".encode()


def load_master_key(env_name: str, file: Path | None, environ: Mapping[str, str] | None = None) -> MasterKey:
    """The master key from the environment variable, else from the file; never a default."""
    env = os.environ if environ is None else environ
    text = env.get(env_name)
    if text:
        try:
            return MasterKey.from_text(text)
        except MasterKeyError as exc:
            raise MasterKeyError(f"{env_name}: {exc}") from None
    if file is None:
        raise MasterKeyError(
            f"no master key: set {env_name} or master_key.file "
            "(generate one with `tollgate master-key generate FILE`)"
        )
    try:
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise MasterKeyError(f"cannot read master key file {file}: {reason}") from None
    try:
        key = MasterKey.from_text(text)
    except MasterKeyError as exc:
        raise MasterKeyError(f"master key file {file}: {exc}") from None
    if env.get(MODE_CHECKED_ENV) != str(file.absolute()):
        _warn_if_open_to_others(file)
    return key


def _warn_if_open_to_others(file: Path) -> None:
    """Say so when others than the file's owner may read or change the master key, as ssh does of a private
    key, but go on: containers often mount secrets with other modes, and the file may be meant for a group."""
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "master key file %s has mode %04o: users other than its owner can read or change it "
            "(chmod 600 %s)",
            file,
            mode,
            file,
            extra={"fields": {"file": str(file), "mode": f"{mode:04o}"}},
        )

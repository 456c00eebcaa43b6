"""gateway.credentials.crypto: envelope encryption, master key parsing and loading."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path

import pytest

from gateway.credentials.crypto import (
    MODE_CHECKED_ENV,
    DecryptionError,
    Envelope,
    MasterKey,
    MasterKeyError,
    credential_aad,
    load_master_key,
    open_envelope,
    seal_envelope,
)

# Bytes whose base64 contains both `+` and `/`, so standard and urlsafe forms differ.
MATERIAL = bytes([0xFB, 0xFF, 0xBF]) * 10 + b"\x00\x01"
AAD = credential_aad("cred_1", "acme", "openai")


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(MATERIAL)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


# -- envelope -----------------------------------------------------------------------------------------


def test_an_envelope_opens_to_what_was_sealed(master: MasterKey) -> None:
    envelope = seal_envelope(master, b"sk-live-123", AAD)

    assert open_envelope(master, envelope, AAD) == b"sk-live-123"
    assert b"sk-live-123" not in envelope.ciphertext + envelope.wrapped_data_key


def test_sealing_twice_gives_different_ciphertexts(master: MasterKey) -> None:
    first = seal_envelope(master, b"sk-live-123", AAD)
    second = seal_envelope(master, b"sk-live-123", AAD)

    assert first.ciphertext != second.ciphertext
    assert first.wrapped_data_key != second.wrapped_data_key


@pytest.mark.parametrize(
    "other_owner",
    [
        credential_aad("cred_1", "globex", "openai"),
        credential_aad("cred_1", None, "openai"),
        credential_aad("cred_1", "acme", "anthropic"),
        credential_aad("cred_2", "acme", "openai"),
    ],
)
def test_an_envelope_does_not_open_for_another_owner(master: MasterKey, other_owner: bytes) -> None:
    envelope = seal_envelope(master, b"sk-live-123", AAD)

    with pytest.raises(DecryptionError):
        open_envelope(master, envelope, other_owner)


def test_the_shared_owner_cannot_be_impersonated_by_a_tenant_called_shared() -> None:
    assert credential_aad("cred_1", None, "openai") != credential_aad("cred_1", "shared", "openai")


@pytest.mark.parametrize("part", ["ciphertext", "wrapped_data_key"])
def test_a_tampered_envelope_does_not_open(master: MasterKey, part: str) -> None:
    envelope = seal_envelope(master, b"sk-live-123", AAD)
    tampered = (
        Envelope(envelope.wrapped_data_key, flip_last_byte(envelope.ciphertext))
        if part == "ciphertext"
        else Envelope(flip_last_byte(envelope.wrapped_data_key), envelope.ciphertext)
    )

    with pytest.raises(DecryptionError):
        open_envelope(master, tampered, AAD)


def test_a_truncated_envelope_does_not_open(master: MasterKey) -> None:
    envelope = seal_envelope(master, b"sk-live-123", AAD)

    with pytest.raises(DecryptionError):
        open_envelope(master, Envelope(envelope.wrapped_data_key[:5], envelope.ciphertext), AAD)
    with pytest.raises(DecryptionError):
        open_envelope(master, Envelope(envelope.wrapped_data_key, envelope.ciphertext[:5]), AAD)


def test_an_envelope_does_not_open_under_another_master_key(master: MasterKey) -> None:
    envelope = seal_envelope(master, b"sk-live-123", AAD)
    other, _ = MasterKey.generate()

    with pytest.raises(DecryptionError):
        open_envelope(other, envelope, AAD)


# -- MasterKey ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        MATERIAL.hex(),
        MATERIAL.hex().upper(),
        base64.b64encode(MATERIAL).decode(),
        base64.b64encode(MATERIAL).decode().rstrip("="),
        base64.urlsafe_b64encode(MATERIAL).decode(),
        base64.urlsafe_b64encode(MATERIAL).decode().rstrip("="),
        f"  {MATERIAL.hex()}\n",
        base64.urlsafe_b64encode(MATERIAL).decode() + "\n",
    ],
    ids=[
        "hex",
        "HEX",
        "base64",
        "base64-unpadded",
        "urlsafe",
        "urlsafe-unpadded",
        "hex-spaced",
        "with-newline",
    ],
)
def test_a_master_key_is_read_from_hex_or_any_base64(text: str) -> None:
    assert MasterKey.from_text(text).id == MasterKey(MATERIAL).id


def test_standard_and_urlsafe_base64_of_one_key_are_the_same_key() -> None:
    standard, urlsafe = base64.b64encode(MATERIAL).decode(), base64.urlsafe_b64encode(MATERIAL).decode()
    assert {"+", "/"} <= set(standard)
    assert {"-", "_"} <= set(urlsafe)

    assert MasterKey.from_text(standard).id == MasterKey.from_text(urlsafe).id


@pytest.mark.parametrize(
    "text",
    [
        bytes(31).hex(),
        bytes(33).hex(),
        base64.b64encode(bytes(16)).decode(),
        base64.urlsafe_b64encode(bytes(31)).decode(),
        base64.urlsafe_b64encode(bytes(33)).decode().rstrip("="),
        "",
    ],
    ids=["hex-31", "hex-33", "base64-16", "base64-31", "base64-33", "empty"],
)
def test_a_master_key_of_the_wrong_length_is_refused(text: str) -> None:
    with pytest.raises(MasterKeyError, match="must be 32 bytes"):
        MasterKey.from_text(text)


def test_text_that_is_neither_hex_nor_base64_is_refused() -> None:
    with pytest.raises(MasterKeyError):
        MasterKey.from_text("not a key at all")


STANDARD = base64.b64encode(MATERIAL).decode()
HEX_PAIRS = [MATERIAL.hex()[i : i + 2] for i in range(0, 2 * len(MATERIAL), 2)]


@pytest.mark.parametrize(
    "text",
    [
        STANDARD[:10] + " " + STANDARD[10:],
        STANDARD[:10] + "!!**" + STANDARD[10:],
        ".".join(STANDARD),
        STANDARD[:10] + "\n" + STANDARD[10:],
        STANDARD + "AAAA",
        STANDARD.rstrip("=") + "====",
        ":".join(HEX_PAIRS),
        " ".join(HEX_PAIRS),
        "é" * 43,
    ],
    ids=[
        "space-inside",
        "junk-inside",
        "dots-between",
        "line-break-inside",
        "data-after-padding",
        "too-much-padding",
        "hex-with-colons",
        "hex-with-spaces",
        "non-ascii",
    ],
)
def test_a_master_key_with_a_character_out_of_place_is_refused_not_read_without_it(text: str) -> None:
    with pytest.raises(MasterKeyError) as refusal:
        MasterKey.from_text(text)

    assert "64 hex digits, or 32 bytes in base64 (standard or urlsafe alphabet" in str(refusal.value)


def test_a_master_key_of_the_wrong_length_is_told_which_formats_are_accepted() -> None:
    with pytest.raises(
        MasterKeyError, match=r"must be 32 bytes, got 16: expected 64 hex digits, or 32 bytes"
    ):
        MasterKey.from_text(base64.b64encode(bytes(16)).decode())


def test_a_generated_master_key_reads_back_from_its_text() -> None:
    key, text = MasterKey.generate()

    assert MasterKey.from_text(text).id == key.id


def test_the_master_key_id_is_a_stable_fingerprint_that_does_not_reveal_the_key() -> None:
    key = MasterKey(MATERIAL)

    assert key.id == MasterKey(MATERIAL).id
    assert key.id != MasterKey(bytes(32)).id
    assert key.id.startswith("mk-")
    for form in (MATERIAL.hex(), base64.b64encode(MATERIAL).decode()):
        assert form[:8] not in repr(key)
        assert form[:8] not in key.id
    assert repr(key) == f"MasterKey(id={key.id!r})"


# -- load_master_key ----------------------------------------------------------------------------------


def test_the_environment_variable_wins_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "master.key"
    file.write_text(bytes(32).hex())

    key = load_master_key("TOLLGATE_MASTER_KEY", file, {"TOLLGATE_MASTER_KEY": MATERIAL.hex()})

    assert key.id == MasterKey(MATERIAL).id


def test_the_file_is_read_when_the_environment_variable_is_unset_or_empty(tmp_path: Path) -> None:
    file = tmp_path / "master.key"
    file.write_text(MATERIAL.hex() + "\n")

    assert load_master_key("TOLLGATE_MASTER_KEY", file, {}).id == MasterKey(MATERIAL).id
    assert (
        load_master_key("TOLLGATE_MASTER_KEY", file, {"TOLLGATE_MASTER_KEY": ""}).id == MasterKey(MATERIAL).id
    )


def test_no_environment_variable_and_no_file_is_an_error_not_a_default() -> None:
    with pytest.raises(MasterKeyError, match="no master key: set TOLLGATE_MASTER_KEY"):
        load_master_key("TOLLGATE_MASTER_KEY", None, {})


def test_a_missing_key_file_is_a_master_key_error(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="cannot read master key file"):
        load_master_key("TOLLGATE_MASTER_KEY", tmp_path / "absent.key", {})


def test_a_key_file_that_is_not_text_is_a_master_key_error(tmp_path: Path) -> None:
    file = tmp_path / "master.key"
    file.write_bytes(MATERIAL)

    with pytest.raises(MasterKeyError, match="cannot read master key file"):
        load_master_key("TOLLGATE_MASTER_KEY", file, {})


def test_a_malformed_key_names_where_it_came_from(tmp_path: Path) -> None:
    file = tmp_path / "master.key"
    file.write_text("abc")

    with pytest.raises(MasterKeyError, match=r"^MY_KEY: "):
        load_master_key("MY_KEY", None, {"MY_KEY": "abc"})
    with pytest.raises(MasterKeyError, match=f"^master key file {re.escape(str(file))}: "):
        load_master_key("MY_KEY", file, {})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o666, 0o604], ids=oct)
def test_a_key_file_others_can_read_is_used_with_a_warning_naming_it_and_its_mode_not_its_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    file = tmp_path / "master.key"
    file.write_text(MATERIAL.hex())
    file.chmod(mode)

    with caplog.at_level(logging.WARNING, logger="tollgate.master_key"):
        key = load_master_key("TOLLGATE_MASTER_KEY", file, {})

    assert key.id == MasterKey(MATERIAL).id
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert str(file) in warning.getMessage() and f"mode {mode:04o}" in warning.getMessage()
    assert MATERIAL.hex()[:8] not in caplog.text


def test_a_key_file_whose_mode_serve_has_checked_is_not_warned_about_again_by_its_workers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checked, other = tmp_path / "master.key", tmp_path / "other.key"
    for file in (checked, other):
        file.write_text(MATERIAL.hex())
        file.chmod(0o644)
    environ = {MODE_CHECKED_ENV: str(checked.absolute())}

    with caplog.at_level(logging.WARNING, logger="tollgate.master_key"):
        load_master_key("TOLLGATE_MASTER_KEY", checked, environ)
        load_master_key("TOLLGATE_MASTER_KEY", other, environ)

    [warning] = caplog.records
    assert str(other) in warning.getMessage()


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_a_key_file_only_its_owner_can_read_is_used_without_a_word(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    file = tmp_path / "master.key"
    file.write_text(MATERIAL.hex())
    file.chmod(mode)

    with caplog.at_level(logging.DEBUG):
        load_master_key("TOLLGATE_MASTER_KEY", file, {})

    assert caplog.records == []


def test_a_key_from_the_environment_is_used_without_a_word_about_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "master.key"
    file.write_text(bytes(32).hex())
    file.chmod(0o644)

    with caplog.at_level(logging.DEBUG):
        load_master_key("TOLLGATE_MASTER_KEY", file, {"TOLLGATE_MASTER_KEY": MATERIAL.hex()})

    assert caplog.records == []

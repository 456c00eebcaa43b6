"""Every provider family presents the tenant's credential in a header the caller's copy of is stripped, so
that the injected credential is the only one the provider sees, whatever the caller sent beside its key."""

from __future__ import annotations

import pytest

from gateway.auth.extract import CREDENTIAL_HEADERS
from gateway.http.headers import upstream_headers
from gateway.providers.registry import FAMILIES
from gateway.settings.schema import ProviderType


@pytest.mark.parametrize("family", list(ProviderType))
def test_the_header_a_family_presents_its_credential_in_never_comes_from_the_caller(
    family: ProviderType,
) -> None:
    header = FAMILIES[family].credential.header

    assert header.encode() in CREDENTIAL_HEADERS
    assert upstream_headers([(header.encode(), b"sk-callers-own"), (b"accept", b"*/*")]) == [
        ("accept", "*/*")
    ]

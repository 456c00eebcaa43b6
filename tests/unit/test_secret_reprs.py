"""The objects that carry a call's secrets never show them in their repr (an error reporter that
captures local variables prints reprs)."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.providers import build_adapters
from gateway.settings import parse_settings
from gateway.upstream.transport import UpstreamRequest

SETTINGS = parse_settings({"providers": {"gemini": {"type": "gemini", "base_url": "http://127.0.0.1:9"}}})
ADAPTER = build_adapters(SETTINGS.providers)["gemini"]
CALLER_KEY = "tg-callerkey-0123456789"
CREDENTIAL = "AIza-tenant-credential-9876543210"


async def _receive() -> dict[str, object]:
    return {"type": "http.disconnect"}


def test_a_request_context_shows_neither_the_callers_headers_nor_its_query() -> None:
    ctx = RequestContext(
        "rid",
        1.0,
        "POST",
        ADAPTER,
        b"/v1beta/models/gemini-2.5-flash:generateContent",
        f"key={CALLER_KEY}".encode(),
        [(b"authorization", f"Bearer {CALLER_KEY}".encode())],
        _receive,
    )

    assert CALLER_KEY not in repr(ctx)
    assert "rid" in repr(ctx)


def test_an_upstream_request_does_not_show_the_credential_it_carries() -> None:
    request = UpstreamRequest(
        "POST",
        "http://127.0.0.1:9/v1beta/models",
        [("x-goog-api-key", CREDENTIAL)],
        b"{}",
        SETTINGS.providers["gemini"].timeouts,
    )

    assert CREDENTIAL not in repr(request)
    assert "http://127.0.0.1:9/v1beta/models" in repr(request)

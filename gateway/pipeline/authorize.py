"""Stage: what the key may reach. Checks the key's allowed providers and models.

A key limited to some models reaches them only: a call that generates (or starts work billed later)
must name one of them, in its path or its JSON body, and one that names none is refused rather than let
through to whatever model the upstream would pick (its default, a stored prompt's, a batch file's).
Reads, deletions and the bookkeeping calls (uploads, cancels, their bodies JSON or not) name no model
and stay open to it, as do token counts. A body that names its model twice is refused: the gateway
reads the last, as most parsers do, but a provider that read the first would run a model the key may not.
"""

from __future__ import annotations

import json
import re

from gateway.context import RequestContext
from gateway.errors import (
    InvalidJSON,
    ModelNotAllowed,
    ProviderNotAllowed,
    UnsupportedContentEncoding,
    UnsupportedMediaType,
)
from gateway.metering.meter import endpoint_of
from gateway.metering.usage import Endpoint

MODEL_FREE = frozenset({Endpoint.UNMETERED, Endpoint.COUNT_TOKENS})


class Authorize:
    async def __call__(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        assert principal is not None, "Authorize runs after Authenticate"
        allowed = principal.allowed_providers
        if allowed is not None and ctx.provider.name not in allowed:
            raise ProviderNotAllowed(f"this key may not use provider {ctx.provider.name!r}")
        models = principal.allowed_models
        if models is None:
            return
        try:
            model = ctx.model()
        except InvalidJSON:  # a multipart upload, say: no model to read, fine where none is needed
            if _names_no_model(ctx):
                return
            _refuse_unreadable_body(ctx)
            raise
        if model is None:
            if _names_no_model(ctx):
                return
            if ctx.body and type(ctx.json_body()) is not dict:  # what is wrong is the body, not the model
                raise InvalidJSON("the request body is not a JSON object")
            raise ModelNotAllowed(
                f"this key may use only the models {', '.join(sorted(models))}, and this request names none"
            )
        if model not in models:
            raise ModelNotAllowed(f"this key may not use model {model!r}")
        if ctx.provider.model_from_path(ctx.path) is None and not _names_one_model(ctx.body):
            raise InvalidJSON("the request body names its model more than once")


def _refuse_unreadable_body(ctx: RequestContext) -> None:
    """`UnsupportedMediaType` for a body that is no JSON by design (compressed, a form), whose model the
    gateway cannot read; a body that claims to be JSON is left to be refused as invalid."""
    content_type = b""
    for name, value in ctx.headers:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise UnsupportedContentEncoding(
                "a key limited to some models needs the request body uncompressed (no Content-Encoding), "
                "so that the gateway can read its model"
            )
        if name == b"content-type":
            content_type = value.partition(b";")[0].strip().lower()
    if content_type and not content_type.endswith((b"/json", b"+json")):
        raise UnsupportedMediaType(
            f"a key limited to some models needs a JSON body here, so that the gateway can read its model; "
            f"it does not read {content_type.decode('latin-1')} bodies"
        )


# A `model` member the body could hold without the bytes `"model"`: one of its letters escaped.
_ESCAPED_MODEL_LETTER = re.compile(rb"\\u006[45cdfCDF]")


def _names_one_model(body: bytes) -> bool:
    """Whether the body's top-level object has at most one `model` member; read in full only when its
    bytes could hold two (twice `"model"`, or a letter of it escaped)."""
    if body.count(b'"model"') < 2 and _ESCAPED_MODEL_LETTER.search(body) is None:
        return True
    objects: list[list[tuple[str, object]]] = []  # every object's members, the top-level one last

    def keep(pairs: list[tuple[str, object]]) -> dict[str, object]:
        objects.append(pairs)
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=keep)
    except ValueError:
        return False
    return sum(name == "model" for name, _ in objects[-1]) <= 1


def _names_no_model(ctx: RequestContext) -> bool:
    """Whether the call is one that needs no model: a read, a deletion, a bookkeeping call, a count."""
    return endpoint_of(ctx.provider.kind, ctx.method, ctx.path) in MODEL_FREE

"""Which kind of call a request is, from its provider family, method and path (pure).

Paths are the ones the caller used below the provider's mount (`/v1/chat/completions`,
`/openai/deployments/d/chat/completions`, `/v1beta/models/m:streamGenerateContent`). A query string,
if one is still attached, is ignored. Gemini also serves OpenAI's API, under `/v1beta/openai/` (and
`/v1/openai/`): those calls are classified, and metered, as OpenAI's (`openai_style`).

Reads (GET, HEAD, OPTIONS), deletions and the bookkeeping APIs (models, files, vector stores, cached
contents, a batch's or a job's cancel...) are UNMETERED: the provider does not bill them. The calls that
start work the provider bills when it is done, elsewhere than in their response (creating a batch, a
fine-tuning job, an eval run, a container, a Realtime call), are BILLED_LATER: their cost is unknown
here, not zero. A POST that is none of these is OTHER.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.metering.usage import Endpoint

OPENAI_STYLE = frozenset({"openai", "openai-compatible", "azure-openai"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

# Resource names (a path segment) whose calls are never billed per token by the response itself.
OPENAI_BOOKKEEPING = frozenset(
    {
        "models",
        "files",
        "uploads",
        "batches",
        "fine_tuning",
        "fine-tunes",
        "vector_stores",
        "organization",
        "moderations",
        "assistants",
        "containers",
        "evals",
        "chatkit",
        "conversations",
        "realtime",
    }
)
ANTHROPIC_BOOKKEEPING = frozenset({"models", "files", "batches", "organizations", "skills"})
GEMINI_BOOKKEEPING = frozenset(
    {"files", "cachedContents", "tunedModels", "batches", "operations", "corpora", "fileSearchStores"}
)

GEMINI_METHODS: Mapping[str, Endpoint] = MappingProxyType(
    {
        "generateContent": Endpoint.GENERATE_CONTENT,
        "streamGenerateContent": Endpoint.STREAM_GENERATE_CONTENT,
        "embedContent": Endpoint.EMBED_CONTENT,
        "batchEmbedContents": Endpoint.EMBED_CONTENT,
        "countTokens": Endpoint.COUNT_TOKENS,
        "batchGenerateContent": Endpoint.BILLED_LATER,
        "asyncBatchEmbedContent": Endpoint.BILLED_LATER,
        # File Search: a file imported or uploaded to a store is billed for the embeddings made when
        # it is indexed, after the call answers (the store itself, and its queries, cost nothing)
        "importFile": Endpoint.BILLED_LATER,
        "uploadToFileSearchStore": Endpoint.BILLED_LATER,
    }
)


def classify(kind: str, method: str, path: str) -> Endpoint:
    """The endpoint of a `method` request to `path` on a provider of family `kind`."""
    segments = _segments(path)
    method = method.upper()
    if method in READ_METHODS:
        return Endpoint.UNMETERED
    if kind in OPENAI_STYLE:
        endpoint = _openai(segments)
    elif kind == "anthropic":
        endpoint = _anthropic(segments)
    elif kind == "gemini":
        endpoint = _gemini(segments)
    else:
        endpoint = Endpoint.OTHER
    if endpoint is not Endpoint.UNMETERED and method != "POST":
        return Endpoint.OTHER
    return endpoint


def openai_style(kind: str, path: str) -> bool:
    """Whether a call to `path` on a provider of family `kind` speaks OpenAI's API: every call to an
    OpenAI-style provider, and a call to Gemini's OpenAI-compatible API (`/v1beta/openai/...`)."""
    return kind in OPENAI_STYLE or (kind == "gemini" and _gemini_openai(_segments(path)))


def request_wants_stream(endpoint: Endpoint, body_json: object, query: str = "") -> bool:
    """Whether the caller asked for a streamed response.

    OpenAI-style and Anthropic requests say so with `"stream": true` in the body; Gemini by calling
    `:streamGenerateContent` (its `alt=sse` query parameter only picks the framing, `query` is unused).
    """
    if endpoint is Endpoint.STREAM_GENERATE_CONTENT:
        return True
    if endpoint in (Endpoint.CHAT_COMPLETIONS, Endpoint.COMPLETIONS, Endpoint.RESPONSES, Endpoint.MESSAGES):
        return isinstance(body_json, dict) and body_json.get("stream") is True
    return False


def _segments(path: str) -> list[str]:
    path = path.partition("?")[0].replace("%3A", ":").replace("%3a", ":")
    return [segment for segment in path.split("/") if segment]


def _openai(segments: list[str]) -> Endpoint:
    if "deployments" in segments[:-1]:  # Azure: the deployment name is the caller's, not a resource
        at = segments.index("deployments")
        segments = segments[:at] + segments[at + 2 :]
    tail = segments[-2:]
    if tail[-1:] in (["batches"], ["containers"]) or tail in (["fine_tuning", "jobs"], ["realtime", "calls"]):
        return Endpoint.BILLED_LATER  # a Realtime call's session is billed as it runs, elsewhere
    if tail[-1:] == ["runs"] and "evals" in segments:
        return Endpoint.BILLED_LATER
    if any(segment in OPENAI_BOOKKEEPING for segment in segments):
        return Endpoint.UNMETERED
    if tail == ["chat", "completions"]:
        return Endpoint.CHAT_COMPLETIONS
    if tail[-1:] == ["completions"]:
        return Endpoint.COMPLETIONS
    if tail[-1:] == ["embeddings"]:
        return Endpoint.EMBEDDINGS
    if tail[-1:] == ["responses"]:
        return Endpoint.RESPONSES
    if tail == ["responses", "input_tokens"]:
        return Endpoint.COUNT_TOKENS
    if tail[-1:] == ["cancel"] or "completions" in segments[:-1]:  # cancel a response, update a stored one
        return Endpoint.UNMETERED
    return Endpoint.OTHER


def _anthropic(segments: list[str]) -> Endpoint:
    if segments == ["v1", "messages"]:
        return Endpoint.MESSAGES
    if segments == ["v1", "messages", "count_tokens"]:
        return Endpoint.COUNT_TOKENS
    if segments == ["v1", "messages", "batches"]:
        return Endpoint.BILLED_LATER
    if any(segment in ANTHROPIC_BOOKKEEPING for segment in segments):
        return Endpoint.UNMETERED
    return Endpoint.OTHER


def _gemini_openai(segments: list[str]) -> bool:
    """Whether a Gemini path is one of its OpenAI-compatible API's, `/v1beta/openai/...`."""
    return "openai" in segments[:2]


def _gemini(segments: list[str]) -> Endpoint:
    if _gemini_openai(segments):
        return _openai(segments)
    last = segments[-1] if segments else ""
    if ":" in last:
        action = last.rpartition(":")[2]
        endpoint = GEMINI_METHODS.get(action)
        if endpoint is not None:
            return endpoint
    if segments[:1] == ["upload"] or any(segment in GEMINI_BOOKKEEPING for segment in segments):
        return Endpoint.UNMETERED
    return Endpoint.OTHER

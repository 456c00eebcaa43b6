"""gateway.metering.endpoints: what kind of call a request is, and whether it asked for a stream."""

from __future__ import annotations

import pytest

from gateway.metering.endpoints import classify, request_wants_stream
from gateway.metering.usage import Endpoint

E = Endpoint


@pytest.mark.parametrize(
    ("kind", "method", "path", "expected"),
    [
        # OpenAI and the compatible servers
        ("openai", "POST", "/v1/chat/completions", E.CHAT_COMPLETIONS),
        ("openai", "POST", "/v1/completions", E.COMPLETIONS),
        ("openai", "POST", "/v1/responses", E.RESPONSES),
        ("openai", "POST", "/v1/embeddings", E.EMBEDDINGS),
        ("openai", "POST", "/v1/responses/input_tokens", E.COUNT_TOKENS),
        ("openai", "POST", "/v1/responses/resp_123/cancel", E.UNMETERED),
        ("openai", "GET", "/v1/responses/resp_123", E.UNMETERED),
        ("openai", "DELETE", "/v1/responses/resp_123", E.UNMETERED),
        ("openai", "GET", "/v1/models", E.UNMETERED),
        ("openai", "POST", "/v1/files", E.UNMETERED),
        ("openai", "POST", "/v1/batches", E.BILLED_LATER),
        ("openai", "POST", "/v1/batches/batch_1/cancel", E.UNMETERED),
        ("openai", "POST", "/v1/fine_tuning/jobs", E.BILLED_LATER),
        ("openai", "POST", "/v1/fine_tuning/jobs/ftjob_1/cancel", E.UNMETERED),
        ("openai", "POST", "/v1/evals/eval_1/runs", E.BILLED_LATER),
        ("openai", "POST", "/v1/evals", E.UNMETERED),
        ("openai", "POST", "/v1/containers", E.BILLED_LATER),
        ("openai", "POST", "/v1/containers/cntr_1/files", E.UNMETERED),
        ("azure-openai", "POST", "/openai/batches", E.BILLED_LATER),
        ("openai", "POST", "/v1/realtime/calls", E.BILLED_LATER),
        ("azure-openai", "POST", "/openai/v1/realtime/calls", E.BILLED_LATER),
        ("openai", "POST", "/v1/realtime/client_secrets", E.UNMETERED),
        ("openai", "POST", "/v1/realtime/calls/rtc_1/hangup", E.UNMETERED),
        ("openai", "POST", "/v1/moderations", E.UNMETERED),
        ("openai", "POST", "/v1/chat/completions/chatcmpl-1", E.UNMETERED),
        ("openai", "POST", "/v1/images/generations", E.OTHER),
        ("openai", "POST", "/v1/audio/transcriptions", E.OTHER),
        ("openai", "POST", "/v1/chat/completions?foo=bar", E.CHAT_COMPLETIONS),
        ("openai", "post", "/v1/chat/completions/", E.CHAT_COMPLETIONS),
        ("openai", "PUT", "/v1/chat/completions", E.OTHER),
        ("openai-compatible", "POST", "/v1/chat/completions", E.CHAT_COMPLETIONS),
        ("openai-compatible", "HEAD", "/v1/chat/completions", E.UNMETERED),
        # Azure OpenAI: deployments, and the v1 form
        ("azure-openai", "POST", "/openai/deployments/gpt4o/chat/completions", E.CHAT_COMPLETIONS),
        ("azure-openai", "POST", "/openai/deployments/instruct/completions", E.COMPLETIONS),
        ("azure-openai", "POST", "/openai/deployments/ada/embeddings", E.EMBEDDINGS),
        ("azure-openai", "POST", "/openai/deployments/models/chat/completions", E.CHAT_COMPLETIONS),
        ("azure-openai", "POST", "/openai/v1/chat/completions", E.CHAT_COMPLETIONS),
        ("azure-openai", "POST", "/openai/v1/responses", E.RESPONSES),
        ("azure-openai", "GET", "/openai/deployments", E.UNMETERED),
        # Anthropic
        ("anthropic", "POST", "/v1/messages", E.MESSAGES),
        ("anthropic", "POST", "/v1/messages/count_tokens", E.COUNT_TOKENS),
        ("anthropic", "POST", "/v1/messages/batches", E.BILLED_LATER),
        ("anthropic", "POST", "/v1/messages/batches/msgbatch_1/cancel", E.UNMETERED),
        ("anthropic", "GET", "/v1/models", E.UNMETERED),
        ("anthropic", "POST", "/v1/complete", E.OTHER),
        # Gemini
        ("gemini", "POST", "/v1beta/models/gemini-2.0-flash:generateContent", E.GENERATE_CONTENT),
        (
            "gemini",
            "POST",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            E.STREAM_GENERATE_CONTENT,
        ),
        (
            "gemini",
            "POST",
            "/v1beta/models/gemini-2.0-flash%3AstreamGenerateContent",
            E.STREAM_GENERATE_CONTENT,
        ),
        ("gemini", "POST", "/v1/models/text-embedding-004:embedContent", E.EMBED_CONTENT),
        ("gemini", "POST", "/v1beta/models/text-embedding-004:batchEmbedContents", E.EMBED_CONTENT),
        ("gemini", "POST", "/v1beta/models/gemini-2.0-flash:countTokens", E.COUNT_TOKENS),
        ("gemini", "POST", "/v1beta/tunedModels/mine:generateContent", E.GENERATE_CONTENT),
        ("gemini", "POST", "/v1beta/models/gemini-2.0-flash:batchGenerateContent", E.BILLED_LATER),
        ("gemini", "POST", "/v1beta/batches/b1:cancel", E.UNMETERED),
        # File Search bills the embeddings of a file when it indexes it, after the call: not free
        ("gemini", "POST", "/v1beta/fileSearchStores/store-1:importFile", E.BILLED_LATER),
        (
            "gemini",
            "POST",
            "/upload/v1beta/fileSearchStores/store-1:uploadToFileSearchStore",
            E.BILLED_LATER,
        ),
        ("gemini", "POST", "/v1beta/fileSearchStores/store-1:uploadToFileSearchStore", E.BILLED_LATER),
        ("gemini", "POST", "/v1beta/fileSearchStores", E.UNMETERED),  # an empty store costs nothing
        ("gemini", "DELETE", "/v1beta/fileSearchStores/store-1/documents/d1", E.UNMETERED),
        ("gemini", "POST", "/v1beta/cachedContents", E.UNMETERED),
        ("gemini", "POST", "/upload/v1beta/files", E.UNMETERED),
        ("gemini", "GET", "/v1beta/models", E.UNMETERED),
        ("gemini", "POST", "/v1beta/models/imagen-3:predict", E.OTHER),
        ("gemini", "POST", "/v1beta/openai/chat/completions", E.CHAT_COMPLETIONS),
        # an unknown family
        ("bedrock", "POST", "/model/x/invoke", E.OTHER),
        ("bedrock", "GET", "/model/x", E.UNMETERED),
    ],
)
def test_classify(kind: str, method: str, path: str, expected: Endpoint) -> None:
    assert classify(kind, method, path) is expected


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        (E.CHAT_COMPLETIONS, {"stream": True}, True),
        (E.CHAT_COMPLETIONS, {"stream": False}, False),
        (E.CHAT_COMPLETIONS, {"stream": "true"}, False),
        (E.COMPLETIONS, {"stream": True}, True),
        (E.RESPONSES, {"stream": True}, True),
        (E.MESSAGES, {"stream": True}, True),
        (E.MESSAGES, {}, False),
        (E.CHAT_COMPLETIONS, None, False),
        (E.CHAT_COMPLETIONS, ["stream"], False),
        (E.STREAM_GENERATE_CONTENT, {}, True),
        (E.GENERATE_CONTENT, {"stream": True}, False),
        (E.EMBEDDINGS, {"stream": True}, False),
    ],
)
def test_request_wants_stream(endpoint: Endpoint, body: object, expected: bool) -> None:
    assert request_wants_stream(endpoint, body, "alt=sse") is expected

"""Gemini's audio input: `usageMetadata.promptTokensDetails` breaks the prompt down by modality
(`ModalityTokenCount {modality, tokenCount}`, `modality` TEXT, IMAGE, VIDEO, AUDIO or DOCUMENT: google-genai,
`types.GenerateContentResponseUsageMetadata`), and Gemini bills audio input at rates of its own on the models
that price it apart. The audio tokens are read as such, so that a call that heard audio is priced at audio
rates where its price gives them, and is unpriced where it gives none, never priced as text."""

from __future__ import annotations

from decimal import Decimal

from gateway.metering.prices import call_cost, load_price_table, parse_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture

BODY = fixture("gemini_generate_audio.json")
HEARD = TokenUsage(input_tokens=1540, output_tokens=14, audio_input_tokens=1500)


def test_the_audio_part_of_the_prompt_is_read_as_audio() -> None:
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, BODY)

    assert extraction.usage == HEARD


def test_a_streamed_response_reads_its_last_chunks_audio_part() -> None:
    stream = b"data: " + BODY.replace(b"\n", b"") + b"\r\n\r\n"

    extraction = extract_every_way("gemini", Endpoint.STREAM_GENERATE_CONTENT, SSE, stream)

    assert extraction.usage == HEARD


def test_audio_output_is_read_from_the_candidates_breakdown() -> None:
    data = BODY.replace(
        b'"candidatesTokensDetails": [\n      {\n        "modality": "TEXT"',
        b'"candidatesTokensDetails": [\n      {\n        "modality": "AUDIO"',
    )
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, data)

    assert extraction.usage == HEARD._replace(audio_output_tokens=14)


def test_a_call_that_heard_audio_of_a_model_without_an_audio_rate_is_unpriced_never_priced_as_text() -> None:
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, BODY)

    assert extraction.usage is not None
    assert call_cost(load_price_table(), "gemini", "gemini", "gemini-2.5-flash", extraction.usage) is None


def test_a_call_that_heard_audio_is_priced_at_the_audio_rate_a_price_gives() -> None:
    prices = parse_price_table(
        {
            "gemini": {
                "gemini-2.5-flash": {
                    "input": "0.30",
                    "audio_input": "1.00",
                    "output": "2.50",
                    "effective_date": "2025-06-17",
                }
            }
        },
        "test",
    )
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, BODY)

    assert extraction.usage is not None
    cost = call_cost(prices, "gemini", "gemini", "gemini-2.5-flash", extraction.usage)
    assert cost == (40 * Decimal("0.30") + 1500 * Decimal("1.00") + 14 * Decimal("2.50")) / 10**6


def test_a_text_only_prompt_has_no_audio_part() -> None:
    extraction = extract_every_way("gemini", Endpoint.GENERATE_CONTENT, JSON, fixture("gemini_generate.json"))

    assert extraction.usage is not None and extraction.usage.audio_input_tokens == 0

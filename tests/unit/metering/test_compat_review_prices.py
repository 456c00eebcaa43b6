"""The names Azure OpenAI gives its models in its responses, priced as OpenAI's models they are."""

from __future__ import annotations

import json

from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, extract_every_way

PRICES = load_price_table(None)


def azure_embeddings_body(model: str) -> bytes:
    """An Azure OpenAI embeddings response, as a text-embedding-ada-002 deployment of some regions
    answers: the model named `ada`."""
    return json.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [-0.009171937, 0.018715322, -0.0016804502]}
            ],
            "model": model,
            "usage": {"prompt_tokens": 7, "total_tokens": 7},
        }
    ).encode()


def test_an_azure_ada_embedding_is_priced_as_text_embedding_ada_002() -> None:
    extraction = extract_every_way("azure-openai", Endpoint.EMBEDDINGS, JSON, azure_embeddings_body("ada"))

    assert (extraction.model, extraction.usage) == ("ada", TokenUsage(input_tokens=7))
    price = PRICES.price_for("azure", "azure-openai", "ada")
    openai_price = PRICES.price_for("openai", "openai", "text-embedding-ada-002")
    assert price is not None and openai_price is not None
    assert price == openai_price
    assert cost_of(extraction.usage, price) == cost_of(extraction.usage, openai_price) > 0

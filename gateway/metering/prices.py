"""Prices: a table of USD per million tokens by provider and model, and the cost of a call under it.

The built-in table (`prices.yaml`, shipped with the package) holds public list prices per provider
family (`openai`, `anthropic`, `gemini`). A deployment's `metering.prices_file` has the same format;
its entries replace the built-in ones per (section, model) from their first effective date on, and its
sections may also be named after configured providers (a local vLLM server, an Azure deployment with
negotiated prices):

    openai:
      gpt-4o:
        input: 2.50           # USD per million input tokens not read from or written to a cache
        cached_input: 1.25    # per million cache reads (default: input)
        cache_write: 2.50     # per million cache writes (default: input)
        output: 10.00         # per million output tokens, reasoning included
        effective_date: 2024-08-06
      gpt-4o-audio-preview:
        input: 2.50           # the text tokens' rates
        output: 10.00
        audio_input: 40.00    # per million audio input tokens (default: none, and a call that
        audio_output: 80.00   # reports audio tokens of a kind without a rate is unpriced)
        effective_date: 2024-12-17
    anthropic:
      claude-sonnet-4-5:
        input: 3.00
        cached_input: 0.30
        cache_write: 3.75     # writes kept five minutes, Anthropic's default
        cache_write_1h: 6.00  # writes kept longer than the default: an hour (no default, and a call
                              # that reports such writes, priced by rates without this one, is unpriced)
        output: 15.00
        web_search: 10.00     # USD per 1,000 searches of the web search tool, on top of the tokens
        effective_date: 2025-09-29
      claude-opus-4-6:
        input: 5.00
        output: 25.00
        inference_geo:        # a call served in a geo other than global: its token cost times this
          us: 1.1             # (default: none, and a call reporting a geo not listed is unpriced)
        effective_date: 2026-02-05
    gemini:
      gemini-2.5-pro:
        input: 1.25
        output: 10.00
        effective_date: 2025-06-17
        long_context:         # a call with more input tokens than this: every token at these rates
          above_input_tokens: 200000
          input: 2.50         # cache rates default to this input rate, as above
          output: 15.00
    azure:
      gpt-4o:                 # several prices, each in force from its effective_date to the next
        - {input: 2.50, cached_input: 1.25, output: 10.00, effective_date: 2024-08-06}
        - {input: 2.00, cached_input: 1.00, output: 8.00, effective_date: 2027-01-01}

A price applies from its `effective_date` (a UTC day) on, never before: until then the model's previous
price applies, else the built-in one the entry replaces, else none (the call is unpriced). Prices are
`Decimal` from the YAML text onwards, never float. Everything here but `load_price_table` (which reads
the files) and the look-up of the prices in force today (which reads the clock) is pure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, NamedTuple

import yaml
from pydantic import AfterValidator, Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

from gateway.metering.usage import STANDARD_GEOS, STANDARD_TIERS, TokenUsage
from gateway.settings.loader import ConfigError, Problem
from gateway.settings.schema import PROVIDER_NAME, Frozen, ProviderType

__all__ = [
    "BUILTIN_SOURCE",
    "OTHER_MODEL",
    "PREMIUM_TIERS",
    "IntegerRates",
    "LongContextRates",
    "ModelPrice",
    "PriceTable",
    "Rates",
    "TierRates",
    "cost_of",
    "load_price_table",
    "model_candidates",
    "parse_price_table",
]

BUILTIN_SOURCE = "gateway/metering/prices.yaml"
OTHER_MODEL = "other"  # the label of every model the table does not price

# The built-in section a provider type falls back to; openai-compatible servers have none.
FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        ProviderType.OPENAI.value: "openai",
        ProviderType.AZURE_OPENAI.value: "openai",
        ProviderType.ANTHROPIC.value: "anthropic",
        ProviderType.GEMINI.value: "gemini",
    }
)

# Version suffixes that name a snapshot of a priced model; each is removed whole, never a loose prefix.
_VERSION_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI snapshots: gpt-4o-2024-08-06
    re.compile(r"[-@]\d{8}$"),  # Anthropic snapshots: claude-sonnet-4-20250514 (Vertex: ...@20250514)
    re.compile(r"-latest$"),  # moving aliases: claude-3-5-haiku-latest
    re.compile(r"-\d{3}$"),  # Gemini stable versions: gemini-2.0-flash-001
)
_MODEL_PREFIX = "models/"  # Gemini's resource names: models/gemini-2.0-flash


# Bounds no price comes near (the dearest list rate, o1-pro's output, is $600 per million tokens; Anthropic's
# US-only inference costs 1.1 times): past them a value is a typo, refused at load rather than billed. A
# finer rate would also make every call it prices slower, its cost being summed in whole units of it.
MAX_RATE = Decimal(10_000)  # USD per million tokens, or per 1,000 web searches
RATE_PLACES = 10
MAX_GEO_FACTOR = Decimal(10)
GEO_FACTOR_PLACES = 6
Rate = Annotated[Decimal, Field(ge=0, le=MAX_RATE, decimal_places=RATE_PLACES)]
GeoFactor = Annotated[Decimal, Field(gt=0, le=MAX_GEO_FACTOR, decimal_places=GEO_FACTOR_PLACES)]


class Rates(Frozen):
    """USD per million tokens of each kind."""

    input: Rate = Field(description="Input tokens neither read from nor written to a cache.")
    output: Rate = Field(description="Output tokens, reasoning tokens included.")
    cached_input: Rate = Field(description="Input tokens read from the prompt cache.")
    cache_write: Rate = Field(description="Input tokens written to the prompt cache.")
    cache_write_1h: Rate | None = Field(
        None,
        description="Input tokens written to the prompt cache to be kept longer than the default: an hour "
        "(Anthropic's 1-hour cache, `cache_creation.ephemeral_1h_input_tokens`), 12 hours (OpenAI's, "
        "`cache_write_tokens_details.ttl_12h_tokens`). No default: a call that reports such writes, "
        "priced by rates without this one, is unpriced (cost null), never priced at the cache_write rate.",
    )
    audio_input: Rate | None = Field(
        None,
        description="Audio input tokens (OpenAI's audio models), cached or not. No default: a call that "
        "reports audio input, priced by rates without this one, is unpriced (cost null), never priced "
        "as text.",
    )
    audio_output: Rate | None = Field(
        None,
        description="Audio output tokens. No default: a call that reports audio output, priced by rates "
        "without this one, is unpriced (cost null).",
    )

    @model_validator(mode="before")
    @classmethod
    def _cache_prices_default_to_input(cls, data: Any) -> Any:
        if isinstance(data, dict) and "input" in data:
            return {"cached_input": data["input"], "cache_write": data["input"], **data}
        return data

    @cached_property
    def in_units(self) -> IntegerRates:
        """These rates as whole numbers of one small unit (see `IntegerRates`), worked out once."""
        rates = (self.input, self.cached_input, self.cache_write, self.output)
        optional = (self.cache_write_1h, self.audio_input, self.audio_output)
        given = [*rates, *(rate for rate in optional if rate is not None)]
        places = max(0, *(-int(rate.as_tuple().exponent) for rate in given))
        uncached, cached, written, output = (int(rate.scaleb(places)) for rate in rates)
        hour, heard, spoken = (None if rate is None else int(rate.scaleb(places)) for rate in optional)
        per_unit = Decimal(10 ** (places + 6))
        return IntegerRates(uncached, cached, written, hour, output, per_unit, heard, spoken)


@dataclass(frozen=True, slots=True)
class IntegerRates:
    """Rates in whole units of `1 / per_unit` USD per token, so that a call's cost is summed exactly in
    Python integers and made a `Decimal` by one division, not by a `Decimal` product per kind of token."""

    input: int
    cached_input: int
    cache_write: int
    cache_write_1h: int | None  # None: no rate (a call that reports such writes is unpriced)
    output: int
    per_unit: Decimal  # units per USD per token: 10**6 (per million) times 10**(decimal places of the rates)
    audio_input: int | None = None  # None: no rate (a call that reports such tokens is unpriced)
    audio_output: int | None = None


class LongContextRates(Rates):
    """The rates of a call whose input is longer than `above_input_tokens`, for every token of it."""

    above_input_tokens: int = Field(
        gt=0, description="Input tokens (cache reads and writes included) past which these rates apply."
    )


class TierRates(Rates):
    """The rates of calls served in one processing tier, and of its long-context calls if priced apart."""

    long_context: Rates | None = Field(
        None,
        description="Rates of this tier's calls whose input is longer than the model's long_context "
        "threshold, for every token of them. Without them, such a call is unpriced (cost null), never "
        "priced at this tier's shorter-context rates; a tier billed alike across the whole window "
        "restates its rates here. Only for a model with long_context: a model without one has no "
        "threshold, and its tiers' rates price every call whatever its length.",
    )


TierName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
GeoName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class ModelPrice(Rates):
    """USD per million tokens of each kind for one model, and for its long-context calls and its
    processing tiers if priced apart."""

    effective_date: date = Field(
        description="The first day (UTC) this price applies: a call before it is priced by the model's "
        "previous price, if any, else unpriced."
    )
    long_context: LongContextRates | None = Field(
        None, description="Rates of calls whose input is longer than a threshold (e.g. above 200k tokens)."
    )
    service_tiers: dict[TierName, TierRates] = Field(
        default_factory=dict,
        description="Rates of calls served in a processing tier other than the standard one, by the name "
        "the response reports (OpenAI's `service_tier`: flex, priority, scale), each with its own "
        "long_context rates if any. Once any tier is listed, a call in a tier not listed is unpriced "
        "(cost null), never priced at the standard rates; with none listed, every call is priced at the "
        "model's own rates.",
    )

    inference_geo: dict[GeoName, GeoFactor] = Field(
        default_factory=dict,
        description="What a call whose inference ran in a geo other than the default, `global`, pays "
        "on its token cost, by the name the response reports (Anthropic's `inference_geo`: `us: 1.1`): "
        "every token rate, those of its tier and long-context rates included, times this; web searches "
        "are not token rates, and cost the same. A call in a geo not listed is unpriced (cost null), "
        "never priced as global.",
    )
    web_search: Rate | None = Field(
        None,
        description="USD per 1,000 web searches the provider runs for a call with its server-side search "
        "tool (Anthropic's web search, OpenAI's `web_search`), on top of the tokens. A call that searched, "
        "of a model with no such price, is unpriced (cost null).",
    )
    web_search_preview: Rate | None = Field(
        None,
        description="USD per 1,000 searches made by OpenAI's earlier `web_search_preview` tool; default: "
        "web_search.",
    )

    @model_validator(mode="before")
    @classmethod
    def _preview_searches_default_to_searches(cls, data: Any) -> Any:
        if isinstance(data, dict) and "web_search" in data:
            return {"web_search_preview": data["web_search"], **data}
        return data

    @model_validator(mode="after")
    def _standard_tier_is_the_model_s_own(self) -> ModelPrice:
        standard = sorted(STANDARD_TIERS & set(self.service_tiers))
        if standard:
            raise ValueError(
                f"service_tiers: {standard[0]!r} is the standard tier, priced by the model's own rates"
            )
        return self

    @model_validator(mode="after")
    def _standard_geo_is_the_model_s_own(self) -> ModelPrice:
        standard = sorted(STANDARD_GEOS & set(self.inference_geo))
        if standard:
            raise ValueError(f"inference_geo: {standard[0]!r} is the standard price, the model's own rates")
        return self

    @model_validator(mode="after")
    def _tier_long_context_needs_the_model_s_threshold(self) -> ModelPrice:
        if self.long_context is None:
            long = sorted(name for name, tier in self.service_tiers.items() if tier.long_context is not None)
            if long:
                raise ValueError(
                    f"service_tiers: {long[0]!r} gives long_context rates, but the model's long_context "
                    "(its above_input_tokens threshold) is not given: without it every call of a tier "
                    "is priced at the tier's own rates"
                )
        return self


# Tiers every provider that names them bills above its standard rates (Anthropic's fast mode, a
# response's `usage.speed: "fast"`; OpenAI's Fast mode, `service_tier: "fast"`): a call in one is priced
# only at its model's rates for that tier, and is unpriced (never charged the standard rates) without.
PREMIUM_TIERS = frozenset({"fast"})

ProviderSection = Annotated[str, Field(pattern=PROVIDER_NAME.pattern)]
ModelName = Annotated[str, Field(min_length=1, max_length=200)]
_MEMO_SIZE = 4096
_SECONDS_PER_DAY = 86_400  # Unix time has no leap seconds: every UTC day starts at a multiple of this
_EPOCH = date(1970, 1, 1)
_NEVER = float("inf")

# One model's prices, newest `effective_date` first: each applies from its date until the next one's.
Schedule = tuple[ModelPrice, ...]


def _one_day_apiece(prices: list[ModelPrice]) -> list[ModelPrice]:
    days = [price.effective_date for price in prices]
    repeated = sorted({day for day in days if days.count(day) > 1})
    if repeated:
        raise ValueError(f"two prices take effect on {repeated[0]}: give each day one price")
    return prices


def _one_or_dated(value: Any) -> str:
    return "dated" if isinstance(value, list) else "one"


# A model's price in a file: one price, or a list of them taking effect on different days.
ModelPrices = Annotated[
    Annotated[ModelPrice, Tag("one")]
    | Annotated[list[ModelPrice], Field(min_length=1), AfterValidator(_one_day_apiece), Tag("dated")],
    Discriminator(_one_or_dated),
]
_FILE = TypeAdapter(dict[ProviderSection, dict[ModelName, ModelPrices]])


class _Found(NamedTuple):
    """What a look-up found: the name `price` was found under (both None: not priced), until `until`."""

    label: str | None
    price: ModelPrice | None
    until: float  # Unix time at which a dated price may change what was found; `_NEVER`: none will


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by section (a provider family or a configured provider name), then by model: each model's
    `Schedule` in `schedules`, and its newest price in `sections`."""

    sections: Mapping[str, Mapping[str, ModelPrice]]
    schedules: Mapping[str, Mapping[str, Schedule]]
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)  # Unix time
    _found: dict[tuple[str, str, str], _Found] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def price_for(
        self, provider_name: str, kind: str, model: str, *, on: date | None = None
    ) -> ModelPrice | None:
        """The price of `model` served by the provider `provider_name` of type `kind` that applies on
        the day `on` (default: the current UTC day), if known.

        The section named after the provider comes first, then its type's family; within each, the
        model by its exact name, then by its name without a snapshot or version suffix. A price whose
        `effective_date` is after that day is passed over, as if not listed: the model's previous price
        applies, else the next name or section's, else none.
        """
        if on is None:
            return self._match(provider_name, kind, model).price
        return self._search(provider_name, kind, model, on).price

    def model_label(self, provider_name: str, kind: str, model: str | None) -> str:
        """The name the table prices `model` under today (`gpt-4o` for `gpt-4o-2024-08-06`), else
        `other`.

        A bounded set of values, fit for a metrics label.
        """
        label = None if model is None else self._match(provider_name, kind, model).label
        return OTHER_MODEL if label is None else label

    def _match(self, provider_name: str, kind: str, model: str) -> _Found:
        """`_search` for the current UTC day, remembered (bounded): every request asks, and for few
        distinct models. The clock is read only for a look-up that a dated price may change."""
        key = (provider_name, kind, model)
        found = self._found.get(key)
        if found is not None and (found.until is _NEVER or self.clock() < found.until):
            return found
        if len(self._found) >= _MEMO_SIZE:
            self._found.clear()
        found = self._found[key] = self._search(provider_name, kind, model, _utc_day(self.clock()))
        return found

    def _search(self, provider_name: str, kind: str, model: str, on: date) -> _Found:
        change: date | None = None  # the first day after `on` that a price passed over takes effect
        for section in _sections_for(provider_name, kind):
            models = self.schedules.get(section)
            if models is None:
                continue
            for candidate in model_candidates(model):
                for price in models.get(candidate, ()):  # newest first
                    if price.effective_date <= on:
                        return _Found(candidate, price, _start_of(change))
                    change = price.effective_date if change is None else min(change, price.effective_date)
        return _Found(None, None, _start_of(change))

    def merged_with(self, override: PriceTable) -> PriceTable:
        """This table with `override`'s prices replacing its own, one (section, model) at a time, from
        the override's first `effective_date` on: a deployment's price dated in the future leaves the
        built-in one in force until then, and keeps applying after any newer built-in one."""
        names = dict.fromkeys([*self.schedules, *override.schedules])
        merged: dict[str, dict[str, Schedule]] = {}
        for name in names:
            models = merged[name] = dict(self.schedules.get(name, {}))
            for model, replacing in override.schedules.get(name, {}).items():
                start = replacing[-1].effective_date
                earlier = tuple(price for price in models.get(model, ()) if price.effective_date < start)
                models[model] = replacing + earlier
        return _frozen_table(merged)


def _utc_day(now: float) -> date:
    return _EPOCH + timedelta(days=int(now // _SECONDS_PER_DAY))


def _start_of(day: date | None) -> float:
    """The Unix time at which the UTC day `day` starts; `_NEVER` for no day."""
    return _NEVER if day is None else float((day - _EPOCH).days * _SECONDS_PER_DAY)


def _sections_for(provider_name: str, kind: str) -> Iterator[str]:
    yield provider_name
    family = FAMILIES.get(kind)
    if family is not None and family != provider_name:
        yield family


def model_candidates(model: str) -> list[str]:
    """The names `model` is priced under, most specific first: itself, then without its version suffix."""
    name = model.removeprefix(_MODEL_PREFIX)
    candidates = [name]
    for suffix in _VERSION_SUFFIXES:
        base = suffix.sub("", name)
        if base != name and base:
            candidates.append(base)
            break
    return candidates


def cost_of(usage: TokenUsage, price: ModelPrice) -> Decimal | None:
    """The cost in USD of `usage` at `price`, exactly; None for a call served in a processing tier (see
    `TokenUsage.service_tier`) that `price` lists no rates for while it lists some, or in one of the
    `PREMIUM_TIERS` it lists no rates for. A price that lists none prices every other call at its own
    rates, whatever tier the response names (compatible servers name tiers of their own: Groq's
    `on_demand`).

    Cached reads and cache writes are parts of `input_tokens` priced at their own rates (writes kept
    longer than the default, an hour or 12 hours, at theirs: a call that reports such writes is unpriced
    if the rates in force give none); should a provider report more of them than input tokens, the
    uncached remainder counts as zero. A call whose input tokens (cache reads and writes included) are more
    than the price's long-context threshold is priced, every token of it, at the long-context rates
    (as Gemini and Anthropic bill their prompts above 200k tokens). A call in a priced tier is priced at
    that tier's rates, or above the threshold at the tier's own long-context rates: a tier without them
    leaves such a call unpriced, never priced at its shorter-context rates (a price without a threshold
    prices a tier's calls of any length at its rates). Audio tokens (OpenAI's audio models) are parts
    of the input and output priced at the audio rates of the rates in force, the rest at the text
    rates; a call that reports audio of a kind those rates give no rate for is unpriced, never priced
    as text. A call whose inference ran in a geo other than the default (`TokenUsage.inference_geo`,
    Anthropic's `us`) pays the price's multiplier for that geo on its token cost, whatever rates were in
    force, and is unpriced if the price lists none for it. Web searches the provider ran for the call
    are added at the price's rate per thousand (of the tool that made them), in any geo; a call that
    searched is unpriced if the price names no such rate.
    """
    long = price.long_context
    if long is not None and usage.input_tokens <= long.above_input_tokens:
        long = None  # a call within the threshold: the long-context rates play no part
    rates: Rates = price if long is None else long
    tier = usage.service_tier
    if tier is not None and (price.service_tiers or tier in PREMIUM_TIERS):
        found = price.service_tiers.get(tier)
        tiered = found if found is None or long is None else found.long_context
        if tiered is None:
            return None
        rates = tiered
    units = rates.in_units
    inputs, outputs, cached, audio = usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, 0
    if usage.audio_input_tokens or usage.audio_output_tokens:
        split = _audio_split(usage, units)
        if split is None:
            return None
        audio, inputs, outputs = split
        cached = cached if cached <= inputs else inputs  # cache reads are text, never counted twice
    written = usage.cache_write_tokens
    hour = usage.cache_write_1h_tokens
    hour = hour if hour <= written else written
    kept_longer = 0
    if hour:  # writes kept longer than the default: at their own rate, never at the default's
        if units.cache_write_1h is None:
            return None
        kept_longer = hour * units.cache_write_1h
    uncached = max(inputs - cached - written, 0)
    total = (
        uncached * units.input
        + cached * units.cached_input
        + (written - hour) * units.cache_write
        + kept_longer
        + outputs * units.output
        + audio
    )
    if usage.inference_geo is None:
        cost = Decimal(total) / units.per_unit
    else:
        factor = price.inference_geo.get(usage.inference_geo)
        if factor is None:
            return None
        cost = Decimal(total) * factor / units.per_unit
    searches = usage.web_searches
    if searches:
        rate = price.web_search_preview if usage.web_search_preview else price.web_search
        if rate is None:
            return None
        cost += searches * rate / 1000
    return cost


def call_cost(
    table: PriceTable, provider_name: str, kind: str, model: str, usage: TokenUsage, *, on: date | None = None
) -> Decimal | None:
    """The cost in USD of a call of `model` that used `usage`: its own tokens at `model`'s price, and each
    of its `advisors` (sub-inferences another model ran, see `TokenUsage.advisors`) at that model's
    price, in the call's processing tier and geo; None if any part is unpriced."""
    price = table.price_for(provider_name, kind, model, on=on)
    cost = None if price is None else cost_of(usage, price)
    for advisor, part in usage.advisors:
        if cost is None:
            return None
        advisor_price = table.price_for(provider_name, kind, advisor, on=on) if advisor else None
        if advisor_price is None:
            return None
        part_cost = cost_of(
            part._replace(service_tier=usage.service_tier, inference_geo=usage.inference_geo), advisor_price
        )
        if part_cost is None:
            return None
        cost += part_cost
    return cost


def _audio_split(usage: TokenUsage, units: IntegerRates) -> tuple[int, int, int] | None:
    """The audio part of a call's cost in `units`, and its text input and output tokens (what is left
    of each once its audio is taken out); None if it reports audio of a kind `units` has no rate for."""
    heard = min(usage.audio_input_tokens, usage.input_tokens)
    spoken = min(usage.audio_output_tokens, usage.output_tokens)
    if (heard and units.audio_input is None) or (spoken and units.audio_output is None):
        return None
    audio = heard * (units.audio_input or 0) + spoken * (units.audio_output or 0)
    return audio, usage.input_tokens - heard, usage.output_tokens - spoken


def parse_price_table(data: object, source: str) -> PriceTable:
    """Validate a loaded price file; `ConfigError` lists every problem with its key path."""
    if data is None:
        return _frozen_table({})
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the top level must be a mapping of providers to models")])
    try:
        return _frozen_table(_FILE.validate_python(data))
    except ValidationError as exc:
        errors = [_untagged(error) for error in exc.errors()]
        problems = [_problem_of(error) for error in errors if not _repeats_input(error, data)]
        raise ConfigError(source, problems) from None


def load_price_table(override: Path | None = None) -> PriceTable:
    """The built-in table, with the entries of the `override` file (when given) replacing its own."""
    builtin_text = files("gateway.metering").joinpath("prices.yaml").read_text(encoding="utf-8")
    table = parse_price_table(_parse_yaml(builtin_text, BUILTIN_SOURCE), BUILTIN_SOURCE)
    if override is None:
        return table
    source = str(override)
    try:
        text = override.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [Problem("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(source, [Problem("", "cannot read: not UTF-8 text")]) from None
    return table.merged_with(parse_price_table(_parse_yaml(text, source), source))


def _frozen_table(sections: Mapping[str, Mapping[str, ModelPrice | Sequence[ModelPrice]]]) -> PriceTable:
    """A table of `sections`, each model's price or prices made a `Schedule`, newest first."""
    schedules = {
        name: {model: _schedule(prices) for model, prices in models.items()}
        for name, models in sections.items()
    }
    return PriceTable(
        MappingProxyType(
            {
                name: MappingProxyType({m: s[0] for m, s in models.items()})
                for name, models in schedules.items()
            }
        ),
        MappingProxyType({name: MappingProxyType(models) for name, models in schedules.items()}),
    )


def _schedule(prices: ModelPrice | Sequence[ModelPrice]) -> Schedule:
    if isinstance(prices, ModelPrice):
        return (prices,)
    return tuple(sorted(prices, key=lambda price: price.effective_date, reverse=True))


class _DecimalLoader(yaml.SafeLoader):
    """Safe YAML in which a number with a fraction stays its text, for pydantic to read as a Decimal, and
    a key given twice in one mapping is an error: PyYAML keeps the last one silently, so a model listed
    twice would be priced at whichever entry came second (the settings file is read alike)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *entry`, whose keys the mapping may override
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # refused below, as PyYAML refuses it
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _fraction_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _fraction_as_text)


def _parse_yaml(text: str, source: str) -> object:
    loader = _DecimalLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("", f"invalid YAML: {where}{problem}")]) from None
    finally:
        loader.dispose()


_DEFAULTED_RATES = frozenset({"cached_input", "cache_write", "web_search_preview"})


_MODEL_TAGS = frozenset({"one", "dated"})  # the `ModelPrices` tags, which name no key of the file


def _untagged(error: ErrorDetails) -> ErrorDetails:
    """`error` located by the file's keys alone, without the tag pydantic puts after a model's name."""
    loc = error["loc"]
    if len(loc) > 2 and loc[2] in _MODEL_TAGS:
        return {**error, "loc": (*loc[:2], *loc[3:])}
    return error


def _repeats_input(error: ErrorDetails, data: dict[Any, Any]) -> bool:
    """An error in a rate the file left out: the error of the rate it defaults to (input for the cache
    rates, web_search for web_search_preview), copied with its value."""
    *path, rate = error["loc"]
    if len(path) < 2 or rate not in _DEFAULTED_RATES:
        return False
    entry: Any = data
    for key in path:  # section, model (, index) (, long_context | service_tiers, tier (, long_context))
        if isinstance(entry, dict):
            entry = entry.get(key)
        elif isinstance(entry, list) and isinstance(key, int) and key < len(entry):
            entry = entry[key]
        else:
            entry = None
    return isinstance(entry, dict) and rate not in entry


def _problem_of(error: ErrorDetails) -> Problem:
    path = ""
    for part in error["loc"]:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (not part of the price format)"
    elif error["type"] == "model_type" and len(error["loc"]) == 2:  # section, model: neither kind
        message = "a price (input, output, effective_date ...) or a list of them is expected"
    return Problem(path, message.removeprefix("Value error, "))

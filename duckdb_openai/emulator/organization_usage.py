"""The organization's usage and costs as data: what each usage endpoint reports, the price table, and
the one aggregation every endpoint shares (records -> time buckets -> results).

A usage endpoint (:class:`UsageKind`) is declared by its result object, its summed fields (in the
order of its spec component), its dimensions (the ``group_by`` values it accepts, in that order too)
and its filters (query parameter -> dimension). Its usage is a :class:`RecordTable`: records sorted by
time, each with a value per dimension and a number per summed field. A query picks records by time
and filters, and sums them per bucket and group; a dimension it does not group by is ``null`` in the
results, as the API sends it.

Buckets are aligned to UTC (a ``1d`` bucket runs from midnight to midnight); a query's range is
``[start_time, end_time)`` cut at ``now``: a bucket that starts at or after ``now`` is not served, and
the one that holds ``now`` (or ``start_time``, or ``end_time``) counts only what happened inside the
range before ``now``, though its ``start_time``/``end_time`` are the bucket's own.

Prices (USD), from which every cost follows; amounts are exact decimals with at most 10 decimal
places, sent as JSON numbers (each reads back as the same decimal), and each model call, image, second
or byte-day is priced on its own, so costs grouped any way add up to the cent::

    completions, per million tokens      input   cached input   output
        gpt-4o                           2.50    1.25           10.00
        gpt-4o-mini                      0.15    0.075          0.60
        gpt-4.1                          2.00    0.50           8.00
        o4-mini                          1.10    0.275          4.40
        gpt-5                            1.25    0.125          10.00
      line items "<model>, input" (input tokens not cached), "<model>, cached input", "<model>, output";
      quantity_unit "tokens"
    embeddings, per million input tokens: text-embedding-3-small 0.02, text-embedding-3-large 0.13;
      line item "<model>", unit "tokens"
    moderations: free, no line item
    images, per image: gpt-image-1 0.042, dall-e-3 0.04, dall-e-2 0.02; line item "<model>, images",
      unit "images"
    audio speeches, per million characters: tts-1 15.00, tts-1-hd 30.00; line item "<model>",
      unit "characters"
    audio transcriptions, per second: whisper-1 0.0001, gpt-4o-transcribe 0.0001,
      gpt-4o-mini-transcribe 0.00005; line item "<model>", unit "duration_seconds"
    vector stores: 0.10 per GB-day (1 GB = 10^9 bytes; each day's reading is one day), line item
      "Vector store storage", unit "gigabyte_days"
    code interpreter: 0.03 per session, line item "Code interpreter sessions", unit "sessions"
    file search: 2.50 per 1,000 calls, line item "File search tool calls", unit "calls"
    web search: 10.00 per 1,000 calls (num_requests), line item "Web search tool calls", unit "calls"

A line item a record used none of (no cached tokens, say) is left out. A cost belongs to the project
and API key of the usage it prices (vector stores and code interpreter
sessions have no key: ``api_key_id`` null). ``quantity`` and ``quantity_unit`` are set only when the
costs are grouped by ``line_item`` (adding tokens to images means nothing).

    >>> table = RecordTable.of([(60, ("proj_a",), (2,)), (30, ("proj_b",), (1,))])
    >>> aggregate(table, 0, 3_600, 0, 3_600, {}, (0,))
    {('proj_a',): [2], ('proj_b',): [1]}
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "COMPLETION_PRICES",
    "COSTS",
    "COSTS_LIMITS",
    "KINDS",
    "LIMITS",
    "MODELS",
    "WIDTHS",
    "CostLine",
    "RecordTable",
    "UsageKind",
    "aggregate",
    "bucket_starts",
    "cost_lines",
    "costs_result",
    "usage_result",
]

#: Seconds in a bucket of each ``bucket_width``.
WIDTHS = {"1m": 60, "1h": 3_600, "1d": 86_400}
#: ``limit`` (default, maximum) of each width; the minimum is 1.
LIMITS = {"1m": (60, 1_440), "1h": (24, 168), "1d": (7, 31)}
#: ``limit`` (default, maximum) of the costs endpoint, whose only width is ``1d``.
COSTS_LIMITS = (7, 180)

_MILLION = Decimal(1_000_000)
_PLACES = Decimal("1e-10")


@dataclass(frozen=True)
class UsageKind:
    """One usage endpoint: ``/v1/organization/usage/<name>``."""

    name: str
    result_object: str
    #: The summed fields, in the order of the spec component.
    metrics: tuple[str, ...]
    #: The ``group_by`` values, in the order the result carries them.
    dimensions: tuple[str, ...]
    #: Array query parameter -> the dimension it filters.
    filters: Mapping[str, str]
    #: Filters whose values the spec enumerates: parameter -> the allowed values.
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Whether ``batch=true|false`` filters (completions only).
    has_batch: bool = False
    #: Where the dimension fields go among the metrics (images list ``source`` and ``size`` first).
    dimensions_first: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field of a result, in the order of the spec component."""
        if self.dimensions_first:
            return ("object", *self.metrics[:2], *self.dimensions, *self.metrics[2:])
        return ("object", *self.metrics, *self.dimensions)


_PEOPLE = {"project_ids": "project_id", "user_ids": "user_id", "api_key_ids": "api_key_id"}
_MODEL_DIMS = ("project_id", "user_id", "api_key_id", "model")
_MODEL_FILTERS = {**_PEOPLE, "models": "model"}

KINDS: dict[str, UsageKind] = {
    kind.name: kind
    for kind in (
        UsageKind(
            "completions",
            "organization.usage.completions.result",
            (
                "input_tokens",
                "input_cached_tokens",
                "input_cache_write_tokens",
                "input_uncached_tokens",
                "output_tokens",
                "input_text_tokens",
                "output_text_tokens",
                "input_cached_text_tokens",
                "input_audio_tokens",
                "input_cached_audio_tokens",
                "output_audio_tokens",
                "input_image_tokens",
                "input_cached_image_tokens",
                "output_image_tokens",
                "num_model_requests",
            ),
            (*_MODEL_DIMS, "batch", "service_tier"),
            _MODEL_FILTERS,
            has_batch=True,
        ),
        UsageKind(
            "embeddings",
            "organization.usage.embeddings.result",
            ("input_tokens", "num_model_requests"),
            _MODEL_DIMS,
            _MODEL_FILTERS,
        ),
        UsageKind(
            "moderations",
            "organization.usage.moderations.result",
            ("input_tokens", "num_model_requests"),
            _MODEL_DIMS,
            _MODEL_FILTERS,
        ),
        UsageKind(
            "images",
            "organization.usage.images.result",
            ("images", "num_model_requests"),
            ("source", "size", *_MODEL_DIMS),
            {"sources": "source", "sizes": "size", **_MODEL_FILTERS},
            enums={
                "sources": ("image.generation", "image.edit", "image.variation"),
                "sizes": ("256x256", "512x512", "1024x1024", "1792x1792", "1024x1792"),
            },
            dimensions_first=True,
        ),
        UsageKind(
            "audio_speeches",
            "organization.usage.audio_speeches.result",
            ("characters", "num_model_requests"),
            _MODEL_DIMS,
            _MODEL_FILTERS,
        ),
        UsageKind(
            "audio_transcriptions",
            "organization.usage.audio_transcriptions.result",
            ("seconds", "num_model_requests"),
            _MODEL_DIMS,
            _MODEL_FILTERS,
        ),
        UsageKind(
            "vector_stores",
            "organization.usage.vector_stores.result",
            ("usage_bytes",),
            ("project_id",),
            {"project_ids": "project_id"},
        ),
        UsageKind(
            "code_interpreter_sessions",
            "organization.usage.code_interpreter_sessions.result",
            ("num_sessions",),
            ("project_id",),
            {"project_ids": "project_id"},
        ),
        UsageKind(
            "file_search_calls",
            "organization.usage.file_searches.result",
            ("num_requests",),
            ("project_id", "user_id", "api_key_id", "vector_store_id"),
            {**_PEOPLE, "vector_store_ids": "vector_store_id"},
        ),
        UsageKind(
            "web_search_calls",
            "organization.usage.web_searches.result",
            ("num_model_requests", "num_requests"),
            (*_MODEL_DIMS, "context_level"),
            {**_MODEL_FILTERS, "context_levels": "context_level"},
            enums={"context_levels": ("low", "medium", "high")},
        ),
    )
}

#: The costs endpoint, declared like a usage endpoint: its summed fields are the amount and quantity.
COSTS = UsageKind(
    "costs",
    "organization.costs.result",
    ("amount", "quantity"),
    ("project_id", "line_item", "api_key_id"),
    {"project_ids": "project_id", "api_key_ids": "api_key_id"},
)

#: USD per million tokens: (input, cached input, output).
COMPLETION_PRICES: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    model: (Decimal(i), Decimal(c), Decimal(o))
    for model, i, c, o in (
        ("gpt-4o", "2.50", "1.25", "10.00"),
        ("gpt-4o-mini", "0.15", "0.075", "0.60"),
        ("gpt-4.1", "2.00", "0.50", "8.00"),
        ("o4-mini", "1.10", "0.275", "4.40"),
        ("gpt-5", "1.25", "0.125", "10.00"),
    )
}
_EMBEDDING_PRICES = {"text-embedding-3-small": Decimal("0.02"), "text-embedding-3-large": Decimal("0.13")}
_IMAGE_PRICES = {"gpt-image-1": Decimal("0.042"), "dall-e-3": Decimal("0.04"), "dall-e-2": Decimal("0.02")}
_SPEECH_PRICES = {"tts-1": Decimal("15.00"), "tts-1-hd": Decimal("30.00")}
_TRANSCRIPTION_PRICES = {
    "whisper-1": Decimal("0.0001"),
    "gpt-4o-transcribe": Decimal("0.0001"),
    "gpt-4o-mini-transcribe": Decimal("0.00005"),
}
_GB_DAY = Decimal("0.10")
_SESSION = Decimal("0.03")
_FILE_SEARCH_CALL = Decimal("0.0025")
_WEB_SEARCH_CALL = Decimal("0.01")
_GB = Decimal(1_000_000_000)

#: Models each synthetic usage endpoint draws from (completions come from the stored calls).
MODELS: dict[str, tuple[str, ...]] = {
    "embeddings": tuple(_EMBEDDING_PRICES),
    "moderations": ("omni-moderation-latest",),
    "images": tuple(_IMAGE_PRICES),
    "audio_speeches": tuple(_SPEECH_PRICES),
    "audio_transcriptions": tuple(_TRANSCRIPTION_PRICES),
    "web_search_calls": ("gpt-4o", "gpt-4.1", "o4-mini", "gpt-5"),
}


@dataclass(frozen=True)
class CostLine:
    """What one usage record costs on one line item."""

    line_item: str
    quantity: Decimal
    unit: str
    amount: Decimal


def cost_lines(kind: str, dims: Mapping[str, Any], values: Mapping[str, int]) -> list[CostLine]:
    """The line items one usage record of ``kind`` is billed on (see the price table above), leaving
    out those it used none of."""
    return [line for line in _priced(kind, dims, values) if line.quantity]


def _priced(kind: str, dims: Mapping[str, Any], values: Mapping[str, int]) -> list[CostLine]:
    model = dims.get("model")
    if kind == "completions":
        assert isinstance(model, str)
        price_in, price_cached, price_out = COMPLETION_PRICES[model]
        cached = values["input_cached_tokens"]
        return [
            _per_million(f"{model}, input", values["input_tokens"] - cached, price_in, "tokens"),
            _per_million(f"{model}, cached input", cached, price_cached, "tokens"),
            _per_million(f"{model}, output", values["output_tokens"], price_out, "tokens"),
        ]
    if kind == "embeddings":
        assert isinstance(model, str)
        return [_per_million(model, values["input_tokens"], _EMBEDDING_PRICES[model], "tokens")]
    if kind == "images":
        assert isinstance(model, str)
        return [_each(f"{model}, images", values["images"], _IMAGE_PRICES[model], "images")]
    if kind == "audio_speeches":
        assert isinstance(model, str)
        return [_per_million(model, values["characters"], _SPEECH_PRICES[model], "characters")]
    if kind == "audio_transcriptions":
        assert isinstance(model, str)
        return [_each(model, values["seconds"], _TRANSCRIPTION_PRICES[model], "duration_seconds")]
    if kind == "vector_stores":
        gigabytes = Decimal(values["usage_bytes"]) / _GB
        return [CostLine("Vector store storage", gigabytes, "gigabyte_days", _exact(gigabytes * _GB_DAY))]
    if kind == "code_interpreter_sessions":
        return [_each("Code interpreter sessions", values["num_sessions"], _SESSION, "sessions")]
    if kind == "file_search_calls":
        return [_each("File search tool calls", values["num_requests"], _FILE_SEARCH_CALL, "calls")]
    if kind == "web_search_calls":
        return [_each("Web search tool calls", values["num_requests"], _WEB_SEARCH_CALL, "calls")]
    if kind == "moderations":
        return []
    raise ValueError(f"no prices for usage kind {kind!r}")


def _per_million(line_item: str, quantity: int, price: Decimal, unit: str) -> CostLine:
    return CostLine(line_item, Decimal(quantity), unit, _exact(quantity * price / _MILLION))


def _each(line_item: str, quantity: int, price: Decimal, unit: str) -> CostLine:
    return CostLine(line_item, Decimal(quantity), unit, _exact(quantity * price))


def _exact(amount: Decimal) -> Decimal:
    # The prices are chosen so that no amount needs more places; a new price that did would fail here.
    if amount != amount.quantize(_PLACES):
        raise ValueError(f"{amount} has more than 10 decimal places")
    return amount


@dataclass(frozen=True)
class RecordTable:
    """Usage records sorted by time: ``dims[i]`` holds one value per dimension, ``values[i]`` one
    number per summed field."""

    times: tuple[int, ...]
    dims: tuple[tuple[Any, ...], ...]
    values: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, records: Iterable[tuple[int, tuple[Any, ...], tuple[Any, ...]]]) -> RecordTable:
        ordered = sorted(records, key=lambda record: record[0])
        return cls(tuple(r[0] for r in ordered), tuple(r[1] for r in ordered), tuple(r[2] for r in ordered))

    def __len__(self) -> int:
        return len(self.times)


def bucket_starts(start_time: int, stop: int, width: int) -> range:
    """The aligned buckets that meet ``[start_time, stop)``, as their start times."""
    first = start_time - start_time % width
    return range(first, stop if stop > first else first, width)


def aggregate(
    table: RecordTable,
    bucket: int,
    width: int,
    low: int,
    high: int,
    filters: Mapping[int, frozenset[Any]],
    group: Sequence[int],
) -> dict[tuple[Any, ...], list[Any]]:
    """The sums of one bucket ``[bucket, bucket + width)`` cut to ``[low, high)``: the records whose
    dimension ``i`` is in ``filters[i]`` (for each filter), per value of the ``group`` dimensions
    (positions in the key; the other dimensions are None)."""
    begin = bisect_left(table.times, max(bucket, low))
    end = bisect_left(table.times, min(bucket + width, high))
    sums: dict[tuple[Any, ...], list[Any]] = {}
    width_of_key = len(table.dims[0]) if table.dims else 0
    for i in range(begin, end):
        dims = table.dims[i]
        if any(dims[d] not in allowed for d, allowed in filters.items()):
            continue
        key = tuple(dims[d] if d in group else None for d in range(width_of_key))
        values = table.values[i]
        total = sums.get(key)
        if total is None:
            sums[key] = list(values)
        else:
            for j, value in enumerate(values):
                total[j] += value
    return dict(sorted(sums.items(), key=lambda item: _sort_key(item[0])))


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, str(value)) for value in key)


def usage_result(kind: UsageKind, key: tuple[Any, ...], values: Sequence[int]) -> dict[str, Any]:
    """One result object of a usage bucket, with every field of its spec component."""
    known = {"object": kind.result_object, **dict(zip(kind.dimensions, key, strict=True))}
    known.update(zip(kind.metrics, values, strict=True))
    return {name: known[name] for name in kind.fields}


def costs_result(
    key: tuple[Any, ...], values: Sequence[Decimal], grouped_by_line_item: bool, units: Mapping[str, str]
) -> dict[str, Any]:
    """One result object of a costs bucket; ``key`` is (project_id, line_item, api_key_id)."""
    project_id, line_item, api_key_id = key
    amount, quantity = values
    # A decimal of at most 15 significant digits survives the trip through a float: the JSON text
    # is then that decimal, and a reader parsing it as DECIMAL gets it back exactly.
    return {
        "object": COSTS.result_object,
        "amount": {"value": float(amount), "currency": "usd"},
        "line_item": line_item,
        "project_id": project_id,
        "api_key_id": api_key_id,
        "quantity": _number(quantity) if grouped_by_line_item else None,
        "quantity_unit": units[line_item] if grouped_by_line_item else None,
    }


def _number(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    return float(value)

"""The ten usage endpoints' Arrow schemas, group-by dimensions and filter parameters (an admin key).

GET /organization/usage/<endpoint> answers pages of time buckets, each with its results:

    {"object": "page", "data": [{"object": "bucket", "start_time": 1730419200, "end_time": 1730505600,
     "results": [{"object": "organization.usage.completions.result", "input_tokens": 1000, ...,
     "model": null, ...}]}], "has_more": true, "next_page": "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="}

One row is one result of one bucket: first the bucket's `start_time` and `end_time` (`BUCKET_FIELDS`,
copied onto each of its results), then every property of the spec's result component, in the spec's
order (`UsageCompletionsResult`, `UsageEmbeddingsResult`, ...). A bucket whose `results` are empty
(nothing was used) has no row. Counts are BIGINT, times TIMESTAMP WITH TIME ZONE from Unix seconds.

A dimension column (`project_id`, `model`, ...) holds a value only where the request grouped by it
(`group_by=model`); otherwise the API sums over it and the column is NULL. So a filter parameter
(`models=gpt-4o`) matches its column exactly only when the request also groups by that column.

Per endpoint, `<NAME>_DIMENSIONS` is the spec's `group_by` enum, and `<NAME>_FILTERS` its filter
parameters, each with the result column it filters: `("models", "model")`. All but `batch` (a boolean:
batch jobs only, or none) are arrays, sent repeated (`models=a&models=b`).

>>> USAGE_COMPLETIONS_SCHEMA.names[:5]
['start_time', 'end_time', 'bucket_width', 'partial', 'object']
>>> dict(USAGE_IMAGES_FILTERS)["sizes"]
'size'

What the schema drops, documented, never an error: the page envelope, the bucket's `object`
('bucket'), and any key the API adds to a result. Costs (`costs.py`) share the bucket fields.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.base import Filter, Key, Option, Resource
from duckdb_openai.resources.families import ORGANIZATION_API
from duckdb_openai.resources.paging import Limit, Records, TokenPaging
from duckdb_openai.resources.params import FilterKind
from duckdb_openai.schema import field

__all__ = [
    "BUCKET_FIELDS",
    "REQUEST_FIELDS",
    "USAGE",
    "USAGE_AUDIO_SPEECHES",
    "USAGE_AUDIO_SPEECHES_DIMENSIONS",
    "USAGE_AUDIO_SPEECHES_FILTERS",
    "USAGE_AUDIO_SPEECHES_SCHEMA",
    "USAGE_AUDIO_TRANSCRIPTIONS",
    "USAGE_AUDIO_TRANSCRIPTIONS_DIMENSIONS",
    "USAGE_AUDIO_TRANSCRIPTIONS_FILTERS",
    "USAGE_AUDIO_TRANSCRIPTIONS_SCHEMA",
    "USAGE_CODE_INTERPRETER_SESSIONS",
    "USAGE_CODE_INTERPRETER_SESSIONS_DIMENSIONS",
    "USAGE_CODE_INTERPRETER_SESSIONS_FILTERS",
    "USAGE_CODE_INTERPRETER_SESSIONS_SCHEMA",
    "USAGE_COMPLETIONS",
    "USAGE_COMPLETIONS_DIMENSIONS",
    "USAGE_COMPLETIONS_FILTERS",
    "USAGE_COMPLETIONS_SCHEMA",
    "USAGE_EMBEDDINGS",
    "USAGE_EMBEDDINGS_DIMENSIONS",
    "USAGE_EMBEDDINGS_FILTERS",
    "USAGE_EMBEDDINGS_SCHEMA",
    "USAGE_FILE_SEARCH_CALLS",
    "USAGE_FILE_SEARCH_CALLS_DIMENSIONS",
    "USAGE_FILE_SEARCH_CALLS_FILTERS",
    "USAGE_FILE_SEARCH_CALLS_SCHEMA",
    "USAGE_IMAGES",
    "USAGE_IMAGES_DIMENSIONS",
    "USAGE_IMAGES_FILTERS",
    "USAGE_IMAGES_SCHEMA",
    "USAGE_MODERATIONS",
    "USAGE_MODERATIONS_DIMENSIONS",
    "USAGE_MODERATIONS_FILTERS",
    "USAGE_MODERATIONS_SCHEMA",
    "USAGE_VECTOR_STORES",
    "USAGE_VECTOR_STORES_DIMENSIONS",
    "USAGE_VECTOR_STORES_FILTERS",
    "USAGE_VECTOR_STORES_SCHEMA",
    "USAGE_WEB_SEARCH_CALLS",
    "USAGE_WEB_SEARCH_CALLS_DIMENSIONS",
    "USAGE_WEB_SEARCH_CALLS_FILTERS",
    "USAGE_WEB_SEARCH_CALLS_SCHEMA",
    "WIDTH_LIMITS",
    "bucketed",
]

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()

#: The bucket's fields, first in every usage and costs row.
BUCKET_FIELDS: tuple[pa.Field, ...] = (
    field("start_time", _TS, "Start of the time bucket the result belongs to (inclusive)."),
    field("end_time", _TS, "End of the time bucket (exclusive): the next bucket's start."),
)
#: What the request says of every row, after the bucket's fields: the width asked for, and whether the
#: bucket had not ended yet when it was fetched.
REQUEST_FIELDS: tuple[pa.Field, ...] = (
    field("bucket_width", _S, "Width of the buckets asked for: '1d' (the default), '1h' or '1m'."),
    field(
        "partial",
        pa.bool_(),
        "True when the bucket had not ended when it was fetched (its end_time was still to come): its "
        "sums may still grow. `WHERE NOT partial` keeps whole buckets only.",
    ),
)


def _object(name: str) -> pa.Field:
    return field("object", _S, f"Always '{name}'.")


def _grouped(name: str, what: str) -> pa.Field:
    return field(name, _S, f"{what}; NULL unless the request grouped by {name}.")


_NUM_MODEL_REQUESTS = field("num_model_requests", _I, "Requests made to the model.")
_PROJECT_ID = _grouped("project_id", "Project of the grouped result")
_USER_ID = _grouped("user_id", "User of the grouped result")
_API_KEY_ID = _grouped("api_key_id", "API key of the grouped result")
_MODEL = _grouped("model", "Model of the grouped result")

#: The filters most usage endpoints share, in the spec's order.
_BY_WHOM = (("project_ids", "project_id"), ("user_ids", "user_id"), ("api_key_ids", "api_key_id"))
_BY_WHOM_AND_MODEL = (*_BY_WHOM, ("models", "model"))
_FOUR = ("project_id", "user_id", "api_key_id", "model")


def _usage_schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema([*BUCKET_FIELDS, *REQUEST_FIELDS, *fields])


USAGE_COMPLETIONS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.completions.result"),
    field(
        "input_tokens",
        _I,
        "Input tokens, cached and cache-write ones included, over text, audio and images (Scale Tier "
        "tokens included).",
    ),
    field("input_cached_tokens", _I, "Cached input tokens over text, audio and images."),
    field("input_cache_write_tokens", _I, "Input tokens written to the prompt cache."),
    field(
        "input_uncached_tokens",
        _I,
        "Uncached input tokens over text, audio and images, cache writes excluded.",
    ),
    field("output_tokens", _I, "Output tokens over text, audio and images (Scale Tier tokens included)."),
    field("input_text_tokens", _I, "Uncached text input tokens, cache writes excluded."),
    field("output_text_tokens", _I, "Text output tokens."),
    field("input_cached_text_tokens", _I, "Cached text input tokens."),
    field("input_audio_tokens", _I, "Uncached audio input tokens."),
    field("input_cached_audio_tokens", _I, "Cached audio input tokens."),
    field("output_audio_tokens", _I, "Audio output tokens."),
    field("input_image_tokens", _I, "Uncached image input tokens."),
    field("input_cached_image_tokens", _I, "Cached image input tokens."),
    field("output_image_tokens", _I, "Image output tokens."),
    _NUM_MODEL_REQUESTS,
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
    field("batch", pa.bool_(), "Whether the grouped requests were batch jobs; NULL unless grouped by batch."),
    _grouped("service_tier", "Service tier of the grouped result ('default', 'flex', 'priority', ...)"),
)
USAGE_COMPLETIONS_DIMENSIONS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
USAGE_COMPLETIONS_FILTERS = (*_BY_WHOM_AND_MODEL, ("batch", "batch"))

USAGE_EMBEDDINGS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.embeddings.result"),
    field("input_tokens", _I, "Input tokens embedded."),
    _NUM_MODEL_REQUESTS,
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
)
USAGE_EMBEDDINGS_DIMENSIONS = _FOUR
USAGE_EMBEDDINGS_FILTERS = _BY_WHOM_AND_MODEL

USAGE_MODERATIONS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.moderations.result"),
    field("input_tokens", _I, "Input tokens moderated."),
    _NUM_MODEL_REQUESTS,
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
)
USAGE_MODERATIONS_DIMENSIONS = _FOUR
USAGE_MODERATIONS_FILTERS = _BY_WHOM_AND_MODEL

USAGE_IMAGES_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.images.result"),
    field("images", _I, "Images processed."),
    _NUM_MODEL_REQUESTS,
    _grouped("source", "How the images were made: 'image.generation', 'image.edit' or 'image.variation'"),
    _grouped("size", "Image size of the grouped result ('1024x1024', ...)"),
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
)
USAGE_IMAGES_DIMENSIONS = (*_FOUR, "size", "source")
USAGE_IMAGES_FILTERS = (("sources", "source"), ("sizes", "size"), *_BY_WHOM_AND_MODEL)

USAGE_AUDIO_SPEECHES_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.audio_speeches.result"),
    field("characters", _I, "Characters turned into speech."),
    _NUM_MODEL_REQUESTS,
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
)
USAGE_AUDIO_SPEECHES_DIMENSIONS = _FOUR
USAGE_AUDIO_SPEECHES_FILTERS = _BY_WHOM_AND_MODEL

USAGE_AUDIO_TRANSCRIPTIONS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.audio_transcriptions.result"),
    field("seconds", _I, "Seconds of audio transcribed."),
    _NUM_MODEL_REQUESTS,
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
)
USAGE_AUDIO_TRANSCRIPTIONS_DIMENSIONS = _FOUR
USAGE_AUDIO_TRANSCRIPTIONS_FILTERS = _BY_WHOM_AND_MODEL

USAGE_VECTOR_STORES_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.vector_stores.result"),
    field("usage_bytes", _I, "Vector store usage, in bytes."),
    _PROJECT_ID,
)
USAGE_VECTOR_STORES_DIMENSIONS = ("project_id",)
USAGE_VECTOR_STORES_FILTERS = (("project_ids", "project_id"),)

USAGE_CODE_INTERPRETER_SESSIONS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.code_interpreter_sessions.result"),
    field("num_sessions", _I, "Code interpreter sessions."),
    _PROJECT_ID,
)
USAGE_CODE_INTERPRETER_SESSIONS_DIMENSIONS = ("project_id",)
USAGE_CODE_INTERPRETER_SESSIONS_FILTERS = (("project_ids", "project_id"),)

# The spec names this result 'file_searches' (and web search's 'web_searches'), not after the path.
USAGE_FILE_SEARCH_CALLS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.file_searches.result"),
    field("num_requests", _I, "File search calls."),
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _grouped("vector_store_id", "Vector store searched"),
)
USAGE_FILE_SEARCH_CALLS_DIMENSIONS = ("project_id", "user_id", "api_key_id", "vector_store_id")
USAGE_FILE_SEARCH_CALLS_FILTERS = (*_BY_WHOM, ("vector_store_ids", "vector_store_id"))

USAGE_WEB_SEARCH_CALLS_SCHEMA: pa.Schema = _usage_schema(
    _object("organization.usage.web_searches.result"),
    field("num_model_requests", _I, "Model requests that searched the web."),
    field("num_requests", _I, "Web search calls."),
    _PROJECT_ID,
    _USER_ID,
    _API_KEY_ID,
    _MODEL,
    _grouped("context_level", "Search context size: 'low', 'medium' or 'high'"),
)
USAGE_WEB_SEARCH_CALLS_DIMENSIONS = (*_FOUR, "context_level")
USAGE_WEB_SEARCH_CALLS_FILTERS = (*_BY_WHOM_AND_MODEL, ("context_levels", "context_level"))


# -- the resources -------------------------------------------------------------------------------------------

#: The most buckets one page may hold, per width (the spec's maxima): 180 days of daily usage is 6 pages.
WIDTH_LIMITS = {"1d": 31, "1h": 168, "1m": 1440}
#: Values that filter texts, not ids (a model name, an image size).
_TEXT_FILTERS = frozenset({"models", "sizes", "sources", "context_levels"})
_TIME_EXAMPLE = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"


def bucketed(
    name: str,
    path: str,
    schema: pa.Schema,
    dimensions: tuple[str, ...],
    filters: tuple[tuple[str, str], ...],
    *,
    doc: str,
    widths: dict[str, int] = WIDTH_LIMITS,
) -> Resource:
    """A usage or costs endpoint as a resource: pages of time buckets by a `page` token, one row per
    result with the bucket's start_time and end_time; `start_time` required, `end_time`, `bucket_width`
    (one of `widths`, each with the most buckets a page may hold), `group_by` (any of `dimensions`) and
    the endpoint's filters (lists sent repeated; a dimension a filter selects on is grouped by too)."""

    def list_filter(param: str, column: str) -> Filter:
        if param == "batch":
            return Filter(
                "batch",
                "batch",
                "true",
                kind="bool",
                column="batch",
                doc="true: batch jobs only; false: no batch jobs",
            )
        kind: FilterKind = "texts" if param in _TEXT_FILTERS else "ids"
        example = "gpt-4o" if param == "models" else f"{column.removesuffix('_id')}_abc"
        return Filter(param, param, example, kind=kind, column=column, doc=f"Only these {column}s")

    first = next(iter(widths))
    return Resource(
        name=name,
        item_name=f"{name}_result",
        path=path,
        keys=(),
        item_key=Key("result_id", "none"),
        item_path_template=None,
        schema=schema,
        options=(
            Option(
                "bucket_width",
                first,
                f"Width of each time bucket: {', '.join(repr(w) for w in widths)} (default {first!r}).",
                tuple(widths),
                lambda value: [("bucket_width", str(value))],
                column="bucket_width",
            ),
        ),
        filters=(
            Filter("start_time", "start_time", _TIME_EXAMPLE, kind="time", column="start_time",
                   required=True, bound="lower",
                   doc="the start of the time range (inclusive), e.g. now() - INTERVAL 30 DAY"),
            Filter("end_time", "end_time", _TIME_EXAMPLE, kind="time", column="start_time", bound="upper",
                   doc="The end of the time range (exclusive); NULL: up to now."),
            Filter("group_by", "group_by", "['project_id', 'model']", kind="choices", choices=dimensions,
                   doc="Dimensions to group by: " + ", ".join(dimensions)),
            *(list_filter(param, column) for param, column in filters),
        ),
        item_column=None,
        order_option=None,
        paging=TokenPaging(
            limit=Limit(size=widths[first], by="bucket_width", sizes=widths),
            records=Records(nested="results", copied=("start_time", "end_time"), ascending="start_time"),
        ),
        family=ORGANIZATION_API,
        catalog_schema="organization",
        doc=doc,
        progress_units=("ranges", "results"),
        unfinished=("partial", "end_time"),
        grouping="group_by",
    )  # fmt: skip


def _usage(
    endpoint: str, schema: pa.Schema, dims: tuple[str, ...], filters: tuple[tuple[str, str], ...]
) -> Resource:
    return bucketed(
        f"usage_{endpoint}",
        f"organization/usage/{endpoint}",
        schema,
        dims,
        filters,
        doc=f"The organization's {endpoint.replace('_', ' ')} usage by time bucket (an admin key): "
        f"GET /organization/usage/{endpoint}",
    )


USAGE_COMPLETIONS = _usage(
    "completions", USAGE_COMPLETIONS_SCHEMA, USAGE_COMPLETIONS_DIMENSIONS, USAGE_COMPLETIONS_FILTERS
)
USAGE_EMBEDDINGS = _usage(
    "embeddings", USAGE_EMBEDDINGS_SCHEMA, USAGE_EMBEDDINGS_DIMENSIONS, USAGE_EMBEDDINGS_FILTERS
)
USAGE_MODERATIONS = _usage(
    "moderations", USAGE_MODERATIONS_SCHEMA, USAGE_MODERATIONS_DIMENSIONS, USAGE_MODERATIONS_FILTERS
)
USAGE_IMAGES = _usage("images", USAGE_IMAGES_SCHEMA, USAGE_IMAGES_DIMENSIONS, USAGE_IMAGES_FILTERS)
USAGE_AUDIO_SPEECHES = _usage(
    "audio_speeches",
    USAGE_AUDIO_SPEECHES_SCHEMA,
    USAGE_AUDIO_SPEECHES_DIMENSIONS,
    USAGE_AUDIO_SPEECHES_FILTERS,
)
USAGE_AUDIO_TRANSCRIPTIONS = _usage(
    "audio_transcriptions",
    USAGE_AUDIO_TRANSCRIPTIONS_SCHEMA,
    USAGE_AUDIO_TRANSCRIPTIONS_DIMENSIONS,
    USAGE_AUDIO_TRANSCRIPTIONS_FILTERS,
)
USAGE_VECTOR_STORES = _usage(
    "vector_stores", USAGE_VECTOR_STORES_SCHEMA, USAGE_VECTOR_STORES_DIMENSIONS, USAGE_VECTOR_STORES_FILTERS
)
USAGE_CODE_INTERPRETER_SESSIONS = _usage(
    "code_interpreter_sessions",
    USAGE_CODE_INTERPRETER_SESSIONS_SCHEMA,
    USAGE_CODE_INTERPRETER_SESSIONS_DIMENSIONS,
    USAGE_CODE_INTERPRETER_SESSIONS_FILTERS,
)
USAGE_FILE_SEARCH_CALLS = _usage(
    "file_search_calls",
    USAGE_FILE_SEARCH_CALLS_SCHEMA,
    USAGE_FILE_SEARCH_CALLS_DIMENSIONS,
    USAGE_FILE_SEARCH_CALLS_FILTERS,
)
USAGE_WEB_SEARCH_CALLS = _usage(
    "web_search_calls",
    USAGE_WEB_SEARCH_CALLS_SCHEMA,
    USAGE_WEB_SEARCH_CALLS_DIMENSIONS,
    USAGE_WEB_SEARCH_CALLS_FILTERS,
)

#: The ten usage endpoints, in the spec's order.
USAGE: tuple[Resource, ...] = (
    USAGE_COMPLETIONS,
    USAGE_EMBEDDINGS,
    USAGE_MODERATIONS,
    USAGE_IMAGES,
    USAGE_AUDIO_SPEECHES,
    USAGE_AUDIO_TRANSCRIPTIONS,
    USAGE_VECTOR_STORES,
    USAGE_CODE_INTERPRETER_SESSIONS,
    USAGE_FILE_SEARCH_CALLS,
    USAGE_WEB_SEARCH_CALLS,
)

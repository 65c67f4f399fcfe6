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

>>> USAGE_COMPLETIONS_SCHEMA.names[:3]
['start_time', 'end_time', 'object']
>>> dict(USAGE_IMAGES_FILTERS)["sizes"]
'size'

What the schema drops, documented, never an error: the page envelope, the bucket's `object`
('bucket'), and any key the API adds to a result. Costs (`costs.py`) share the bucket fields.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.schema import field

__all__ = [
    "BUCKET_FIELDS",
    "USAGE_AUDIO_SPEECHES_DIMENSIONS",
    "USAGE_AUDIO_SPEECHES_FILTERS",
    "USAGE_AUDIO_SPEECHES_SCHEMA",
    "USAGE_AUDIO_TRANSCRIPTIONS_DIMENSIONS",
    "USAGE_AUDIO_TRANSCRIPTIONS_FILTERS",
    "USAGE_AUDIO_TRANSCRIPTIONS_SCHEMA",
    "USAGE_CODE_INTERPRETER_SESSIONS_DIMENSIONS",
    "USAGE_CODE_INTERPRETER_SESSIONS_FILTERS",
    "USAGE_CODE_INTERPRETER_SESSIONS_SCHEMA",
    "USAGE_COMPLETIONS_DIMENSIONS",
    "USAGE_COMPLETIONS_FILTERS",
    "USAGE_COMPLETIONS_SCHEMA",
    "USAGE_EMBEDDINGS_DIMENSIONS",
    "USAGE_EMBEDDINGS_FILTERS",
    "USAGE_EMBEDDINGS_SCHEMA",
    "USAGE_FILE_SEARCH_CALLS_DIMENSIONS",
    "USAGE_FILE_SEARCH_CALLS_FILTERS",
    "USAGE_FILE_SEARCH_CALLS_SCHEMA",
    "USAGE_IMAGES_DIMENSIONS",
    "USAGE_IMAGES_FILTERS",
    "USAGE_IMAGES_SCHEMA",
    "USAGE_MODERATIONS_DIMENSIONS",
    "USAGE_MODERATIONS_FILTERS",
    "USAGE_MODERATIONS_SCHEMA",
    "USAGE_VECTOR_STORES_DIMENSIONS",
    "USAGE_VECTOR_STORES_FILTERS",
    "USAGE_VECTOR_STORES_SCHEMA",
    "USAGE_WEB_SEARCH_CALLS_DIMENSIONS",
    "USAGE_WEB_SEARCH_CALLS_FILTERS",
    "USAGE_WEB_SEARCH_CALLS_SCHEMA",
]

_S = pa.string()
_TS = pa.timestamp("us", tz="UTC")
_I = pa.int64()

#: The bucket's fields, first in every usage and costs row.
BUCKET_FIELDS: tuple[pa.Field, ...] = (
    field("start_time", _TS, "Start of the time bucket the result belongs to (inclusive)."),
    field("end_time", _TS, "End of the time bucket (exclusive): the next bucket's start."),
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
    return pa.schema([*BUCKET_FIELDS, *fields])


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

"""The costs endpoint's Arrow schema, group-by dimensions and filter parameters (an admin key).

GET /organization/costs answers pages of daily buckets, as the usage endpoints do (`usage.py`), each
result one amount of money:

    {"object": "bucket", "start_time": 1730419200, "end_time": 1730505600, "results": [
     {"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
      "line_item": null, "project_id": null, "api_key_id": null, "quantity": null, "quantity_unit": null}]}

One row is one result of one bucket: the bucket's `start_time` and `end_time` (`usage.BUCKET_FIELDS`),
then the spec's `CostsResult` properties in its order: object, amount, line_item, project_id,
api_key_id, quantity, quantity_unit.

Money is never a float: `amount.value` is DECIMAL(38, 12), which holds the API's JSON number exactly
when it is read from the number's text (a value with more than 12 decimals does not fit and is an
error, never rounded). `quantity` (tokens, seconds, GiB-hours... of a line item) may be fractional:
DOUBLE.

Dimensions and filters as in `usage.py`: `line_item`, `project_id` and `api_key_id` hold a value only
where the request grouped by them, and a filter matches its column exactly only then.

>>> COSTS_SCHEMA.field("amount").type.field("value").type
Decimal128Type(decimal128(38, 12))

What the schema drops, documented, never an error: the page envelope, the bucket's `object`, and any
key the API adds to a result.
"""

from __future__ import annotations

import pyarrow as pa

from duckdb_openai.resources.usage import BUCKET_FIELDS, REQUEST_FIELDS, bucketed
from duckdb_openai.schema import field, struct

__all__ = [
    "COSTS",
    "COSTS_DIMENSIONS",
    "COSTS_FILTERS",
    "COSTS_LIMIT",
    "COSTS_SCHEMA",
    "MONEY",
    "QUANTITY_UNITS",
]

#: An exact amount of money: 26 digits before the point, 12 after.
MONEY = pa.decimal128(38, 12)
#: The units the spec names for `quantity`; the API may send another, or NULL where none applies.
QUANTITY_UNITS = (
    "tokens",
    "1000_tokens",
    "duration_seconds",
    "duration_minutes",
    "duration_hours",
    "gibibyte_hours",
    "images",
    "characters",
)

_S = pa.string()

COSTS_SCHEMA: pa.Schema = pa.schema(
    [
        *BUCKET_FIELDS,
        *REQUEST_FIELDS,
        field("object", _S, "Always 'organization.costs.result'."),
        field(
            "amount",
            struct(
                field("value", MONEY, "The cost, exact (DECIMAL, never a float)."),
                field("currency", _S, "Lowercase ISO-4217 currency, e.g. 'usd'."),
            ),
            "The cost of the result in its currency.",
        ),
        field(
            "line_item",
            _S,
            "Line item of the grouped costs ('input_tokens', ...); NULL unless grouped by line_item.",
        ),
        field(
            "project_id", _S, "Project of the grouped costs; NULL unless the request grouped by project_id."
        ),
        field(
            "api_key_id", _S, "API key of the grouped costs; NULL unless the request grouped by api_key_id."
        ),
        field(
            "quantity",
            pa.float64(),
            "Quantity of the line item, in quantity_unit; NULL unless grouped by line_item.",
        ),
        field(
            "quantity_unit",
            _S,
            "Unit of quantity: " + ", ".join(f"'{u}'" for u in QUANTITY_UNITS) + " or another; NULL if none.",
        ),
    ]
)
COSTS_DIMENSIONS = ("project_id", "line_item", "api_key_id")
COSTS_FILTERS = (("project_ids", "project_id"), ("api_key_ids", "api_key_id"))

#: Daily buckets only, up to 180 a page: half a year of costs is one request.
COSTS_LIMIT = 180

COSTS = bucketed(
    "costs",
    "organization/costs",
    COSTS_SCHEMA,
    COSTS_DIMENSIONS,
    COSTS_FILTERS,
    doc="The organization's costs by day (an admin key): GET /organization/costs",
    widths={"1d": COSTS_LIMIT},
)

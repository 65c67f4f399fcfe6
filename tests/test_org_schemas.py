"""The organization endpoints' fixed schemas held to their contract, `tests/contracts/admin.yaml`.

Each schema has a field of a compatible Arrow type at the path of every property of its spec component
(`$ref`, `anyOf` with null, nested objects and arrays resolved), in the spec's order, and nothing else
but what the modules document: the usage buckets' `start_time` / `end_time`, the `project_id` key of a
project's lists, the audit log's `details`, and the session fields the spec's own examples show. The
dimension and filter tuples are the spec's `group_by` enums and filter parameters; DuckDB creates a table
of every schema with DECIMAL and TIMESTAMP WITH TIME ZONE intact; the spec's examples decode.

The money findings for the engine's decoder are pinned here too: which pyarrow paths build
DECIMAL(38, 12) from a JSON number exactly (the JSON reader told the type; `pa.array` of `Decimal`s),
and which round through a float or refuse.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.json as pj
import pytest
import yaml

from duckdb_openai.engine.convert import PageDecoder
from duckdb_openai.resources import audit_logs, costs, projects, usage, users
from duckdb_openai.schema import column_reference, doc, is_json, json_key

SPEC: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "contracts" / "admin.yaml").read_text())
COMPONENTS: dict[str, Any] = SPEC["components"]["schemas"]
TS = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(38, 12)

# (path, result component, module, constant prefix) of the eleven bucketed endpoints.
BUCKETED = [
    ("/organization/usage/completions", "UsageCompletionsResult", usage, "USAGE_COMPLETIONS"),
    ("/organization/usage/embeddings", "UsageEmbeddingsResult", usage, "USAGE_EMBEDDINGS"),
    ("/organization/usage/moderations", "UsageModerationsResult", usage, "USAGE_MODERATIONS"),
    ("/organization/usage/images", "UsageImagesResult", usage, "USAGE_IMAGES"),
    ("/organization/usage/audio_speeches", "UsageAudioSpeechesResult", usage, "USAGE_AUDIO_SPEECHES"),
    (
        "/organization/usage/audio_transcriptions",
        "UsageAudioTranscriptionsResult",
        usage,
        "USAGE_AUDIO_TRANSCRIPTIONS",
    ),
    ("/organization/usage/vector_stores", "UsageVectorStoresResult", usage, "USAGE_VECTOR_STORES"),
    (
        "/organization/usage/code_interpreter_sessions",
        "UsageCodeInterpreterSessionsResult",
        usage,
        "USAGE_CODE_INTERPRETER_SESSIONS",
    ),
    ("/organization/usage/file_search_calls", "UsageFileSearchCallsResult", usage, "USAGE_FILE_SEARCH_CALLS"),
    ("/organization/usage/web_search_calls", "UsageWebSearchCallsResult", usage, "USAGE_WEB_SEARCH_CALLS"),
    ("/organization/costs", "CostsResult", costs, "COSTS"),
]
PREFIXES = [prefix for *_, prefix in BUCKETED]
#: The usage parameters that are no filter on a result column: the time range, bucketing and paging.
NOT_FILTERS = {"start_time", "end_time", "bucket_width", "group_by", "limit", "page"}
#: Where the spec's number is money: DECIMAL, never a float (every other number is DOUBLE).
MONEY_PATHS = {"amount.value"}
#: The session fields the spec's `AuditLogActorSession` does not declare but its examples show.
SESSION_EXTRAS = ["user_agent", "ja3", "ja4", "ip_address_details"]

SCHEMAS: dict[str, pa.Schema] = {
    **{prefix: getattr(module, f"{prefix}_SCHEMA") for _, _, module, prefix in BUCKETED},
    "AUDIT_LOGS": audit_logs.AUDIT_LOGS_SCHEMA,
    "PROJECTS": projects.PROJECTS_SCHEMA,
    "PROJECT_API_KEYS": projects.PROJECT_API_KEYS_SCHEMA,
    "PROJECT_SERVICE_ACCOUNTS": projects.PROJECT_SERVICE_ACCOUNTS_SCHEMA,
    "USERS": users.USERS_SCHEMA,
}


def parameters(path: str) -> dict[str, dict[str, Any]]:
    """The GET parameters of `path`, by name, in the spec's order."""
    return {p["name"]: p for p in SPEC["paths"][path]["get"]["parameters"]}


def example(text: str) -> Any:
    """An example of the spec as JSON; the audit-log list's has trailing commas, which JSON refuses."""
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def path_example(path: str) -> Any:
    return example(SPEC["paths"][path]["get"]["x-oaiMeta"]["examples"]["response"])


def component_example(name: str) -> Any:
    return example(COMPONENTS[name]["x-oaiMeta"]["example"])


# -- the schema against its component, property by property ----------------------------------------------


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with `$ref` followed and `anyOf` with null reduced to its one kind of value."""
    if "$ref" in node:
        return resolve(COMPONENTS[node["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in node:
        kinds = [resolve(k) for k in node["anyOf"] if k.get("type") != "null"]
        assert len({k.get("type") for k in kinds}) == 1, node  # e.g. quantity_unit: a string or an enum
        return {**node, **kinds[0]}
    return node


def mismatches(
    node: dict[str, Any], t: pa.DataType, path: str, extras: dict[str, tuple[list[str], list[str]]]
) -> Iterator[str]:
    """Where Arrow type `t` differs from spec node `node`. `extras` names, per struct path, the fields
    the schema documents before and after the spec's properties."""
    node = resolve(node)
    kind = node.get("type")
    if kind == "object":
        if not pa.types.is_struct(t):
            yield f"{path}: an object in the spec, {t} here"
            return
        properties: dict[str, Any] = node["properties"]
        before, after = extras.get(path, ([], []))
        names = [f.name for f in t]
        if names != [*before, *properties, *after]:
            yield f"{path or 'the row'}: fields {names}, the spec (with the documented extras) has " + str(
                [*before, *properties, *after]
            )
            return
        for name, child in properties.items():
            yield from mismatches(child, t.field(name).type, f"{path}.{name}".lstrip("."), extras)
    elif kind == "array":
        if not pa.types.is_list(t):
            yield f"{path}: an array in the spec, {t} here"
            return
        yield from mismatches(node["items"], t.value_type, f"{path}[]", extras)
    else:
        expected = {
            ("integer", "unixtime"): TS,
            ("integer", None): pa.int64(),
            ("number", None): MONEY if path in MONEY_PATHS else pa.float64(),
            ("string", None): pa.string(),
            ("boolean", None): pa.bool_(),
        }[(kind, node.get("format") if node.get("format") == "unixtime" else None)]
        if t != expected:
            yield f"{path}: {kind} {node.get('format', '')} in the spec, {t} here"


BUCKET = COMPONENTS["UsageTimeBucket"]["properties"]
EVENT_TYPES = set(COMPONENTS["AuditLogEventType"]["enum"])
#: `AuditLog` without the event objects (one key per event type), which are the one `details` column.
AUDIT_LOG_COMMON = {
    **COMPONENTS["AuditLog"],
    "properties": {k: v for k, v in COMPONENTS["AuditLog"]["properties"].items() if k not in EVENT_TYPES},
}
CASES: list[tuple[str, dict[str, Any], dict[str, tuple[list[str], list[str]]]]] = [
    *[
        (prefix, COMPONENTS[component], {"": (["start_time", "end_time", "bucket_width", "partial"], [])})
        for _, component, _, prefix in BUCKETED
    ],
    ("AUDIT_LOGS", AUDIT_LOG_COMMON, {"": ([], ["details"]), "actor.session": ([], SESSION_EXTRAS)}),
    ("PROJECTS", COMPONENTS["Project"], {}),
    ("PROJECT_API_KEYS", COMPONENTS["ProjectApiKey"], {"": (["project_id"], [])}),
    ("PROJECT_SERVICE_ACCOUNTS", COMPONENTS["ProjectServiceAccount"], {"": (["project_id"], [])}),
    ("USERS", COMPONENTS["User"], {}),
]


@pytest.mark.parametrize(("name", "component", "extras"), CASES, ids=[c[0] for c in CASES])
def test_every_property_of_the_component_is_a_field_of_its_type_in_order(
    name: str, component: dict[str, Any], extras: dict[str, tuple[list[str], list[str]]]
) -> None:
    schema = SCHEMAS[name]
    assert list(mismatches(component, pa.struct(list(schema)), "", extras)) == []


def test_the_checker_sees_a_missing_a_misplaced_and_a_mistyped_field() -> None:
    """The comparison above is not vacuous: each kind of drift from the spec is reported."""
    good = projects.PROJECTS_SCHEMA
    component = COMPONENTS["Project"]
    assert list(mismatches(component, pa.struct(list(good)), "", {})) == []
    dropped = pa.struct([f for f in good if f.name != "residency"])
    swapped = pa.struct([good.field("object"), good.field("id"), *list(good)[2:]])
    float_time = pa.struct([f.with_type(pa.float64()) if f.name == "created_at" else f for f in good])
    for wrong in (dropped, swapped, float_time):
        assert list(mismatches(component, wrong, "", {})), wrong


def test_the_documented_extras_are_the_buckets_the_key_and_the_event_object() -> None:
    for _, _, module, prefix in BUCKETED:
        schema = getattr(module, f"{prefix}_SCHEMA")
        for name in ("start_time", "end_time"):
            assert BUCKET[name]["type"] == "integer"  # Unix seconds (the spec gives no format here)
            assert schema.field(name).type == TS
    for path in (
        "/organization/projects/{project_id}/api_keys",
        "/organization/projects/{project_id}/service_accounts",
    ):
        assert parameters(path)["project_id"]["in"] == "path"
    assert projects.PROJECT_API_KEYS_SCHEMA.field("project_id").type == pa.string()
    details = audit_logs.AUDIT_LOGS_SCHEMA.field("details")
    assert json_key(details) == "type" and audit_logs.AUDIT_LOGS_SCHEMA.names[-1] == "details"
    for _, _, module, prefix in BUCKETED:  # what the request says of each row, after the bucket's fields
        schema = getattr(module, f"{prefix}_SCHEMA")
        assert schema.field("bucket_width").type == pa.string() and schema.field("partial").type == pa.bool_()
    # The typed event fields are the spec's five common ones; every other property is an event's object.
    assert list(AUDIT_LOG_COMMON["properties"]) == ["id", "type", "effective_at", "project", "actor"]
    events = set(COMPONENTS["AuditLog"]["properties"]) - set(AUDIT_LOG_COMMON["properties"])
    assert (len(events), len(EVENT_TYPES)) == (55, 145)  # as audit_logs.py's docstring says


def test_the_session_fields_the_spec_leaves_out_are_those_its_examples_show() -> None:
    sessions = [
        event["actor"]["session"]
        for event in [*path_example("/organization/audit_logs")["data"], component_example("AuditLog")]
        if event["actor"]["type"] == "session"
    ]
    shown = {key for session in sessions for key in session}
    declared = list(COMPONENTS["AuditLogActorSession"]["properties"])
    assert set(SESSION_EXTRAS) == shown - set(declared)
    session = audit_logs.ACTOR.field("session").type
    assert all(session.field(name).type == pa.string() for name in SESSION_EXTRAS)
    assert is_json(session.field("ip_address_details"))  # an object the spec does not describe


def test_every_key_of_the_examples_is_a_column() -> None:
    """Nothing the spec's examples show is dropped: their result and object keys are all columns."""
    for path, component, module, prefix in BUCKETED:
        names = set(getattr(module, f"{prefix}_SCHEMA").names)
        results = [r for bucket in path_example(path)["data"] for r in bucket["results"]]
        for result in [*results, component_example(component)]:
            assert set(result) <= names, (prefix, set(result) - names)
    for component, schema in [
        ("Project", projects.PROJECTS_SCHEMA),
        ("ProjectApiKey", projects.PROJECT_API_KEYS_SCHEMA),
        ("ProjectServiceAccount", projects.PROJECT_SERVICE_ACCOUNTS_SCHEMA),
        ("User", users.USERS_SCHEMA),
    ]:
        assert set(component_example(component)) <= set(schema.names), component


def fields(t: pa.DataType, prefix: str = "") -> Iterator[tuple[str, pa.Field]]:
    """Every field and nested field of a struct type, depth first, through lists."""
    for f in t:
        yield f"{prefix}{f.name}", f
        inner, suffix = f.type, ""
        while pa.types.is_list(inner):
            inner, suffix = inner.value_type, suffix + "[]"
        if pa.types.is_struct(inner):
            yield from fields(inner, f"{prefix}{f.name}{suffix}.")


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_field_and_nested_field_is_documented(name: str) -> None:
    walked = list(fields(pa.struct(list(SCHEMAS[name]))))
    assert len(walked) >= len(SCHEMAS[name])
    assert [path for path, f in walked if not doc(f).strip()] == []


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_the_column_reference_lists_every_schema(name: str) -> None:
    """The README's column reference (`schema.column_reference`) reads each schema (costs' DECIMAL
    included: `DECIMAL(38, 12)`)."""
    reference = [(path, text) for path, _, text in column_reference(SCHEMAS[name])]
    assert reference == [(path, doc(f)) for path, f in fields(pa.struct(list(SCHEMAS[name])))]


# -- dimensions and filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "module", "prefix"), [(p, m, x) for p, _, m, x in BUCKETED], ids=PREFIXES)
def test_the_dimensions_are_the_group_by_enum(path: str, module: ModuleType, prefix: str) -> None:
    dimensions = getattr(module, f"{prefix}_DIMENSIONS")
    assert list(dimensions) == parameters(path)["group_by"]["schema"]["items"]["enum"]
    schema = getattr(module, f"{prefix}_SCHEMA")
    assert all(schema.field(d).type in (pa.string(), pa.bool_()) for d in dimensions)


@pytest.mark.parametrize(("path", "module", "prefix"), [(p, m, x) for p, _, m, x in BUCKETED], ids=PREFIXES)
def test_the_filters_are_the_filter_parameters_each_with_its_column(
    path: str, module: ModuleType, prefix: str
) -> None:
    filters = getattr(module, f"{prefix}_FILTERS")
    spec = {name: p for name, p in parameters(path).items() if name not in NOT_FILTERS}
    assert [parameter for parameter, _ in filters] == list(spec)
    dimensions = getattr(module, f"{prefix}_DIMENSIONS")
    for parameter, column in filters:
        kind = spec[parameter]["schema"]["type"]
        # An array of values of the column (models -> model), or `batch`, a boolean on the column batch.
        assert (kind, column) in {("array", parameter.removesuffix("s")), ("boolean", parameter)}, parameter
        # A filter's column holds values only where the request groups by it: it must be a dimension.
        assert column in dimensions


def struct_path(schema: pa.Schema, path: str) -> pa.Field:
    head, *rest = path.split(".")
    f = schema.field(head)
    for name in rest:
        f = f.type.field(name)
    return f


def test_the_audit_log_filters_are_its_array_parameters() -> None:
    spec = parameters("/organization/audit_logs")
    arrays = [name for name, p in spec.items() if p["schema"]["type"] == "array"]
    assert [parameter for parameter, _ in audit_logs.AUDIT_LOGS_FILTERS] == arrays
    assert set(arrays) == {
        "event_types[]",
        "project_ids[]",
        "actor_ids[]",
        "actor_emails[]",
        "resource_ids[]",
    }
    for _, column in audit_logs.AUDIT_LOGS_FILTERS:
        if column is not None:
            assert struct_path(audit_logs.AUDIT_LOGS_SCHEMA, column).type == pa.string()
    assert dict(audit_logs.AUDIT_LOGS_FILTERS)["event_types[]"] == "type"
    assert spec["event_types[]"]["schema"]["items"]["$ref"].endswith("/AuditLogEventType")


def test_the_effective_at_parameters_are_the_spec_range() -> None:
    bounds = parameters("/organization/audit_logs")["effective_at"]["schema"]["properties"]
    assert [p for _, p in audit_logs.AUDIT_LOGS_EFFECTIVE_AT] == [f"effective_at[{b}]" for b in bounds]
    meaning = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    assert tuple((meaning[b], f"effective_at[{b}]") for b in bounds) == audit_logs.AUDIT_LOGS_EFFECTIVE_AT
    assert audit_logs.AUDIT_LOGS_SCHEMA.field("effective_at").type == TS


def test_the_users_filter_and_the_enums_are_the_spec_s() -> None:
    arrays = [n for n, p in parameters("/organization/users").items() if p["schema"]["type"] == "array"]
    assert [p for p, _ in users.USERS_FILTERS] == arrays == ["emails"]
    assert users.USERS_SCHEMA.field("email").type == pa.string()
    assert list(projects.PROJECT_RESIDENCIES) == COMPONENTS["PublicProjectResidency"]["enum"]
    units = [k for k in COMPONENTS["CostsResult"]["properties"]["quantity_unit"]["anyOf"] if "enum" in k]
    assert list(costs.QUANTITY_UNITS) == units[0]["enum"]


# -- DuckDB and the examples -------------------------------------------------------------------------------


def duckdb_text(t: pa.DataType) -> str:
    """The DuckDB type an Arrow type should become, written out independently of `schema.duckdb_type`."""
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_text(f.type)}' for f in t) + ")"
    if pa.types.is_list(t):
        return duckdb_text(t.value_type) + "[]"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    simple = {
        TS: "TIMESTAMP WITH TIME ZONE",
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }
    return simple[t]


@pytest.mark.parametrize("name", SCHEMAS)
def test_duckdb_creates_a_table_of_each_schema_with_its_types(name: str) -> None:
    schema = SCHEMAS[name]
    con = duckdb.connect()
    con.register("empty", schema.empty_table())
    con.execute("CREATE TABLE t AS SELECT * FROM empty")
    con.execute(
        "CREATE TABLE expected (" + ", ".join(f'"{f.name}" {duckdb_text(f.type)}' for f in schema) + ")"
    )
    # DuckDB prints both in its own spelling, so the two descriptions compare as types, not as text.
    assert con.execute("DESCRIBE t").fetchall() == con.execute("DESCRIBE expected").fetchall()
    types = dict((column, kind) for column, kind, *_ in con.execute("DESCRIBE t").fetchall())
    for f in schema:
        if f.type == TS:
            assert types[f.name] == "TIMESTAMP WITH TIME ZONE"
    if name == "COSTS":
        assert types["amount"] == 'STRUCT("value" DECIMAL(38,12), currency VARCHAR)'
    con.close()


@pytest.mark.parametrize(
    ("component", "schema"),
    [
        ("Project", projects.PROJECTS_SCHEMA),
        ("User", users.USERS_SCHEMA),
        ("ProjectApiKey", projects.PROJECT_API_KEYS_SCHEMA),
        ("ProjectServiceAccount", projects.PROJECT_SERVICE_ACCOUNTS_SCHEMA),
        ("AuditLog", audit_logs.AUDIT_LOGS_SCHEMA),
    ],
)
def test_the_engine_decodes_the_component_example(component: str, schema: pa.Schema) -> None:
    """The engine's decoder reads the spec's example object into the schema, every value as sent."""
    sent = component_example(component)
    row = PageDecoder(schema).decode_object(json.dumps(sent).encode()).to_pylist()[0]

    def same(value: Any, decoded: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                same(item, decoded[key], f"{path}.{key}")
        elif isinstance(decoded, datetime.datetime):
            assert decoded.timestamp() == value, path
        else:
            assert decoded == value, path

    for key, value in sent.items():
        if key in schema.names:
            same(value, row[key], key)
    assert set(sent) - set(schema.names) <= {sent.get("type")}  # only the event's object (for `details`)


def test_the_engine_decodes_an_audit_session_with_its_ip_address_details() -> None:
    event = path_example("/organization/audit_logs")["data"][1]
    row = PageDecoder(audit_logs.AUDIT_LOGS_SCHEMA).decode_object(json.dumps(event).encode()).to_pylist()[0]
    session = row["actor"]["session"]
    assert session["ja4"] == event["actor"]["session"]["ja4"]
    assert json.loads(session["ip_address_details"]) == event["actor"]["session"]["ip_address_details"]


# -- money: which pyarrow paths build DECIMAL(38, 12) from a JSON number exactly ---------------------------

AMOUNT = costs.COSTS_SCHEMA.field("amount").type
#: JSON numbers as the API may write them: the spec's example, an exponent, more digits than a double has.
EXACT = {
    "0.06": decimal.Decimal("0.06"),
    "1.2345678e-05": decimal.Decimal("0.000012345678"),
    "123456789.123456789012": decimal.Decimal("123456789.123456789012"),
    "7": decimal.Decimal(7),
}


def read_amounts(numbers: list[str], parse: pa.DataType | None = AMOUNT) -> pa.Array:
    """`amount` objects holding `numbers`, through pyarrow's JSON reader (told the type, or inferring)."""
    lines = "".join(f'{{"amount": {{"value": {n}, "currency": "usd"}}}}\n' for n in numbers).encode()
    options = pj.ParseOptions(explicit_schema=pa.schema([("amount", parse)])) if parse else None
    return pj.read_json(io.BytesIO(lines), parse_options=options).column("amount").combine_chunks()


def test_the_json_reader_told_the_decimal_type_reads_the_spec_example_exactly() -> None:
    body = SPEC["paths"]["/organization/costs"]["get"]["x-oaiMeta"]["examples"]["response"].encode()
    page = pa.schema(
        [("data", pa.list_(pa.struct([("results", pa.list_(pa.struct([("amount", AMOUNT)])))])))]
    )
    table = pj.read_json(
        io.BytesIO(body.replace(b"\n", b" ")),
        parse_options=pj.ParseOptions(explicit_schema=page, unexpected_field_behavior="ignore"),
    )
    amount = table.column("data")[0][0]["results"][0]["amount"].as_py()
    assert amount == {"value": decimal.Decimal("0.06"), "currency": "usd"}


def test_the_json_reader_told_the_decimal_type_is_exact_or_refuses() -> None:
    values = read_amounts(list(EXACT)).field("value")
    assert values.type == MONEY
    assert values.to_pylist() == list(EXACT.values())
    # A 13th decimal does not fit: an error, never rounded.
    with pytest.raises(pa.ArrowInvalid, match="requires scale 13"):
        read_amounts(["1e-13"])
    # But the reader does not check the precision: 27 digits before the point pass, and only a full
    # validation sees the value does not fit DECIMAL(38, 12).
    too_big = read_amounts(["123456789012345678901234567.1"]).field("value")
    with pytest.raises(pa.ArrowInvalid, match="does not fit in precision"):
        too_big.validate(full=True)


def test_pa_array_builds_money_exactly_from_decimals_and_refuses_floats() -> None:
    lines = [f'{{"value": {n}, "currency": "usd"}}' for n in EXACT]
    exact = [json.loads(line, parse_float=decimal.Decimal) for line in lines]
    assert pa.array(exact, type=AMOUNT).field("value").to_pylist() == list(EXACT.values())
    with pytest.raises(pa.ArrowInvalid, match="data loss"):
        pa.array([decimal.Decimal("1e-13")], type=MONEY)
    # `json.loads` without parse_float makes floats, which pa.array refuses for a decimal...
    with pytest.raises(pa.ArrowTypeError, match="got float"):
        pa.array([json.loads(line) for line in lines], type=AMOUNT)
    # ...and a Decimal is refused for a DOUBLE (`quantity`): parse_float=Decimal needs a float after it.
    with pytest.raises(pa.ArrowInvalid):
        pa.array([decimal.Decimal("0.5")], type=pa.float64())


def test_a_float_on_the_way_loses_money_silently() -> None:
    """The reader left to infer reads a double; casting that to the decimal rounds through the float:
    short values survive, 22 significant digits do not, and 1e-13 becomes 0 without an error."""
    inferred = read_amounts([*EXACT, "1e-13"], parse=None).field("value")
    assert inferred.type == pa.float64()
    cast = inferred.cast(MONEY).to_pylist()
    assert cast[:2] == [decimal.Decimal("0.06"), decimal.Decimal("0.000012345678")]
    assert cast[2] != EXACT["123456789.123456789012"]
    assert cast[4] == 0


def test_duckdb_sums_the_decimal_exactly() -> None:
    amounts = pa.table({"value": pa.array([decimal.Decimal("0.1")] * 10, type=MONEY)})
    con = duckdb.connect()
    con.register("amounts", amounts)
    total, kind = con.execute("SELECT sum(value), typeof(sum(value)) FROM amounts").fetchone()  # type: ignore[misc]
    assert (total, kind) == (decimal.Decimal(1), "DECIMAL(38,12)")
    con.close()

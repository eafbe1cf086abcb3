"""The API's docs show every operation with examples (issue 17: "The docs page lists every route
with examples"), and the examples are right.

For each operation of the generated OpenAPI schema: a summary of its own (not the one ninja
makes from the view's name) and a description; an example of every parameter; an example of its
request body; an example of each 2xx JSON answer (on the media type, or on its schema with
$ref followed into the components). And every example anywhere in the schema is valid against
the schema it illustrates, formats included: the docs page shows them, and schemathesis sends
them, where a wrong one becomes a failing case.
"""

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from api.v1 import api

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# The keywords whose values are schemas, and those whose values are maps or lists of schemas.
SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames")
SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
# Parameters left without an example on purpose: the docs' "Try it out" fills in every example,
# and the invoices' month and issue dates are refused together (the dates have examples).
WITHOUT_EXAMPLE = {
    ("GET /api/v1/invoices/", "month"),
    ("GET /api/v1/invoices/export.csv", "month"),
}


def _schema() -> dict[str, Any]:
    """The schema as served: JSON (status codes as strings)."""
    return json.loads(json.dumps(api.get_openapi_schema(), default=str))


SCHEMA = _schema()
COMPONENTS = SCHEMA.get("components", {})
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
    if method in METHODS
}


def _resolved(schema: Any) -> Any:
    """`schema`, its $ref followed into the components (again while it is one)."""
    while isinstance(schema, dict) and "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = COMPONENTS["schemas"][name]
    return schema


def _examples(container: dict[str, Any]) -> list[Any]:
    """The examples a parameter or a media type gives (`example`, or `examples` as OpenAPI's
    map of Example Objects), and those its schema gives (JSON Schema's `examples`, a list, or
    the older `example`)."""
    found: list[Any] = []
    if "example" in container:
        found.append(container["example"])
    examples = container.get("examples")
    if isinstance(examples, dict):
        found.extend(example["value"] for example in examples.values() if "value" in example)
    elif isinstance(examples, list):
        found.extend(examples)
    schema = _resolved(container.get("schema"))
    if isinstance(schema, dict):
        found.extend(schema.get("examples", []))
        if "example" in schema:
            found.append(schema["example"])
    return found


def _errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """What is wrong with `value` against `schema` (its $refs into this document's components),
    formats included."""
    document = {**schema, "components": COMPONENTS}
    validator = jsonschema_rs.Draft202012Validator(document, validate_formats=True)
    return [
        f"{'/'.join(map(str, error.instance_path))}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def _json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _is_default_summary(operation: dict[str, Any]) -> bool:
    """ninja's own summary is the view's name in title case ("Customer Get" for customer_get),
    and the operationId ends with the view's name."""
    words = operation["operationId"].split("_")
    return any(
        operation.get("summary") == " ".join(words[start:]).title() for start in range(len(words))
    )


def test_every_route_is_there():
    assert {"GET /customers/", "POST /subscriptions/{subscription_id}/licences"} <= {
        label.replace("/api/v1", "") for label in OPERATIONS
    }


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_is_described(label: str) -> None:
    operation = OPERATIONS[label]
    assert operation.get("summary", "").strip(), "no summary"
    assert not _is_default_summary(operation), f"ninja's own summary: {operation['summary']!r}"
    assert operation.get("description", "").strip(), "no description (the view's docstring)"


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_has_examples(label: str) -> None:
    operation = OPERATIONS[label]
    missing = [
        f"parameter {parameter['name']} ({parameter['in']})"
        for parameter in operation.get("parameters", [])
        if not _examples(parameter) and (label, parameter["name"]) not in WITHOUT_EXAMPLE
    ]
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        if not _examples(content):
            missing.append(f"request body ({media_type})")
    for status, response in operation["responses"].items():
        if not status.startswith("2"):
            continue
        for media_type, content in response.get("content", {}).items():
            if _json(media_type) and not _examples(content):
                missing.append(f"{status} answer ({media_type})")
    assert not missing, f"no example: {', '.join(missing)}"


def _declared() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, its schema) for every example the schema gives."""
    for label, operation in OPERATIONS.items():
        for parameter in operation.get("parameters", []):
            for example in _examples(parameter):
                yield f"{label} parameter {parameter['name']}", example, parameter["schema"]
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            for example in _examples(content):
                yield f"{label} request body ({media_type})", example, content["schema"]
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if "schema" in content:
                    for example in _examples(content):
                        yield f"{label} {status} answer ({media_type})", example, content["schema"]
    # Every schema in the components, and every schema inside one (a property's own example).
    for name, schema in COMPONENTS.get("schemas", {}).items():
        yield from _schema_examples(f"components/{name}", schema)


def _schema_examples(where: str, schema: Any) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    for example in schema.get("examples", []) if isinstance(schema.get("examples"), list) else []:
        yield where, example, schema
    if "example" in schema:
        yield where, schema["example"], schema
    for keyword in SUBSCHEMA:
        yield from _schema_examples(f"{where}/{keyword}", schema.get(keyword))
    for keyword in SUBSCHEMA_MAPS:
        for name, subschema in (schema.get(keyword) or {}).items():
            yield from _schema_examples(f"{where}/{name}", subschema)
    for keyword in SUBSCHEMA_LISTS:
        for index, subschema in enumerate(schema.get(keyword) or []):
            yield from _schema_examples(f"{where}/{keyword}/{index}", subschema)


DECLARED = list(_declared())


def test_there_are_examples_to_check():
    assert len(DECLARED) > len(OPERATIONS)


@pytest.mark.parametrize(
    ("where", "example", "schema"), DECLARED, ids=[where for where, _, _ in DECLARED]
)
def test_example_is_valid(where: str, example: Any, schema: dict[str, Any]) -> None:
    assert not _errors(example, schema), _errors(example, schema)


def test_a_wrong_example_is_caught():
    """The check itself: a wrong value, a missing member, a bad date and a $ref followed."""
    money = {"$ref": "#/components/schemas/Money"}
    assert not _errors({"amount": "12.80", "currency": "EUR"}, money)
    assert _errors({"amount": "12.80"}, money)
    assert _errors("30 November", {"type": "string", "format": "date"})

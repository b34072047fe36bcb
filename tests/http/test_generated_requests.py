"""Requests generated from the app's own OpenAPI schema never get a 500 (or a 502).

Every operation the schema lists is called with path variables that match its
pattern or not, and bodies generated from its request schema (:func:`from_schema`,
the subset of JSON Schema FastAPI writes) or arbitrary JSON. Bounded:
:data:`EXAMPLES` requests.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: Requests sent in all (a few hundred at most: the package must stay quick).
EXAMPLES = 150

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a JSON schema (objects, anyOf, strings with patterns, numbers, arrays)."""
    if "anyOf" in schema:
        return st.one_of([from_schema(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        ) if properties else st.dictionaries(st.text(max_size=8), _json, max_size=3)  # fmt: skip
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 30), 30)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: low <= len(s) <= high
            )
        return st.text(min_size=low, max_size=max(high, low))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=4)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return _json


def _inline(node: Any, components: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` replaced by what it names."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(components[node["$ref"].rsplit("/", 1)[-1]], components)
        return {key: _inline(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, components) for item in node]
    return node


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in sorted(schema["paths"].items())
        for method, operation in sorted(methods.items())
    ]


def _path_value(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    pattern = parameter.get("schema", {}).get("pattern")
    matching = st.from_regex(pattern, fullmatch=True).filter(lambda s: 0 < len(s) <= 60)
    return st.one_of(matching, st.text(min_size=1, max_size=20))


def _body(operation: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return st.none()
    schema = _inline(content["schema"], components)
    return st.one_of(from_schema(schema), _json)


def test_no_generated_request_gets_a_server_error(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    components = schema.get("components", {}).get("schemas", {})
    listed = operations(schema)
    assert len(listed) >= 30
    seen: set[int] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def request(data: st.DataObject) -> None:
        method, path, operation = data.draw(st.sampled_from(listed), label="operation")
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                value = data.draw(_path_value(parameter), label=parameter["name"])
                path = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
        body = data.draw(_body(operation, components), label="body")
        content = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if content is not None else {}
        response = api.request(method, path, content=content, headers=headers)
        seen.add(response.status_code)
        assert response.status_code not in (500, 502), (method, path, body, response.text)
        if response.status_code >= 400:
            assert "error" in response.json(), response.text

    request()
    assert seen & {200, 201} and seen & {400, 404}  # both kinds were reached

"""GitHub's official OpenAPI descriptions, fetched with npm and cached, as JSON Schema validators.

The REST description comes from ``@octokit/openapi`` (OpenAPI 3.0: ``nullable`` is rewritten
into JSON Schema type lists), the webhook payloads from ``@octokit/openapi-webhooks``
(OpenAPI 3.1, used as is). Both are pinned. ``npm pack`` downloads a package once into
``.cache/octokit/`` at the repository root (gitignored); each JSON file is loaded once per
test session. Without npm the caller skips with the reason :func:`load` raises.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.octokit import Unavailable, fetch

MEMBER = "package/generated/api.github.com.json"
API_PACKAGE = ("@octokit/openapi", "23.0.2", MEMBER)
WEBHOOKS_PACKAGE = ("@octokit/openapi-webhooks", "12.1.0", MEMBER)
__all__ = ["Unavailable", "rest", "webhooks"]


def nullable_to_type_lists(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable: true`` into JSON Schema 2020-12, in place."""
    if isinstance(node, list):
        for item in node:
            nullable_to_type_lists(item)
        return node
    if not isinstance(node, dict):
        return node
    for value in node.values():
        nullable_to_type_lists(value)
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        elif any(k in node for k in ("$ref", "allOf", "oneOf", "anyOf")):
            inner = {k: node.pop(k) for k in ("$ref", "allOf", "oneOf", "anyOf") if k in node}
            node["anyOf"] = [inner, {"type": "null"}]
    return node


class Description:
    """One OpenAPI document with validators for the schemas inside it."""

    def __init__(self, document: dict[str, Any], uri: str) -> None:
        self.document = document
        self.uri = uri
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(uri, resource)

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at JSON pointer ``pointer`` (``/components/...``)."""
        return self.validator_for({"$ref": f"{self.uri}#{pointer}"})

    def validator_for(self, schema: dict[str, Any]) -> Draft202012Validator:
        """A validator for ``schema``, whose ``$ref``s are absolute (``{uri}#/components/...``)."""
        return Draft202012Validator(schema, registry=self.registry)

    def resolve(self, node: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Follow a local ``$ref`` (e.g. ``#/components/responses/not_found``) to its node."""
        pointer = ""
        while "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = self.document
            for part in pointer.strip("/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, pointer


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


@functools.cache
def rest() -> Description:
    document = orjson.loads(fetch(*API_PACKAGE).read_bytes())
    nullable_to_type_lists(document["components"])
    nullable_to_type_lists(document["paths"])
    return Description(document, "urn:github:rest")


@functools.cache
def webhooks() -> Description:
    return Description(orjson.loads(fetch(*WEBHOOKS_PACKAGE).read_bytes()), "urn:github:webhooks")

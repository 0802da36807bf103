"""Checks request bodies against Avalara's published schemas (../shared/reference/avatax).

Two sources, both must accept a body: the 19.6 swagger (Avalara's own) and the 21.12 OpenAPI
conversion. Besides jsonschema validation (types, enums, lengths, required, date formats), every
property we send must be declared by the schema: the schemas allow unknown properties, and a
misspelt field would otherwise pass unseen while AvaTax ignores it.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# path of a request -> the schema of its body
BODY_SCHEMAS = (
    (re.compile(r"/api/v2/transactions/create$"), "CreateTransactionModel"),
    (re.compile(r"/api/v2/transactions/createoradjust$"), "CreateOrAdjustTransactionModel"),
    (re.compile(r"/transactions/[^/]+/adjust$"), "AdjustTransactionModel"),
    (re.compile(r"/transactions/[^/]+/void$"), "VoidTransactionModel"),
    (re.compile(r"/transactions/[^/]+/commit$"), "CommitTransactionModel"),
    (re.compile(r"/transactions/[^/]+/refund$"), "RefundTransactionModel"),
    (re.compile(r"/api/v2/addresses/resolve$"), "AddressValidationInfo"),
    (re.compile(r"/companies/\d+/customers$"), "CustomerModel[]"),
    (re.compile(r"/companies/\d+/customers/[^/]+$"), "CustomerModel"),
    (re.compile(r"/customers/billto/[^/]+/shipto/link$"), "LinkCustomersModel"),
    (re.compile(r"/customers/[^/]+/certexpressinvites$"), "CreateCertExpressInvitationModel[]"),
)
"""A name ending in ``[]``: the body is an array of that model (CreateCustomers and
CreateCertExpressInvitation take lists)."""


def reference_folder() -> Path:
    """Where the AvaTax reference data is (TAXBRIDGE_REFERENCE overrides)."""
    return Path(os.environ.get("TAXBRIDGE_REFERENCE", SHARED / "reference" / "avatax"))


@functools.cache
def _sources(folder: Path) -> tuple[tuple[str, dict[str, Any], str], ...]:
    # the whole 19.6 swagger: a few models (LinkCustomersModel) are not in the selection
    swagger = json.loads((folder / "avatax-v2-swagger-19.6.json").read_text())["definitions"]
    openapi = json.loads((folder / "schemas-21.12.0-selected.json").read_text())["schemas"]
    return (
        ("19.6", {"definitions": swagger}, "#/definitions/"),
        ("21.12", {"components": {"schemas": openapi}}, "#/components/schemas/"),
    )


def schema_for(path: str) -> str | None:
    """The name of the schema a request to ``path`` sends, if it sends one."""
    for pattern, name in BODY_SCHEMAS:
        if pattern.search(path):
            return name
    return None


def _resolve(root: dict[str, Any], prefix: str, schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix(prefix)
        defs = root.get("definitions") or root["components"]["schemas"]
        schema = defs[name]
    return schema


def _undeclared(
    root: dict[str, Any], prefix: str, schema: Mapping[str, Any], value: Any, where: str
) -> Iterator[str]:
    schema = _resolve(root, prefix, schema)
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                yield f"{where}.{key} is not a property of the schema"
            else:
                yield from _undeclared(root, prefix, properties[key], item, f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _undeclared(root, prefix, schema["items"], item, f"{where}[{index}]")


def problems(name: str, body: Any, folder: Path | None = None) -> list[str]:
    """Everything both published schemas object to in ``body`` (empty: it conforms)."""
    if name.endswith("[]"):
        if not isinstance(body, list) or not body:
            return [f"{name}: the body is not a non-empty list"]
        return [problem for item in body for problem in problems(name[:-2], item, folder)]
    found = []
    checked = 0
    for version, root, prefix in _sources(folder or reference_folder()):
        target = root.get("definitions") or root["components"]["schemas"]
        if name not in target:
            continue  # the 21.12 selection lacks a few models; 19.6 has them all
        checked += 1
        schema = {"$ref": f"{prefix}{name}", **root}
        validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
        for error in validator.iter_errors(body):
            found.append(f"{version} {name}: {error.json_path}: {error.message}")
        found.extend(
            f"{version} {problem}"
            for problem in _undeclared(root, prefix, target[name], body, name)
        )
    if not checked:
        found.append(f"{name}: no published schema has it")
    return found

"""Field-name → kind tables of the exchanges' answers, written by hand from ccxt's captured responses.

ccxt keeps real exchange answers as static test data (`ts/src/test/static/response/<exchange>.json`
in the ccxt repository: each method's `httpResponse`). The installed ccxt Python package does not
ship them, and this project does not copy ccxt's data: each table here names only the fields and
the kind of value a capture shows, and says which capture (method and description) it was read
from. Where a field the test venues send is documented by the exchange but missing from the
capture (an API newer or older than the capture), the table lists it under `DOCUMENTED` with its source.

Kinds are the JSON kinds the exchanges send. ccxt's captures write many integers as digit
strings, so an integer field accepts a JSON integer or a string of digits; decimals are strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

DEC = "decimal string"
DEC_OR_EMPTY = "decimal string or empty"
INT = "integer"
TEXT = "text"
BOOL = "bool"
LIST = "list"
OBJ = "object"

Shape = dict[str, str]

_INTEGER = re.compile(r"^-?\d+$")


def _is_decimal(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def conforms(value: Any, kind: str) -> bool:
    """Tell whether `value` is of `kind`."""
    if kind == DEC:
        return _is_decimal(value)
    if kind == DEC_OR_EMPTY:
        return value == "" or _is_decimal(value)
    if kind == INT:
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and bool(_INTEGER.match(value)))
    if kind == TEXT:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == LIST:
        return isinstance(value, list)
    if kind == OBJ:
        return isinstance(value, dict)
    raise ValueError(f"unknown kind {kind!r}")


def mismatches(name: str, answer: dict[str, Any], shape: Shape, *, complete: bool) -> list[str]:
    """Return what differs between `answer` and `shape`: unknown fields, wrong kinds, and (when `complete`) missing ones."""
    problems = []
    for field, value in answer.items():
        kind = shape.get(field)
        if kind is None:
            problems.append(f"{name}.{field} is not in the captured answer")
        elif not conforms(value, kind):
            problems.append(f"{name}.{field} = {value!r} is not a {kind}")
    if complete:
        problems.extend(f"{name}.{field} is missing" for field in shape if field not in answer)
    return problems

"""ConnectWise list queries: `conditions` (a subset of its syntax) and `page`/`pageSize` with a `Link` header.

Conditions are clauses `field op value` joined by `and` (case-insensitive), with values as ConnectWise writes
them: `"text"` (backslash escapes a quote), numbers, `true`, `false`, `null`; string comparison ignores case,
as ConnectWise's does. Only `=` and `!=` are implemented; `or`, parentheses, `like`, `contains`, `in`, `<`,
`>` and unknown fields are refused with a QueryError (the caller answers 400), never silently ignored.
Paging: `page` from 1, `pageSize` 1-1000 (default 25; above 1000 is clamped, as ConnectWise clamps). Pages
after the first and before the last are linked RFC 8288 style: `<url>; rel="next"`, `rel="last"`,
`rel="first"`, `rel="prev"`, each URL keeping the request's other parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.datastructures import URL

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
T = TypeVar("T")
# A field's value for one object: str, int, bool or None.
Getter = Callable[[Any], Any]

_TOKENS = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<number>-?\d+(?:\.\d+)?)(?![\w/])
    | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    | (?P<date>\[[^\]]*\])
    | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_UNSUPPORTED_WORDS = frozenset({"or", "like", "contains", "in", "not"})


class QueryError(ValueError):
    """A query the simulator refuses (400): the message says what and why."""


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKENS.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        kind = match.lastgroup
        if kind is not None:
            found.append((kind, match.group(kind)))
    return found


def _value(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "number" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "word" and text.casefold() in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text.casefold()]
    raise QueryError(f'the value {text} is not supported here (use "text", an integer, true, false or null)')


def _matches(actual: Any, op: str, wanted: Any, name: str) -> bool:
    if wanted is not None and actual is not None and type(wanted) is not type(actual):
        kind = {str: "a quoted string", int: "an integer", bool: "true or false"}.get(type(actual), "another type")
        raise QueryError(f"{name} is compared with {kind}")
    if isinstance(actual, str) and isinstance(wanted, str):
        equal = actual.casefold() == wanted.casefold()
    else:
        equal = actual == wanted
    return equal if op == "=" else not equal


def conditions(text: str | None, fields: Mapping[str, Getter]) -> Callable[[Any], bool]:
    """A predicate for `conditions` over the named fields (keys lower-case); QueryError for anything else."""
    if text is None or not text.strip():
        return lambda _: True
    tokens = _tokens(text)
    clauses: list[tuple[Getter, str, Any, str]] = []
    index = 0
    while True:
        if index + 3 > len(tokens):
            raise QueryError(f"conditions must be field=value clauses joined by and: {text!r} is incomplete")
        (kind, name), (op_kind, op), (value_kind, value_text) = tokens[index : index + 3]
        if kind != "word":
            raise QueryError(f"conditions: expected a field name, found {name}")
        if name.casefold() in _UNSUPPORTED_WORDS:
            raise QueryError(f"conditions: '{name}' is not supported by the simulator")
        getter = fields.get(name.casefold())
        if getter is None:
            known = ", ".join(sorted(fields))
            raise QueryError(f"conditions: unknown field '{name}' (the simulator knows {known})")
        if op_kind == "word" and op.casefold() in _UNSUPPORTED_WORDS:
            raise QueryError(f"conditions: the operator '{op}' is not supported by the simulator (only = and !=)")
        if op_kind != "op" or op not in ("=", "!="):
            raise QueryError(f"conditions: the operator '{op}' is not supported by the simulator (only = and !=)")
        clauses.append((getter, op, _value(value_kind, value_text), name))
        index += 3
        if index == len(tokens):
            break
        joiner_kind, joiner = tokens[index]
        if joiner_kind != "word" or joiner.casefold() != "and":
            raise QueryError(f"conditions: clauses are joined by 'and' only; found {joiner}")
        index += 1

    def predicate(item: Any) -> bool:
        return all(_matches(getter(item), op, wanted, name) for getter, op, wanted, name in clauses)

    return predicate


def _whole(raw: str | None, default: int, name: str, low: int) -> int:
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,9}", raw.strip()) or int(raw) < low:
        raise QueryError(f"{name} must be an integer of at least {low}")
    return int(raw)


def page(items: Sequence[T], url: URL, query: Mapping[str, str]) -> tuple[list[T], dict[str, str]]:
    """One page of `items` for the request's page/pageSize, and its Link header (empty when one page holds all)."""
    number = _whole(query.get("page"), 1, "page", 1)
    size = min(_whole(query.get("pageSize"), DEFAULT_PAGE_SIZE, "pageSize", 1), MAX_PAGE_SIZE)
    last = max(1, -(-len(items) // size))
    chunk = list(items[(number - 1) * size : number * size])
    links = []

    def link(to: int, rel: str) -> str:
        return f'<{url.include_query_params(page=to, pageSize=size)}>; rel="{rel}"'

    if number < last:
        links += [link(number + 1, "next"), link(last, "last")]
    if number > 1:
        links += [link(1, "first"), link(min(number - 1, last), "prev")]
    return chunk, ({"Link": ", ".join(links)} if links else {})

"""Turn a submitted request form into the API's body, and the API's 422 back into errors by input.

The portal checks nothing the API checks: blanks are left out (so the API says what is required),
and a value the portal cannot convert (a price that is not an amount) is sent as typed, so the API
reports it together with every other problem; only its words are replaced by better ones here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.answers import problems
from portal.pages.client.formspec import FormSpec, Group, Input, Rows, dom_id

_INTEGER = re.compile(r"^[+-]?\d{1,15}$")
_AMOUNT = re.compile(r"^\d{1,12}(?:\.\d{1,2})?$")
MONEY_WORDS = "Enter a price in dollars, such as 12.50."
INTEGER_WORDS = "Enter a whole number, such as 2."
REFUSED = "The request was refused."


@dataclass
class Built:
    """A form's API body, what the person typed, and how API list indexes map back to the form."""

    body: dict[str, Any]
    values: dict[str, str]
    row_maps: dict[str, list[int]] = field(default_factory=dict)  # rows name -> form row of each sent item
    line_maps: dict[str, list[int]] = field(default_factory=dict)  # input name -> 1-based line of each sent item
    local: dict[str, str] = field(default_factory=dict)  # input name -> words for what the portal could not convert


@dataclass(frozen=True)
class Problem:
    """One error to show: the input it belongs to (None: only in the summary), its label and words."""

    name: str | None
    label: str
    words: str

    @property
    def anchor(self) -> str | None:
        """The fragment id the summary links to."""
        return dom_id(self.name) if self.name else None


@dataclass
class Placed:
    """A 422 laid out on the form: errors by input name, errors with no input, and all of them in order."""

    by_name: dict[str, list[str]] = field(default_factory=dict)
    unplaced: list[Problem] = field(default_factory=list)
    summary: list[Problem] = field(default_factory=list)


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts, creating them on the way."""
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _convert(item: Input, raw: str, local: dict[str, str]) -> Any:
    """A typed value for the API; unconvertible text goes as typed so the API reports it with the rest."""
    if item.kind == "number":
        if _INTEGER.match(raw):
            return int(raw)
        local[item.name] = INTEGER_WORDS
        return raw
    if item.kind == "money":
        amount = raw.replace("$", "").replace(",", "").strip()
        if _AMOUNT.match(amount):
            return int(Decimal(amount) * 100)
        local[item.name] = MONEY_WORDS
        return raw
    return raw


def _api_leaf(item: Input) -> str:
    return item.api or item.name.rsplit(".", 1)[-1]


def build(spec: FormSpec, form: Mapping[str, Any]) -> Built:
    """The API body for `spec` from the submitted `form`, with the typed values kept for a re-render."""
    built = Built(body={"type": spec.type}, values={})
    for section in spec.sections:
        if isinstance(section, Rows):
            _build_rows(section, form, built)
        else:
            _build_group(section, form, built)
    return built


def _text(form: Mapping[str, Any], name: str, *, keep_lines: bool = False) -> str:
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    return text.rstrip() if keep_lines else text.strip()


def _build_group(section: Group, form: Mapping[str, Any], built: Built) -> None:
    if section.name:
        # A group left blank is still sent, empty, so the API names each missing field in it.
        _put(built.body, section.name, {})
    for item in section.inputs:
        raw = _text(form, item.name, keep_lines=item.kind == "lines")
        built.values[item.name] = raw
        if item.kind == "lines":
            numbered = [(n, line.strip()) for n, line in enumerate(raw.splitlines(), start=1) if line.strip()]
            built.line_maps[item.name] = [n for n, _ in numbered]
            _put(built.body, item.api or item.name, [line for _, line in numbered])
        elif raw:
            _put(built.body, item.api or item.name, _convert(item, raw, built.local))


def _build_rows(section: Rows, form: Mapping[str, Any], built: Built) -> None:
    sent: list[dict[str, Any]] = []
    rows: list[int] = []
    for index in range(section.count):
        inputs = section.row(index)
        typed = {item.name: _text(form, item.name) for item in inputs}
        built.values.update(typed)
        if not any(typed.values()):
            continue  # an empty row is not an item
        rows.append(index)
        sent.append({_api_leaf(i): _convert(i, typed[i.name], built.local) for i in inputs if typed[i.name]})
    built.row_maps[section.name] = rows
    if not rows:
        # Better words than the validator's for a list left empty (used only if the API refuses it).
        built.local[section.name] = f"Fill in at least one {section.row_label.lower()}."
    _put(built.body, section.name, sent)


def plain(words: str, path: str) -> str:
    """The API's detail without its leading `path: `, as a sentence."""
    text = (words or "").strip()
    if path and text.startswith(f"{path}: "):
        text = text[len(path) + 2 :]
    if text in {"is required", "Field required"}:
        text = "This is required"
    if not text:
        text = "This value was not accepted"
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _locate(spec: FormSpec, built: Built, path: str) -> tuple[str | None, str]:
    """The input name an API error path belongs to (None when there is none), and a prefix for its words."""
    names = {item.name for item in spec.inputs()}
    for section in spec.sections:
        if isinstance(section, Rows) and path.startswith(f"{section.name}."):
            return _locate_row(section, built, path[len(section.name) + 1 :])
    if path in names:
        return path, ""
    head, _, tail = path.rpartition(".")
    if head in built.line_maps and tail.isdigit():
        lines = built.line_maps[head]
        number = lines[int(tail)] if int(tail) < len(lines) else int(tail) + 1
        return head, f"Line {number}: "
    groups = {section.name for section in spec.sections if section.name}
    if path in groups:
        return path, ""
    return None, ""


def _locate_row(section: Rows, built: Built, rest: str) -> tuple[str | None, str]:
    index, _, leaf = rest.partition(".")
    rows = built.row_maps.get(section.name, [])
    if not index.isdigit() or int(index) >= len(rows):
        return section.name, ""
    row = rows[int(index)]
    for column in section.columns:
        if leaf == (column.api or column.name):
            return f"{section.name}.{row}.{column.name}", ""
    return section.name, f"{section.row_label} {row + 1}: "


def place(spec: FormSpec, built: Built, errors: list[dict[str, Any]]) -> Placed:
    """Lay a 422's `errors` out on the form: next to their input, or in the summary when no input fits."""
    placed = Placed()
    for error in errors:
        path = str(error.get("field") or "body")
        name, prefix = _locate(spec, built, path)
        words = built.local.get(name or "") or plain(str(error.get("detail") or ""), path)
        words = prefix + words
        label = spec.label_of(name) if name else _summary_label(path)
        problem = Problem(name, label, words)
        if problem in placed.summary:
            continue
        placed.summary.append(problem)
        if name is None:
            placed.unplaced.append(problem)
        else:
            placed.by_name.setdefault(name, []).append(words)
    return placed


def _summary_label(path: str) -> str:
    if path in {"body", ""}:
        return "The form"
    if path.lower() == "idempotency-key":
        return "The form's submission key"
    return path


def errors_of(body: Any) -> list[dict[str, Any]]:
    """The problems of an API error body: its `errors`, else its top-level field and detail."""
    if not isinstance(body, dict):
        return [{"field": "body", "detail": REFUSED}]
    return problems(body, field="body", detail=REFUSED)

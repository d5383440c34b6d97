"""Reading the APIs' answers, the same for every area: the JSON body, the 404 page, an object or a page of a list."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from portal.errors import PageNotFound

if TYPE_CHECKING:
    from portal.api import Api, ApiClient


def not_found() -> Exception:
    """The core's 404 page, as an exception to raise."""
    return PageNotFound()


def parse_uuid(value: str) -> uuid.UUID:
    """A path id that is a UUID; anything else is the 404 page (the API would not know it either)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found() from None


def parse_id(value: str) -> str:
    """A path id that is a UUID, in its canonical text; anything else is the 404 page."""
    return str(parse_uuid(value))


def json_body(response: httpx.Response) -> Any:
    """The JSON body of an API answer, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of an API answer, or {} when it has none."""
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def problems(body: dict[str, Any], *, field: Any = None, detail: Any = None) -> list[dict[str, Any]]:
    """An error body's problems: its `errors` list, else one made of its top-level `field` and `detail`."""
    listed = body.get("errors")
    if isinstance(listed, list) and listed:
        return [problem for problem in listed if isinstance(problem, dict)]
    return [{"field": body.get("field") or field, "detail": body.get("detail") or detail}]


class ApiRefused(Exception):
    """An API answer the page did not expect; shown as a plain message rather than a crash."""

    def __init__(self, response: httpx.Response) -> None:
        detail = json_object(response).get("detail")
        super().__init__(str(detail or f"The service answered {response.status_code}."))
        self.status_code = response.status_code
        self.detail = str(detail or "")


def found(response: httpx.Response, *, missing: Collection[int] = (404,)) -> dict[str, Any]:
    """The object of a 200 answer; a `missing` status (another client's object reads as absent) is the 404 page."""
    if response.status_code in missing:
        raise not_found()
    if response.status_code != 200:
        raise ApiRefused(response)
    return json_object(response)


@dataclass(frozen=True)
class Listing:
    """One page of an API list: the answer itself, its items and the cursor of the next page."""

    response: httpx.Response
    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def ok(self) -> bool:
        """Whether the API listed anything (a 200); otherwise the items are empty."""
        return self.response.status_code == 200


async def list_page(
    client: ApiClient, target: Api, path: str, params: dict[str, Any], *, limit: int | str, cursor: str | None
) -> Listing:
    """GET one page of a list with the given filters, page size and cursor (no cursor: the first page)."""
    query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
    response = await client.get(target, path, params=query)
    body = json_object(response) if response.status_code == 200 else {}
    cursor = body.get("next_cursor")
    return Listing(response, list(body.get("items") or []), str(cursor) if cursor else None)

"""intake's staff directory as vendor_sync and the broker read it: `GET /internal/staff/{sub}`, cached in Redis.

A view is cached at most `ttl_s` (the contract's 30 s) in the service's Redis, shared by its API
processes and dropped by its worker on `staff.changed` (`forget`). Each sub has a generation that
`forget` bumps; a view is cached with the generation read before intake was asked and served only
while that generation holds, so a read racing a change never re-caches the old view. A sub without
a staff row is cached as such (a technician who reads nothing). When intake does not answer, or
answers off-shape, the read is 503: technicians' reads fail closed, never unfiltered. Redis is only
a cache: when it fails, every read asks intake.
"""

from __future__ import annotations

import json
from typing import Final, cast
from urllib.parse import quote

import redis

from mspkit.errors import Unavailable
from mspkit.logging import get_logger
from mspkit.service_tokens import ServiceClient
from mspkit.staff import MalformedStaffView, StaffView

log = get_logger("mspkit.staff_directory")
MAX_TTL_S: Final = 30
_NO_ROW: Final = "none"


class StaffDirectory:
    """Staff views from intake for one service, with a Redis cache that `staff.changed` drops."""

    def __init__(self, *, intake: ServiceClient, redis_url: str, service: str, ttl_s: int = MAX_TTL_S) -> None:
        self._intake = intake
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = f"msp:{service}:staff"
        self._ttl_s = min(ttl_s, MAX_TTL_S)

    def _keys(self, sub: str) -> tuple[str, str]:
        key = quote(sub, safe="")
        return f"{self._prefix}:view:{key}", f"{self._prefix}:gen:{key}"

    def _ask_intake(self, sub: str) -> StaffView | None:
        body = self._intake.read_json(f"/internal/staff/{quote(sub, safe='')}")
        if body is None:
            return None
        try:
            view = StaffView.from_json(body)
        except MalformedStaffView as exc:
            raise Unavailable(f"intake's staff view is malformed ({exc})") from None
        if view.sub != sub:
            raise Unavailable("intake answered for another staff member")
        return view

    def view(self, sub: str) -> StaffView | None:
        """The staff view of `sub`, None when intake has no staff row for it; 503 when intake does not answer."""
        view_key, gen_key = self._keys(sub)
        generation = b"0"
        try:
            cached, current = cast(list[bytes | None], self._redis.mget([view_key, gen_key]))
            generation = current or b"0"
            if cached is not None:
                stored = json.loads(cached)
                if str(stored["gen"]).encode() == generation:
                    return None if stored["view"] == _NO_ROW else StaffView.from_json(stored["view"])
        except (redis.RedisError, ValueError, KeyError, TypeError) as exc:
            log.warning("staff_cache_unreadable", error=type(exc).__name__)
        view = self._ask_intake(sub)
        value = json.dumps({"gen": generation.decode(), "view": _NO_ROW if view is None else view.to_json()})
        try:
            self._redis.set(view_key, value, ex=self._ttl_s)
        except redis.RedisError as exc:
            log.warning("staff_cache_unwritable", error=type(exc).__name__)
        return view

    def forget(self, sub: str) -> None:
        """Drop `sub`'s cached view (on `staff.changed`); a read already under way cannot re-cache the old one."""
        view_key, gen_key = self._keys(sub)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(gen_key)
        pipe.expire(gen_key, 24 * 3600)
        pipe.delete(view_key)
        pipe.execute()

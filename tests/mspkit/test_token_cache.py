"""The verified-token cache: each token kept until its own exp (plus skew) or the cache's max age."""

from __future__ import annotations

from mspkit.auth import CLOCK_SKEW_S, Principal, VerifiedTokens

WALL = 1_800_000_000.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _principal(exp: object) -> Principal:
    return Principal(sub="u", role="technician", claims={"exp": exp})


def _cache(clock: Clock, **kwargs: float) -> VerifiedTokens:
    return VerifiedTokens(clock=clock, wall_clock=lambda: WALL, **kwargs)  # type: ignore[arg-type]


def test_a_token_is_served_until_its_exp_plus_skew():
    clock = Clock()
    cache = _cache(clock, max_age_s=300)
    cache.put("a", _principal(WALL + 100))
    assert cache.get("a") is not None and cache.get("a").sub == "u"
    assert cache.get("b") is None
    clock.now += 100 + CLOCK_SKEW_S - 1
    assert cache.get("a") is not None
    clock.now += 2
    assert cache.get("a") is None


def test_an_expired_token_is_never_cached():
    cache = _cache(Clock())
    cache.put("expired", _principal(WALL - CLOCK_SKEW_S - 1))
    assert cache.get("expired") is None


def test_a_numeric_string_exp_caps_the_entry_like_a_number():
    """PyJWT accepts exp "1800000100"; the cache must not treat it as a token without exp (max age)."""
    clock = Clock()
    cache = _cache(clock, max_age_s=300)
    cache.put("s", _principal(str(int(WALL) + 10)))
    clock.now += 10 + CLOCK_SKEW_S + 1
    assert cache.get("s") is None


def test_the_cache_max_age_applies_to_long_lived_tokens():
    clock = Clock()
    cache = _cache(clock, max_age_s=10)
    cache.put("a", _principal(WALL + 3600))
    clock.now += 11
    assert cache.get("a") is None


def test_the_cache_is_bounded_least_recently_used_first():
    cache = _cache(Clock(), max_size=2)
    for token in ("a", "b"):
        cache.put(token, _principal(WALL + 3600))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", _principal(WALL + 3600))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_clear_forgets_every_token():
    cache = _cache(Clock())
    cache.put("a", _principal(WALL + 3600))
    cache.clear()
    assert cache.get("a") is None

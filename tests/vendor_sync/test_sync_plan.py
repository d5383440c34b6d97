"""An account sync's plan (pure): creates, updates and deletes, and the delete threshold's edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendor_sync.sync.plan import build_plan


def zones(*names: str, zone_id: str = "z") -> dict[tuple[str, ...], dict[str, object]]:
    return {("zone", name): {"zone_id": f"{zone_id}-{name}"} for name in names}


def test_creates_updates_and_deletes_are_listed_in_a_stable_order() -> None:
    current = {**zones("a.example", "b.example"), ("zone", "gone.example"): {"zone_id": "g"}}
    desired = {**zones("a.example"), ("zone", "b.example"): {"zone_id": "moved"}, **zones("new.example")}
    plan = build_plan(current, desired)
    assert [(c.action, c.key[1]) for c in plan.changes] == [
        ("create", "new.example"),
        ("update", "b.example"),
        ("delete", "gone.example"),
    ]
    assert plan.summary() == {"create": 1, "update": 1, "delete": 1}
    update = plan.changes[1]
    assert update.before == {"zone_id": "z-b.example"} and update.after == {"zone_id": "moved"}
    assert plan.existing == 3


def test_an_unchanged_account_plans_nothing() -> None:
    current = zones(*(f"d{i}.example" for i in range(30)))
    plan = build_plan(current, dict(current))
    assert plan.changes == () and plan.summary() == {"create": 0, "update": 0, "delete": 0}
    assert not plan.exceeds_delete_threshold()


@pytest.mark.parametrize(
    ("existing", "kept", "refused"),
    [
        (40, 0, True),  # an empty answer from the vendor: 40 deletes
        (40, 29, True),  # 11 deletes, 27.5 % of 40
        (44, 33, False),  # 11 deletes, exactly 25 % of 44: not more than 25 %
        (50, 39, False),  # 11 deletes, 22 %
        (20, 10, False),  # 10 deletes, 50 %, but not more than 10 objects
        (11, 0, True),  # 11 deletes of 11
        (10, 0, False),  # 10 deletes of 10: a small account may be emptied
    ],
)
def test_the_delete_threshold_needs_both_more_than_10_objects_and_more_than_25_percent(
    existing: int, kept: int, refused: bool
) -> None:
    current = zones(*(f"d{i:03}.example" for i in range(existing)))
    desired = dict(list(current.items())[:kept])
    plan = build_plan(current, desired)
    assert plan.count("delete") == existing - kept
    assert plan.exceeds_delete_threshold() is refused


@given(
    current=st.dictionaries(st.tuples(st.just("zone"), st.text(min_size=1, max_size=5)), st.just({"v": 1})),
    desired=st.dictionaries(
        st.tuples(st.just("zone"), st.text(min_size=1, max_size=5)), st.sampled_from([{"v": 1}, {"v": 2}])
    ),
)
def test_applying_the_plan_to_the_registry_gives_the_vendors_state(current: dict, desired: dict) -> None:
    plan = build_plan(current, desired)
    result = dict(current)
    for change in plan.changes:
        if change.action == "delete":
            del result[change.key]
        else:
            result[change.key] = change.after
    assert result == desired

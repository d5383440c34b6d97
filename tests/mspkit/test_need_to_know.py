"""Need-to-know, the one pure rule every service applies: the staff view and the object's client in, yes or no out."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select
from sqlalchemy.dialects import postgresql

from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.staff import MalformedStaffView, StaffView, known_clients, need_to_know
from mspkit.tenancy import Visible, sees_client, visible

A, B = uuid.uuid4(), uuid.uuid4()
ids = st.frozensets(st.uuids(), max_size=4)


def tech(sub: str = "t", *, active: bool = True, client_ids: frozenset[uuid.UUID] | None = frozenset({A})) -> Principal:
    return Principal(sub=sub, role="technician", staff=StaffView(sub, "technician", active, client_ids))


@given(clients=ids, other=st.uuids())
def test_a_technician_sees_exactly_their_clients(clients, other):
    staff = StaffView("t", "technician", True, clients)
    for client in clients:
        assert need_to_know(staff, client)
    assert need_to_know(staff, other) == (other in clients)


@given(clients=st.one_of(st.none(), ids), client=st.uuids(), assigned=st.booleans())
def test_no_row_or_inactive_sees_nothing_even_assigned_work(clients, client, assigned):
    assert not need_to_know(None, client, assigned=assigned)
    assert not need_to_know(StaffView("t", "technician", False, clients), client, assigned=assigned)
    assert known_clients(None) == frozenset()
    assert known_clients(StaffView("t", "technician", False, clients)) == frozenset()


@given(client=st.uuids())
def test_null_client_ids_mean_every_client_and_assigned_tasks_are_seen(client):
    assert need_to_know(StaffView("t", "technician", True, None), client)
    assert need_to_know(StaffView("t", "technician", True, frozenset()), client, assigned=True)
    assert not need_to_know(StaffView("t", "technician", True, frozenset()), client)


def test_the_token_role_decides_not_the_staff_row():
    # A staff row that says admin is informational: a technician's token is still limited.
    user = Principal(sub="t", role="technician", staff=StaffView("t", "admin", True, frozenset({A})))
    assert sees_client(user, A) and not sees_client(user, B)
    assert sees_client(Principal(sub="a", role="admin"), B)
    assert not sees_client(Principal(sub="t", role="technician"), A)  # no view attached: nothing


def test_a_task_assigned_to_the_technician_is_seen_outside_their_clients():
    assert sees_client(tech(), B, assignee="t")
    assert not sees_client(tech(), B, assignee="someone-else")
    assert not sees_client(tech(active=False), A, assignee="t")


def test_client_roles_are_unchanged():
    user = Principal(sub="c", role="client_user", client_id=A)
    assert sees_client(user, A) and not sees_client(user, B, assignee="c")
    assert visible(user) == Visible(frozenset({A}))
    with pytest.raises(NotFound, match="client not found"):
        visible(user, B)


def _sql(visible_rows: Visible) -> str:
    rows = Table("rows", MetaData(), Column("client_id", Uuid), Column("assignee", Text))
    condition = visible_rows.where(rows.c.client_id, rows.c.assignee)
    query = select(rows) if condition is None else select(rows).where(condition)
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_list_conditions():
    assert visible(Principal(sub="a", role="admin")) == Visible(None)
    assert "WHERE" not in _sql(visible(Principal(sub="a", role="admin")))
    limited = visible(tech())
    assert limited == Visible(frozenset({A}), "t")
    assert str(A) in _sql(limited) and "assignee = 't'" in _sql(limited)
    # Filtering by one of their clients narrows to it alone: assigned tasks elsewhere do not leak in.
    assert visible(tech(), A) == Visible(frozenset({A}))
    with pytest.raises(NotFound, match="client not found"):
        visible(tech(), B)
    # No row, or inactive: an always-false condition, not a missing one.
    for nobody in (Principal(sub="t", role="technician"), tech(active=False)):
        assert visible(nobody) == Visible(frozenset())
        assert "false" in _sql(visible(nobody)).lower()
    assert visible(tech(client_ids=None)) == Visible(None)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"sub": "t", "role": "technician", "active": "yes", "client_ids": None},
        {"sub": "", "role": "technician", "active": True, "client_ids": None},
        {"sub": "t", "role": "root", "active": True, "client_ids": None},
        {"sub": "t", "role": "technician", "active": True, "client_ids": "all"},
        {"sub": "t", "role": "technician", "active": True, "client_ids": ["not-a-uuid"]},
    ],
)
def test_an_off_shape_staff_view_is_refused(body):
    with pytest.raises(MalformedStaffView):
        StaffView.from_json(body)


@given(clients=st.one_of(st.none(), ids), active=st.booleans())
def test_staff_view_round_trips(clients, active):
    view = StaffView("t", "technician", active, clients)
    assert StaffView.from_json(view.to_json()) == view

"""Drift becomes work: drift events raised as intake tasks (real PostgreSQL, the real intake over HTTP).

Also the refresh's side of it: the transfer lock read from RDAP statuses, its drift, and expiry warnings.
raise_tasks reads every pending event in the database (other modules' too); assertions are about this
module's own events and clients, and the event that must come first when intake is down is dated first.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import domain_row, insert_domain, make_account, make_vendor, queue_run  # noqa: E402

from mspctl.ports import free_port  # noqa: E402

pytest_plugins = ["fixtures_registry"]

MAX_ATTEMPTS = 3
# One expiry for every refresh of a test domain (outside the warning window), so it makes no drift.
FAR_EXPIRY = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)


# ---- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings():
    """vendor_sync's settings with 3 attempts and small batches (the keyset crosses batch boundaries)."""
    from vendor_sync.settings import get_settings

    return get_settings().model_copy(
        update={"drift_task_max_attempts": MAX_ATTEMPTS, "drift_task_batch_size": 2, "drift_task_max_batches": 500}
    )


@pytest.fixture(scope="module")
def intake(intake_live):
    """vendor_sync's writer of system tasks, pointed at the live intake (as svc:vendor_sync)."""
    from mspkit.service_tokens import token_source
    from vendor_sync.intake_client import IntakeTasks
    from vendor_sync.settings import get_settings

    return IntakeTasks(base_url=intake_live, tokens=token_source(get_settings()))


@pytest.fixture(scope="module")
def intake_admin(mint_token):
    """Headers of an intake admin (to read intake's tasks)."""
    return {"Authorization": f"Bearer {mint_token('admin', 'vs-drift-admin', None, aud=['intake'])}"}


@pytest.fixture
def raise_now(vs_engine, intake, settings):
    """Run raise_tasks once against the live intake (or another poster)."""
    from vendor_sync.sync.drift_tasks import raise_tasks

    def _run(poster: Any = None, **overrides: Any):
        run_settings = settings.model_copy(update=overrides) if overrides else settings
        return raise_tasks(vs_engine, poster or intake, run_settings)

    return _run


def intake_tasks(intake_live: str, headers: dict[str, str], client_id: uuid.UUID, **params: str) -> list[dict]:
    """Every task of a client at intake (GET /v1/tasks as admin)."""
    response = httpx.get(
        f"{intake_live}/v1/tasks", params={"client_id": str(client_id), "limit": "200", **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def add_event(
    engine: Any,
    domain_id: uuid.UUID,
    *,
    kind: str = "change",
    field: str = "nameservers",
    old: Any = None,
    new: Any = None,
    at: datetime | None = None,
    account_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert a drift event as a sync would (the domain's client); returns its id."""
    event_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendor_sync.drift_events"
                " (id, client_id, domain_id, vendor_account_id, kind, field, old, new, detected_at)"
                " SELECT :id, client_id, id, :acct, :kind, :field, CAST(:old AS jsonb), CAST(:new AS jsonb), :at"
                " FROM vendor_sync.domains WHERE id = :d"
            ),
            {
                "id": event_id,
                "acct": account_id,
                "kind": kind,
                "field": field,
                "old": json.dumps(old),
                "new": json.dumps(new),
                "at": at or datetime.now(UTC),
                "d": domain_id,
            },
        )
    return event_id


def event_row(engine: Any, event_id: uuid.UUID) -> dict[str, Any]:
    """The drift event's row."""
    with engine.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM vendor_sync.drift_events WHERE id = :id"), {"id": event_id})
            .mappings()
            .one()
        )


def new_domain(engine: Any, client_id: uuid.UUID, **fields: Any) -> tuple[uuid.UUID, str]:
    """A fresh domain of the client; returns (id, name)."""
    name = f"drift-{uuid.uuid4().hex[:10]}.example"
    return insert_domain(engine, name, client_id=client_id, **fields), name


# ---- drift_review ----------------------------------------------------------------------------------


def test_a_nameserver_change_becomes_exactly_one_drift_review_task(
    vs_api, hdr, vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    other_client = new_client()
    admin = hdr("admin")
    registrar = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="registrar")["id"])
    dns_host = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="dns_host")["id"])
    foreign = make_account(vs_api, admin, other_client, make_vendor(vs_api, admin, kind="dns_host")["id"])
    domain_id, name = new_domain(
        vs_engine, client, registrar_account_id=registrar["id"], dns_host_account_id=foreign["id"]
    )
    old, new = ["ns1.old.example", "ns2.old.example"], ["ns1.new.example", "ns2.new.example"]
    event_id = add_event(vs_engine, domain_id, old=old, new=new, account_id=uuid.UUID(registrar["id"]))

    counts = raise_now()
    assert counts.created >= 1 and counts.unavailable == 0

    tasks = intake_tasks(intake_live, intake_admin, client)
    assert len(tasks) == 1
    task = tasks[0]
    assert task["type"] == "drift_review" and task["status"] == "new" and task["request_id"] is None
    assert task["title"] == (
        f"Nameservers of {name} changed: ns1.old.example, ns2.old.example → ns1.new.example, ns2.new.example"
    )
    # The registrar account; the DNS host named on the domain belongs to another client and is left out.
    assert task["scope"]["vendor_account_ids"] == [registrar["id"]]
    assert task["scope"]["credential_ids"] == []
    row = event_row(vs_engine, event_id)
    assert (str(row["task_id"]), row["task_attempts"]) == (task["id"], 1)
    assert dns_host["id"] not in task["scope"]["vendor_account_ids"]

    # A second run finds nothing to do; a lost answer (task_id back to NULL) gets the same task again.
    raise_now()
    with vs_engine.begin() as conn:
        conn.execute(text("UPDATE vendor_sync.drift_events SET task_id = NULL WHERE id = :id"), {"id": event_id})
    counts = raise_now()
    assert counts.existing >= 1
    assert str(event_row(vs_engine, event_id)["task_id"]) == task["id"]
    # A second event for the same change (another source saw it too) lands on the same task.
    twin = add_event(vs_engine, domain_id, old=old, new=new)
    raise_now()
    assert str(event_row(vs_engine, twin)["task_id"]) == task["id"]
    assert [t["id"] for t in intake_tasks(intake_live, intake_admin, client)] == [task["id"]]


def test_the_same_change_made_again_after_a_revert_is_new_work(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    t0 = datetime.now(UTC) - timedelta(hours=3)
    first = add_event(vs_engine, domain_id, field="transfer_lock", old=True, new=False, at=t0)
    back = add_event(vs_engine, domain_id, field="transfer_lock", old=False, new=True, at=t0 + timedelta(hours=1))
    again = add_event(vs_engine, domain_id, field="transfer_lock", old=True, new=False, at=t0 + timedelta(hours=2))
    raise_now()
    ids = [str(event_row(vs_engine, e)["task_id"]) for e in (first, back, again)]
    assert len(set(ids)) == 3
    titles = {t["id"]: t["title"] for t in intake_tasks(intake_live, intake_admin, client, type="drift_review")}
    assert [titles[i] for i in ids] == [
        f"Transfer lock of {name} turned off",
        f"Transfer lock of {name} turned on",
        f"Transfer lock of {name} turned off",
    ]


def test_registrar_and_mx_titles_say_what_changed_and_mx_names_the_dns_host(
    vs_api, hdr, vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    admin = hdr("admin")
    registrar = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="registrar")["id"])
    dns_host = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="dns_host")["id"])
    domain_id, name = new_domain(
        vs_engine, client, registrar_account_id=registrar["id"], dns_host_account_id=dns_host["id"]
    )
    mx = add_event(
        vs_engine,
        domain_id,
        field="mx",
        old=["10 mx.a.example"],
        new=["10 mx1.mailchannels.net", "20 mx2.mailchannels.net"],
    )
    reg = add_event(vs_engine, domain_id, field="registrar", old="Old Registrar, Inc.", new="New Registrar LLC")
    raise_now()
    tasks = {t["id"]: t for t in intake_tasks(intake_live, intake_admin, client)}
    mx_task = tasks[str(event_row(vs_engine, mx)["task_id"])]
    reg_task = tasks[str(event_row(vs_engine, reg)["task_id"])]
    assert (
        mx_task["title"] == f"MX of {name} changed: 10 mx.a.example → 10 mx1.mailchannels.net, 20 mx2.mailchannels.net"
    )
    assert mx_task["scope"]["vendor_account_ids"] == [dns_host["id"]]
    assert reg_task["title"] == f"Registrar of {name} changed: Old Registrar, Inc. → New Registrar LLC"
    assert reg_task["scope"]["vendor_account_ids"] == [registrar["id"]]


def test_a_long_change_is_titled_within_200_characters_and_intake_takes_it(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    old = [f"ns{i}.a-rather-long-nameserver-host-name.example" for i in range(12)]
    new = [f"ns{i}.another-long-nameserver-host-name.example" for i in range(12)]
    event_id = add_event(vs_engine, domain_id, old=old, new=new)
    raise_now()
    (task,) = intake_tasks(intake_live, intake_admin, client)
    assert str(event_row(vs_engine, event_id)["task_id"]) == task["id"]
    assert len(task["title"]) <= 200 and task["title"].endswith("…")
    assert task["title"].startswith(f"Nameservers of {name} changed: ns0.a-rather")


def test_other_fields_make_no_task(vs_engine, new_client, intake_live, intake_admin, raise_now):
    client = new_client()
    domain_id, _ = new_domain(vs_engine, client)
    quiet = [
        add_event(vs_engine, domain_id, field="statuses", old=["active"], new=["client hold"]),
        add_event(vs_engine, domain_id, field="expires_at", old="2026-01-01T00:00:00Z", new="2027-01-01T00:00:00Z"),
        add_event(vs_engine, domain_id, field="dnssec", old=True, new=False),
    ]
    raise_now()
    assert intake_tasks(intake_live, intake_admin, client) == []
    for event_id in quiet:
        row = event_row(vs_engine, event_id)
        assert (row["task_id"], row["task_attempts"]) == (None, 0)


# ---- renewal ----------------------------------------------------------------------------------------


def test_expiry_warnings_make_one_renewal_task_per_expiry_date(
    vs_api, hdr, vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    admin = hdr("admin")
    registrar = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="registrar")["id"])
    domain_id, name = new_domain(vs_engine, client, registrar_account_id=registrar["id"])
    warn = {"kind": "expiry_warning", "field": "expires_at", "old": None}
    # The same date from two sources (registry and registrar, other times of day), and a later date.
    a = add_event(vs_engine, domain_id, new="2026-12-16T04:05:06Z", **warn)
    b = add_event(vs_engine, domain_id, new="2026-12-16T00:00:00Z", **warn)
    c = add_event(vs_engine, domain_id, new="2027-12-16T04:05:06Z", **warn)
    raise_now()
    raise_now()
    tasks = intake_tasks(intake_live, intake_admin, client, type="renewal")
    assert sorted(t["title"] for t in tasks) == [
        f"{name} expires on 2026-12-16: renew it",
        f"{name} expires on 2027-12-16: renew it",
    ]
    by_title = {t["title"]: t for t in tasks}
    first = by_title[f"{name} expires on 2026-12-16: renew it"]
    assert str(event_row(vs_engine, a)["task_id"]) == str(event_row(vs_engine, b)["task_id"]) == first["id"]
    assert str(event_row(vs_engine, c)["task_id"]) != first["id"]
    assert all(t["scope"]["vendor_account_ids"] == [registrar["id"]] for t in tasks)
    assert all(t["status"] == "new" for t in tasks)


# ---- intake down, intake refusing, concurrent workers ---------------------------------------------


def test_intake_down_leaves_the_event_for_a_later_run_and_never_retires_it(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    from mspkit.service_tokens import token_source
    from vendor_sync.intake_client import IntakeTasks
    from vendor_sync.settings import get_settings

    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    # Dated first of all pending events, so a run that stops at its first failure stops at this one.
    event_id = add_event(vs_engine, domain_id, field="registrar", old="A", new="B", at=datetime(1990, 1, 1, tzinfo=UTC))
    before = event_row(vs_engine, event_id)
    down = IntakeTasks(base_url=f"http://127.0.0.1:{free_port()}", tokens=token_source(get_settings()), timeout_s=1)
    for _ in range(MAX_ATTEMPTS + 2):
        counts = raise_now(down)
        assert (counts.unavailable, counts.created, counts.existing, counts.refused) == (1, 0, 0, 0)
    after = event_row(vs_engine, event_id)
    # Counted (up to the last-but-one attempt), otherwise untouched, and still pending.
    assert after["task_attempts"] == MAX_ATTEMPTS - 1
    assert {k: v for k, v in after.items() if k != "task_attempts"} == {
        k: v for k, v in before.items() if k != "task_attempts"
    }
    assert intake_tasks(intake_live, intake_admin, client) == []

    raise_now()
    (task,) = intake_tasks(intake_live, intake_admin, client)
    assert task["title"] == f"Registrar of {name} changed: A → B"
    row = event_row(vs_engine, event_id)
    assert (str(row["task_id"]), row["task_attempts"]) == (task["id"], MAX_ATTEMPTS)


def test_a_422_from_intake_is_counted_and_dead_lettered_after_the_last_attempt(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    domain_id, _ = new_domain(vs_engine, client)
    event_id = add_event(vs_engine, domain_id, field="transfer_lock", old=True, new=False)
    refused = {"error": "validation_error", "detail": "title: echoed input", "field": "title"}
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{intake_live}/internal/tasks").respond(422, json=refused)
        mock.route().pass_through()  # the token endpoint
        for attempt in range(1, MAX_ATTEMPTS + 2):
            raise_now()
            row = event_row(vs_engine, event_id)
            assert row["task_id"] is None
            assert row["task_attempts"] == min(attempt, MAX_ATTEMPTS)
        mine = [c for c in route.calls if json.loads(c.request.content)["client_id"] == str(client)]
    # Tried exactly MAX_ATTEMPTS times, then no more: parked with a dead letter.
    assert len(mine) == MAX_ATTEMPTS
    with vs_engine.connect() as conn:
        letters = conn.execute(
            text("SELECT task_name, attempts, error FROM vendor_sync.dead_letters WHERE job_key = :k"),
            {"k": f"vendor_sync.drift.raise_tasks:{event_id}"},
        ).all()
    assert [tuple(r) for r in letters] == [("vendor_sync.drift.raise_tasks", MAX_ATTEMPTS, "http_422:validation_error")]
    # The real intake would take it now, but a parked event is not read again.
    raise_now()
    assert event_row(vs_engine, event_id)["task_id"] is None
    assert intake_tasks(intake_live, intake_admin, client) == []


def test_an_inactive_clients_event_is_refused_by_intake_and_counted(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    domain_id, _ = new_domain(vs_engine, client)
    patched = httpx.patch(f"{intake_live}/v1/clients/{client}", json={"status": "inactive"}, headers=intake_admin)
    assert patched.status_code == 200, patched.text
    event_id = add_event(vs_engine, domain_id, field="registrar", old="A", new="B")
    counts = raise_now()
    assert counts.refused >= 1
    row = event_row(vs_engine, event_id)
    assert (row["task_id"], row["task_attempts"]) == (None, 1)
    assert intake_tasks(intake_live, intake_admin, client) == []


def test_an_event_another_worker_holds_is_skipped_not_posted_twice(
    vs_engine, new_client, intake_live, intake_admin, raise_now
):
    client = new_client()
    domain_id, _ = new_domain(vs_engine, client)
    event_id = add_event(vs_engine, domain_id, field="registrar", old="A", new="B")
    with vs_engine.connect() as holder, holder.begin():
        # What a worker posting this event holds.
        holder.execute(
            text("SELECT id FROM vendor_sync.drift_events WHERE id = :id FOR UPDATE"), {"id": event_id}
        ).one()
        counts = raise_now()
        assert counts.skipped >= 1
        row = event_row(vs_engine, event_id)
        assert (row["task_id"], row["task_attempts"]) == (None, 0)
    raise_now()
    assert str(event_row(vs_engine, event_id)["task_id"]) == intake_tasks(intake_live, intake_admin, client)[0]["id"]


# ---- pieces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "lock"),
    [
        (("client transfer prohibited", "active"), True),
        (("server transfer prohibited",), True),
        (("transfer prohibited", "locked"), True),
        (("clienttransferprohibited",), True),
        (("client update prohibited", "server delete prohibited"), False),
        (("active",), False),
        ((), None),
    ],
)
def test_the_transfer_lock_is_read_from_rdap_statuses(statuses, lock):
    from vendor_sync.sync.refresh import transfer_lock

    assert transfer_lock(statuses) is lock


def test_dedupe_keys_and_titles_fit_intake():
    from vendor_sync.sync.drift_tasks import dedupe_key, task_title

    domain_id = uuid.uuid4()
    change = {"kind": "change", "domain_id": domain_id, "field": "nameservers", "old": ["b", "a"], "new": ["c"]}
    key = dedupe_key(change)
    assert key.startswith(f"drift:{domain_id}:nameservers:") and len(key) <= 200
    # Host lists are sets; the change before this one makes a recurrence new work.
    assert dedupe_key({**change, "old": ["a", "b"]}) == key
    assert dedupe_key({**change, "previous_id": uuid.uuid4()}) != key
    assert dedupe_key({"kind": "expiry_warning", "domain_id": domain_id, "new": "2026-12-16T10:00:00Z"}) == (
        f"renewal:{domain_id}:2026-12-16"
    )
    domain = {"name": "xn--bcher-kva.example", "unicode_name": "bücher.example"}
    title = task_title({"kind": "change", "field": "registrar", "old": "A\x00\nB", "new": "C" * 400}, domain)
    assert len(title) == 200 and "\x00" not in title and "\n" not in title
    assert title.startswith("Registrar of bücher.example (xn--bcher-kva.example) changed: A  B → CCC")


# ---- the refresh's side ------------------------------------------------------------------------------


def _record(name: str, **fields: Any):
    from vendor_sync.adapters.base import DomainRecord

    values = {
        "registrar": "Example Registrar, Inc.",
        "expires_at": FAR_EXPIRY,
        "statuses": ("client transfer prohibited", "active"),
        "nameservers": ("ns1.example.net", "ns2.example.net"),
        **fields,
    }
    return DomainRecord(name=name, unicode_name=name, **values)


@pytest.fixture
def refresh_with(vs_engine):
    """Run one refresh of the domain in-process, its lookup answering `record`."""
    from vendor_sync.settings import get_settings
    from vendor_sync.sync import refresh as refresh_job

    def _refresh(domain_id: uuid.UUID, record: Any):
        run_id = queue_run(vs_engine, domain_id, publish=False)
        outcome = refresh_job.refresh(run_id, engine=vs_engine, lookup=lambda _name: record, settings=get_settings())
        assert outcome.status == "succeeded", outcome
        return outcome

    return _refresh


def _drift(engine: Any, domain_id: uuid.UUID) -> list[tuple[str, str, Any, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, field, old, new FROM vendor_sync.drift_events"
                " WHERE domain_id = :d ORDER BY detected_at, id"
            ),
            {"d": domain_id},
        ).all()
    return [tuple(r) for r in rows]


def test_the_refresh_keeps_the_transfer_lock_and_a_change_from_a_known_value_is_drift_and_work(
    vs_engine, new_client, intake_live, intake_admin, refresh_with, raise_now
):
    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    first = refresh_with(domain_id, _record(name))
    assert domain_row(vs_engine, domain_id)["transfer_lock"] is True
    assert (first.drift, _drift(vs_engine, domain_id)) == (0, [])  # first fill: no drift

    second = refresh_with(domain_id, _record(name, statuses=("active",)))
    assert domain_row(vs_engine, domain_id)["transfer_lock"] is False
    assert second.drift == 2
    assert sorted(_drift(vs_engine, domain_id)) == [
        ("change", "statuses", ["active", "client transfer prohibited"], ["active"]),
        ("change", "transfer_lock", True, False),
    ]

    # No statuses at all (redacted): the lock is unknown, the last known one stays, and is no drift.
    refresh_with(domain_id, _record(name, statuses=()))
    assert domain_row(vs_engine, domain_id)["transfer_lock"] is False
    assert [d for d in _drift(vs_engine, domain_id) if d[1] == "transfer_lock"] == [
        ("change", "transfer_lock", True, False)
    ]

    raise_now()
    (task,) = intake_tasks(intake_live, intake_admin, client)
    assert (task["type"], task["title"]) == ("drift_review", f"Transfer lock of {name} turned off")


def test_a_domain_linked_to_a_registrar_account_keeps_that_accounts_lock(
    vs_api, hdr, vs_engine, new_client, refresh_with
):
    client = new_client()
    admin = hdr("admin")
    registrar = make_account(vs_api, admin, client, make_vendor(vs_api, admin, kind="registrar")["id"])
    domain_id, name = new_domain(vs_engine, client, registrar_account_id=registrar["id"], transfer_lock=False)
    # The registry's server lock is not the registrar's flag: the account sync owns this domain's lock.
    refresh_with(domain_id, _record(name, statuses=("server transfer prohibited",)))
    assert domain_row(vs_engine, domain_id)["transfer_lock"] is False
    assert [d for d in _drift(vs_engine, domain_id) if d[1] == "transfer_lock"] == []


def test_the_refresh_warns_once_per_expiry_date_and_the_warning_becomes_a_renewal(
    vs_engine, new_client, intake_live, intake_admin, refresh_with, raise_now
):
    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    day = (datetime.now(UTC) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = refresh_with(domain_id, _record(name, expires_at=day))
    assert first.drift == 1
    # The same date at another time of day is the same expiry date: no second warning.
    again = refresh_with(domain_id, _record(name, expires_at=day + timedelta(hours=12)))
    assert again.drift == 1  # the expires_at change itself, not a warning
    warnings = [d for d in _drift(vs_engine, domain_id) if d[0] == "expiry_warning"]
    assert warnings == [("expiry_warning", "expires_at", None, day.isoformat().replace("+00:00", "Z"))]

    raise_now()
    (task,) = intake_tasks(intake_live, intake_admin, client)
    assert (task["type"], task["title"]) == ("renewal", f"{name} expires on {day:%Y-%m-%d}: renew it")


def test_a_refresh_that_records_drift_publishes_raise_tasks(vs_engine, new_client, monkeypatch):
    from vendor_sync import jobs

    client = new_client()
    domain_id, name = new_domain(vs_engine, client)
    answers = iter([_record(name), _record(name, nameservers=("ns1.other.example",))])
    published: list[bool] = []

    class Lookup:
        def lookup_domain(self, _name: str):
            return next(answers)

    monkeypatch.setattr(jobs, "get_rdap_client", Lookup)
    monkeypatch.setattr(jobs, "publish_raise_tasks", lambda: published.append(True) or True)
    assert jobs.refresh_domain(str(queue_run(vs_engine, domain_id, publish=False))) == "succeeded"
    assert published == []  # first fill: no drift
    assert jobs.refresh_domain(str(queue_run(vs_engine, domain_id, publish=False))) == "succeeded"
    assert published == [True]

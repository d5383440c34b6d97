"""Drift becomes work: each drift event that needs a person is raised once as an intake task.

- A change of registrar, nameservers, MX or transfer lock becomes a `drift_review` task; an
  `expiry_warning` becomes a `renewal` task. Other changes (statuses, expiry dates, DNSSEC) are
  recorded but make no task.
- Pending events are read in bounded batches; each is then posted in its own transaction holding its
  row `FOR UPDATE SKIP LOCKED`: two workers never post the same event at once, and an event's task id
  is committed as soon as intake answers.
- The `dedupe_key` makes intake answer a repeated post with the first task (200), so a lost answer,
  a redelivered job or a second event for the same change never makes a second task. A change is
  keyed by domain, field, old -> new and the change before it on that field (so the same change made
  again after a revert is new work); a renewal by domain and expiry date.
- Intake down (unreachable, 5xx, 429, our token refused) stops the run and leaves the event for the
  next one; it counts in `task_attempts` but never uses an event's last attempt. A refusal (another
  4xx) is about the event itself: after `drift_task_max_attempts` attempts it is dead-lettered and no
  longer read, so a poison event never blocks the queue.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import redis
from kombu.exceptions import KombuError
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, or_, select, tuple_, update

from mspkit.logging import get_logger
from vendor_sync.celery_app import app as celery_app
from vendor_sync.db import KIT
from vendor_sync.domains.models import Domain, DriftEvent
from vendor_sync.intake_client import CreatedTask, IntakeRefused, IntakeUnavailable, SystemTask
from vendor_sync.registry.models import VendorAccount
from vendor_sync.settings import Settings

RAISE_TASK = "vendor_sync.drift.raise_tasks"
QUEUE = "vendor_sync"
REVIEW_FIELDS = ("registrar", "nameservers", "mx", "transfer_lock")
TITLE_MAX = 200
# Which of the domain's accounts a task about a field needs in its scope.
_ACCOUNTS_FOR = {
    "registrar": ("registrar_account_id",),
    "nameservers": ("registrar_account_id", "dns_host_account_id"),
    "transfer_lock": ("registrar_account_id",),
    "mx": ("dns_host_account_id",),
    "expires_at": ("registrar_account_id",),
}
_LABELS = {"registrar": "Registrar", "nameservers": "Nameservers", "mx": "MX", "transfer_lock": "Transfer lock"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
log = get_logger("vendor_sync.drift_tasks")

DRIFT = DriftEvent.__table__
DOMAINS = Domain.__table__
ACCOUNTS = VendorAccount.__table__


class TaskPoster(Protocol):
    """What raising needs of intake (`vendor_sync.intake_client.IntakeTasks`)."""

    def create_system_task(self, task: SystemTask) -> CreatedTask:
        """Create the task or return the one with the same dedupe_key; raise IntakeUnavailable or IntakeRefused."""
        ...


@dataclass
class RaiseCounts:
    """What one run did: tasks created, found again by dedupe_key, refusals, dead letters, skipped locks."""

    created: int = 0
    existing: int = 0
    refused: int = 0
    dead_lettered: int = 0
    unavailable: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready counts (the Celery task's result, and a log line)."""
        return asdict(self)


def raisable() -> ColumnElement[bool]:
    """Drift events that become tasks: reviewed changes and expiry warnings, on a domain."""
    return and_(
        DRIFT.c.domain_id.is_not(None),
        or_(
            and_(DRIFT.c.kind == "change", DRIFT.c.field.in_(REVIEW_FIELDS)),
            DRIFT.c.kind == "expiry_warning",
        ),
    )


def _pending(settings: Settings) -> ColumnElement[bool]:
    return and_(DRIFT.c.task_id.is_(None), DRIFT.c.task_attempts < settings.drift_task_max_attempts, raisable())


def _previous_change() -> Any:
    """The id of the last earlier change of the same domain and field that was another change than this one."""
    prev = DRIFT.alias("prev")
    return (
        select(prev.c.id)
        .where(
            prev.c.domain_id == DRIFT.c.domain_id,
            prev.c.kind == "change",
            prev.c.field == DRIFT.c.field,
            tuple_(prev.c.detected_at, prev.c.id) < tuple_(DRIFT.c.detected_at, DRIFT.c.id),
            or_(prev.c.old.is_distinct_from(DRIFT.c.old), prev.c.new.is_distinct_from(DRIFT.c.new)),
        )
        .order_by(prev.c.detected_at.desc(), prev.c.id.desc())
        .limit(1)
        .correlate(DRIFT)
        .scalar_subquery()
    )


def _canonical(field: str, value: Any) -> Any:
    # Host lists are sets: their order must not make two keys of one change.
    if field in ("nameservers", "mx") and isinstance(value, list):
        return sorted(str(v) for v in value)
    return value


def dedupe_key(event: dict[str, Any]) -> str:
    """intake's dedupe_key of an event's task: `drift:{domain}:{field}:{digest}` or `renewal:{domain}:{date}`."""
    if event["kind"] == "expiry_warning":
        return f"renewal:{event['domain_id']}:{str(event['new'])[:10]}"
    previous = event.get("previous_id")
    change = [
        _canonical(event["field"], event["old"]),
        _canonical(event["field"], event["new"]),
        str(previous) if previous else None,
    ]
    canonical = json.dumps(change, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"drift:{event['domain_id']}:{event['field']}:{digest}"


def _clean(text: str) -> str:
    # Vendor data in a title: no control characters (intake refuses NUL), one line.
    return "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)


def _shown(field: str, value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _domain_label(domain: dict[str, Any]) -> str:
    name, shown = str(domain["name"]), str(domain.get("unicode_name") or domain["name"])
    return name if shown == name else f"{shown} ({name})"


def truncate(text: str, limit: int = TITLE_MAX) -> str:
    """At most `limit` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def task_title(event: dict[str, Any], domain: dict[str, Any]) -> str:
    """What changed from what to what, naming the domain (at most 200 characters)."""
    label = _domain_label(domain)
    field, old, new = event["field"], event["old"], event["new"]
    if event["kind"] == "expiry_warning":
        text = f"{label} expires on {str(new)[:10]}: renew it"
    elif field == "transfer_lock" and isinstance(old, bool) and isinstance(new, bool):
        text = f"Transfer lock of {label} turned {'on' if new else 'off'}"
    else:
        what = _LABELS.get(field, field)
        text = f"{what} of {label} changed: {_shown(field, old)} → {_shown(field, new)}"
    return truncate(_clean(text))


def _task_type(event: dict[str, Any]) -> str:
    return "renewal" if event["kind"] == "expiry_warning" else "drift_review"


def _account_ids(conn: Connection, event: dict[str, Any], domain: dict[str, Any]) -> tuple[uuid.UUID, ...]:
    """The domain's accounts this task is about (and the detecting account), only those of the event's client."""
    wanted = [domain[column] for column in _ACCOUNTS_FOR.get(event["field"], ())]
    wanted.append(event["vendor_account_id"])
    ids = list(dict.fromkeys(i for i in wanted if i is not None))
    if not ids:
        return ()
    theirs = set(
        conn.execute(
            select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(ids), ACCOUNTS.c.client_id == event["client_id"])
        ).scalars()
    )
    return tuple(i for i in ids if i in theirs)


def _next_batch(conn: Connection, after: tuple[Any, Any] | None, settings: Settings) -> list[dict[str, Any]]:
    """The next pending events after the keyset position, oldest first, with what their tasks need."""
    query = (
        select(
            DRIFT.c.id,
            DRIFT.c.client_id,
            DRIFT.c.domain_id,
            DRIFT.c.vendor_account_id,
            DRIFT.c.kind,
            DRIFT.c.field,
            DRIFT.c.old,
            DRIFT.c.new,
            DRIFT.c.detected_at,
            DRIFT.c.task_attempts,
            _previous_change().label("previous_id"),
            DOMAINS.c.name,
            DOMAINS.c.unicode_name,
            DOMAINS.c.registrar_account_id,
            DOMAINS.c.dns_host_account_id,
        )
        .join(DOMAINS, DOMAINS.c.id == DRIFT.c.domain_id)
        .where(_pending(settings))
        .order_by(DRIFT.c.detected_at, DRIFT.c.id)
        .limit(settings.drift_task_batch_size)
    )
    if after is not None:
        query = query.where(tuple_(DRIFT.c.detected_at, DRIFT.c.id) > tuple_(*after))
    return [dict(row) for row in conn.execute(query).mappings()]


def _lock(conn: Connection, event_id: uuid.UUID, settings: Settings) -> int | None:
    """Lock the event if it is still pending and no other worker holds it; its attempts so far."""
    return conn.execute(
        select(DRIFT.c.task_attempts)
        .where(DRIFT.c.id == event_id, _pending(settings))
        .with_for_update(skip_locked=True)
    ).scalar()


def _task_for(conn: Connection, event: dict[str, Any]) -> SystemTask | None:
    if event["kind"] == "expiry_warning" and not (isinstance(event["new"], str) and _DATE.match(event["new"])):
        return None
    return SystemTask(
        client_id=event["client_id"],
        type=_task_type(event),
        title=task_title(event, event),
        dedupe_key=dedupe_key(event),
        vendor_account_ids=_account_ids(conn, event, event),
    )


def _dead_letter(conn: Connection, event: dict[str, Any], *, attempts: int, error: str) -> None:
    conn.execute(
        KIT.dead_letters.insert().values(
            job_key=f"{RAISE_TASK}:{event['id']}",
            task_name=RAISE_TASK,
            args=[str(event["id"])],
            attempts=attempts,
            error=error[:500],
        )
    )


def _raise_one(
    conn: Connection, event: dict[str, Any], intake: TaskPoster, settings: Settings, counts: RaiseCounts
) -> bool:
    """Post one locked event and record the answer in its transaction; False when intake is down."""
    event_id, attempts = event["id"], event["task_attempts"] + 1
    task = _task_for(conn, event)
    if task is None:
        # Nothing intake could take (a malformed row): parked at once, with no call.
        conn.execute(update(DRIFT).where(DRIFT.c.id == event_id).values(task_attempts=settings.drift_task_max_attempts))
        _dead_letter(conn, event, attempts=attempts, error="malformed_event")
        counts.dead_lettered += 1
        log.warning("drift_task_malformed_event", drift_event_id=str(event_id), kind=event["kind"])
        return True
    try:
        answer = intake.create_system_task(task)
    except IntakeUnavailable as exc:
        # Counted, but never the last attempt: only intake refusing the event itself may retire it.
        ceiling = max(settings.drift_task_max_attempts - 1, event["task_attempts"])
        conn.execute(
            update(DRIFT)
            .where(DRIFT.c.id == event_id)
            .values(task_attempts=func.least(DRIFT.c.task_attempts + 1, ceiling))
        )
        counts.unavailable += 1
        log.warning("drift_task_intake_unavailable", drift_event_id=str(event_id), type=task.type, reason=exc.reason)
        return False
    except IntakeRefused as exc:
        conn.execute(update(DRIFT).where(DRIFT.c.id == event_id).values(task_attempts=attempts))
        counts.refused += 1
        log.warning(
            "drift_task_refused",
            drift_event_id=str(event_id),
            type=task.type,
            status=exc.status,
            error=exc.code,
            attempts=attempts,
        )
        if attempts >= settings.drift_task_max_attempts:
            _dead_letter(conn, event, attempts=attempts, error=f"http_{exc.status}:{exc.code}")
            counts.dead_lettered += 1
            log.warning("drift_task_dead_lettered", drift_event_id=str(event_id), type=task.type, attempts=attempts)
        return True
    conn.execute(update(DRIFT).where(DRIFT.c.id == event_id).values(task_id=answer.id, task_attempts=attempts))
    if answer.created:
        counts.created += 1
    else:
        counts.existing += 1
    log.info(
        "drift_task_raised",
        drift_event_id=str(event_id),
        task_id=str(answer.id),
        type=task.type,
        domain=str(event["name"]),
        created=answer.created,
    )
    return True


def raise_tasks(engine: Engine, intake: TaskPoster, settings: Settings) -> RaiseCounts:
    """Raise pending drift events as intake tasks, oldest first, one transaction each; at most batch x batches."""
    counts = RaiseCounts()
    after: tuple[Any, Any] | None = None
    with engine.connect() as conn:
        for _ in range(settings.drift_task_max_batches):
            with conn.begin():
                batch = _next_batch(conn, after, settings)
            for event in batch:
                with conn.begin():
                    attempts = _lock(conn, event["id"], settings)
                    if attempts is None:
                        # Raised meanwhile, retired, or being posted by another worker right now.
                        counts.skipped += 1
                        continue
                    event["task_attempts"] = attempts
                    if not _raise_one(conn, event, intake, settings, counts):
                        # Intake is down: the rest stay untouched until the next run.
                        return counts
            if len(batch) < settings.drift_task_batch_size:
                break
            after = (batch[-1]["detected_at"], batch[-1]["id"])
    return counts


def publish_raise_tasks() -> bool:
    """Ask a worker to raise pending drift events (after the commit that recorded them); False if not published."""
    try:
        celery_app.send_task(RAISE_TASK, queue=QUEUE, retry=False)
    except (KombuError, redis.RedisError, OSError) as exc:
        # The next publish (a later drift, the scheduler) raises these events too: nothing is lost.
        log.warning("raise_tasks_publish_failed", error=type(exc).__name__)
        return False
    return True

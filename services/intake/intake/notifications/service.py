"""Which mails an event makes, and their delivery at most once per (event, recipient).

Each `*_mails` function reads what its template needs from intake's tables (and, for a release, the
broker) and returns the messages to send; none holds a transaction across SMTP. `deliver` claims
each (event, recipient) in `notifications_sent` (committed) before SMTP, so a redelivered event or
a concurrent duplicate sends nothing; a transient failure releases the claim and stops (the job
retries the rest later), a guard refusal or a 5xx is recorded and never retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from intake.approvals.models import Approval
from intake.clients.models import Client
from intake.common.types import utcnow
from intake.notifications import metrics
from intake.notifications.models import FAILED, REFUSED, SENDING, SENT, SentMail
from intake.notifications.releases import BrokerReleases
from intake.notifications.render import (
    PARTY_WORDS,
    AccessAlert,
    ApprovalRequest,
    Mail,
    OpsTaskMail,
    TaskStatusMail,
    render,
    words,
)
from intake.notifications.sender import Mailer, PermanentMailError, TransientMailError, message_id
from intake.requests.models import ServiceRequest
from intake.staff.models import Staff
from intake.tasks.models import Task
from mspkit.logging import get_logger
from mspkit.mailguard import MailRefused

log = get_logger("intake.notifications")

OPS_TASK_TYPES = frozenset({"drift_review", "renewal"})
# Releases to a person are mailed; a service's are listed on /access only.
PERSON_RECIPIENTS = frozenset({"technician", "third_party"})


class MalformedEvent(ValueError):
    """The envelope lacks what the contract promises; retrying cannot fix it."""


@dataclass(frozen=True)
class Outgoing:
    """One message to one recipient."""

    recipient: str
    mail: Mail


@dataclass
class Delivery:
    """What `deliver` did with an event's messages."""

    sent: int = 0
    duplicates: int = 0
    refused: int = 0
    failed: int = 0


def event_id_of(envelope: dict[str, Any]) -> uuid.UUID:
    """The envelope's event id."""
    try:
        return uuid.UUID(str(envelope["event_id"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise MalformedEvent("event_id is not a UUID") from exc


def _data_id(envelope: dict[str, Any], key: str) -> uuid.UUID:
    data = envelope.get("data")
    try:
        return uuid.UUID(str(data[key]))  # type: ignore[index]
    except (KeyError, ValueError, TypeError) as exc:
        raise MalformedEvent(f"data.{key} is not a UUID") from exc


def _link(portal_url: str, path: str) -> str:
    return f"{portal_url.rstrip('/')}{path}"


def _to_each(addresses: Iterable[str], mail: Mail) -> list[Outgoing]:
    """One message per distinct address (case-insensitive)."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), address.strip())
    return [Outgoing(recipient=address, mail=mail) for address in seen.values() if address]


def approval_request_mails(session: Session, *, envelope: dict[str, Any], portal_url: str) -> list[Outgoing]:
    """`approval.created`: the approval, to each of the client's approvers, while it is still pending."""
    approval_id = _data_id(envelope, "approval_id")
    row = session.exec(
        select(Approval, Task, Client)
        .join(Task, col(Task.id) == col(Approval.task_id))
        .join(Client, col(Client.id) == col(Approval.client_id))
        .where(Approval.id == approval_id)
    ).first()
    if row is None:
        log.warning("notification_subject_missing", what="approval", id=str(approval_id))
        return []
    approval, task, client = row
    if approval.status != "pending" or approval.expires_at <= utcnow():
        # Decided or expired before the mail went out: nothing is left to ask.
        log.info("approval_mail_skipped", approval_id=str(approval.id), status=approval.status)
        return []
    mail = ApprovalRequest(
        approval_id=approval.id,
        client_name=client.name,
        task_id=task.id,
        task_title=task.title,
        task_type=task.type,
        request_id=task.request_id,
        recipient_name=approval.recipient_name,
        party_category=approval.party_category,
        information_categories=tuple(approval.information_categories),
        credential_count=len(approval.credential_ids),
        expires_at=approval.expires_at,
        link=_link(portal_url, f"/approvals/{approval.id}"),
    )
    return _to_each(client.approver_emails, mail)


def _recipient_label(session: Session, kind: str, sub: str | None, name: str | None, party: str | None) -> str:
    if kind == "technician" and sub:
        display = session.exec(select(Staff.display_name).where(Staff.sub == sub)).first()
        return f"{display} ({sub})" if display and display != sub else f"technician {sub}"
    party_words = f", {words(PARTY_WORDS, party)}" if party else ""
    return f"{name or 'a third party'}{party_words}"


def access_alert_mails(
    session: Session, *, envelope: dict[str, Any], portal_url: str, releases: BrokerReleases
) -> list[Outgoing]:
    """`release.granted` to a person: an alert to the client's alert addresses (read back at the broker)."""
    release_id = _data_id(envelope, "release_id")
    if (envelope.get("data") or {}).get("recipient_type") == "service":
        return []
    session.rollback()  # hold no connection while the broker answers
    facts = releases.get(release_id)
    if facts is None:
        log.warning("notification_subject_missing", what="release", id=str(release_id))
        return []
    if facts.recipient_kind not in PERSON_RECIPIENTS:
        return []
    client = session.get(Client, facts.client_id)
    if client is None:
        log.warning("notification_subject_missing", what="client", id=str(facts.client_id))
        return []
    task_title = None
    if facts.task_id is not None:
        task_title = session.exec(
            select(Task.title).where(Task.id == facts.task_id, Task.client_id == client.id)
        ).first()
    mail = AccessAlert(
        release_id=facts.id,
        client_name=client.name,
        credential_name=facts.credential_name,
        recipient_label=_recipient_label(
            session, facts.recipient_kind, facts.recipient_sub, facts.recipient_name, facts.party_category
        ),
        task_id=facts.task_id,
        task_title=task_title,
        reason=facts.reason,
        released_at=facts.created_at,
        link=_link(portal_url, "/access"),
    )
    return _to_each(client.alert_recipients, mail)


def task_status_mails(session: Session, *, envelope: dict[str, Any], portal_url: str) -> list[Outgoing]:
    """`task.status_changed` of a client's request: to the requester, if verified and the client wants it."""
    task_id = _data_id(envelope, "task_id")
    to = (envelope.get("data") or {}).get("to")
    if not isinstance(to, str):
        raise MalformedEvent("data.to is not a status")
    row = session.exec(
        select(Task, ServiceRequest, Client)
        .join(ServiceRequest, col(ServiceRequest.id) == col(Task.request_id))
        .join(Client, col(Client.id) == col(Task.client_id))
        .where(Task.id == task_id)
    ).first()
    if row is None:
        return []  # a system task (no request), or gone
    task, request, client = row
    if not client.status_mail or not request.requester_email:
        return []
    mail = TaskStatusMail(
        request_id=request.id,
        task_id=task.id,
        task_title=task.title,
        client_name=client.name,
        status=to,
        link=_link(portal_url, f"/requests/{request.id}"),
    )
    return _to_each([request.requester_email], mail)


def ops_task_mails(session: Session, *, envelope: dict[str, Any], portal_url: str, ops_email: str) -> list[Outgoing]:
    """`task.created` of a `drift_review` or `renewal` task: to MSP_OPS_EMAIL (when set)."""
    task_id = _data_id(envelope, "task_id")
    row = session.exec(
        select(Task, Client).join(Client, col(Client.id) == col(Task.client_id)).where(Task.id == task_id)
    ).first()
    if row is None or row[0].type not in OPS_TASK_TYPES or not ops_email:
        return []
    task, client = row
    mail = OpsTaskMail(
        task_id=task.id,
        task_type=task.type,
        task_title=task.title,
        client_name=client.name,
        link=_link(portal_url, f"/tasks/{task.id}"),
    )
    return _to_each([ops_email], mail)


def _claim(engine: Engine, event_id: uuid.UUID, recipient: str, template: str) -> bool:
    table = SentMail.__table__  # type: ignore[attr-defined]
    with Session(engine) as session, session.begin():
        claimed = session.execute(
            insert(table)
            .values(event_id=event_id, recipient=recipient, template=template, status=SENDING)
            .on_conflict_do_nothing()
            .returning(table.c.event_id)
        ).first()
    return claimed is not None


def _settle(engine: Engine, event_id: uuid.UUID, recipient: str, status: str | None) -> None:
    """Record the outcome of a claim; None releases it (the retry takes it again)."""
    key = (col(SentMail.event_id) == event_id, col(SentMail.recipient) == recipient)
    with Session(engine) as session, session.begin():
        if status is None:
            session.execute(delete(SentMail).where(*key))
        else:
            session.execute(update(SentMail).where(*key).values(status=status, updated_at=utcnow()))


def deliver(engine: Engine, *, event_id: uuid.UUID, outgoing: list[Outgoing], mailer: Mailer) -> Delivery:
    """Send each message unless this (event, recipient) already had one; raise TransientMailError to retry."""
    done = Delivery()
    for item in outgoing:
        template = item.mail.TEMPLATE
        recipient = item.recipient.lower()
        if not _claim(engine, event_id, recipient, template):
            metrics.SKIPPED.labels(template).inc()
            done.duplicates += 1
            continue
        try:
            msg = mailer.message(to=item.recipient, rendered=render(item.mail), msgid=message_id(event_id, recipient))
            mailer.send(msg, template=template)
        except MailRefused as exc:
            # Permanent: the same message would be refused again. The guard logged the shape, not the value.
            _settle(engine, event_id, recipient, REFUSED)
            metrics.REFUSED.labels(template).inc()
            log.error("notification_refused", template=template, event_id=str(event_id), reason=exc.reason)
            done.refused += 1
        except PermanentMailError as exc:
            _settle(engine, event_id, recipient, FAILED)
            metrics.FAILED.labels(template).inc()
            log.error("notification_failed", template=template, event_id=str(event_id), reason=exc.reason)
            done.failed += 1
        except BaseException:
            # Transient (or anything unexpected): release the claim so the retry sends it.
            _settle(engine, event_id, recipient, None)
            raise
        else:
            _settle(engine, event_id, recipient, SENT)
            metrics.SENT.labels(template).inc()
            done.sent += 1
    return done


__all__ = [
    "Delivery",
    "MalformedEvent",
    "Outgoing",
    "TransientMailError",
    "access_alert_mails",
    "approval_request_mails",
    "deliver",
    "event_id_of",
    "ops_task_mails",
    "task_status_mails",
]

"""spam_filter_setup: the domain at the spam-filter vendor, then its MX at its DNS host.

(1) The disclosure is ledgered first (the domain and where its mail goes leave for the vendor); a refusal
fails the step before the key is even released. MailChannels answers 200 for a domain already ours, so a
redelivered step provisions nothing twice; 409 (another customer's) fails the step with its words.
(2) The MX change is a diff against the zone (mx.py), so it too is safe to run again. The new MX goes into
the domain's last known state in the transaction that records the step, so the next sync sees no drift.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert

from mspkit.http import VendorNotFound
from vendor_sync.adapters.dns_types import RECORDS_WRITE, DnsRecord
from vendor_sync.adapters.mailchannels import INBOUND_MX_HOSTS as MAILCHANNELS_MX
from vendor_sync.adapters.spam_filter_types import DOMAINS_WRITE, DownstreamAddress
from vendor_sync.db import utcnow
from vendor_sync.domains.models import DnsRecord as RecordRow
from vendor_sync.domains.models import Domain
from vendor_sync.domains.names import InvalidDomainName, normalize_domain_name
from vendor_sync.provisioning.accounts import Account, client_accounts, get_account
from vendor_sync.provisioning.context import StepContext
from vendor_sync.provisioning.failures import StepFailed
from vendor_sync.provisioning.mx import after_changes, mx_changes, mx_values
from vendor_sync.provisioning.plans import PROVISION_DOMAIN, SPAM_FILTER_DISCLOSES
from vendor_sync.provisioning.steps import StepResult

# Each spam filter's inbound MX hosts as (priority, host): the adapters' own constants.
INBOUND_MX: dict[str, tuple[tuple[int, str], ...]] = {"mailchannels": MAILCHANNELS_MX}
DOMAINS = Domain.__table__
RECORDS = RecordRow.__table__


def _domain(ctx: StepContext) -> tuple[str, str]:
    try:
        return normalize_domain_name(str(ctx.body.get("domain") or ""))
    except InvalidDomainName as exc:
        raise StepFailed("invalid_domain", f"The request's domain {exc}.") from None


def _provider(ctx: StepContext) -> str:
    provider = str(ctx.body.get("provider") or "mailchannels")
    if provider not in INBOUND_MX:
        raise StepFailed("unsupported_provider", f"vendor_sync cannot provision at {provider}.")
    return provider


def _filter_account(ctx: StepContext, provider: str) -> Account:
    found = ctx.read(
        lambda conn: client_accounts(
            conn, client_id=ctx.client_id, kind="spam_filter", adapter=provider, among=ctx.scope_accounts()
        )
    )
    usable = [a for a in found if a.can(DOMAINS_WRITE)]
    if not usable:
        raise StepFailed("no_spam_filter_account", f"The client has no {provider} account in this task's scope.")
    return usable[0]


def provision_domain(ctx: StepContext) -> StepResult:
    """Ledger the disclosure, then provision the domain with its downstream hosts at the spam filter."""
    name, _ = _domain(ctx)
    account = _filter_account(ctx, _provider(ctx))
    try:
        wanted = [DownstreamAddress(target=str(host)) for host in ctx.body.get("downstream_hosts") or []]
    except ValueError as exc:
        raise StepFailed("invalid_downstream_host", str(exc)) from None
    disclosure_id = ctx.disclose(account, SPAM_FILTER_DISCLOSES, PROVISION_DOMAIN)
    with ctx.adapter(account) as spam_filter:
        result = spam_filter.provision_domain(name, wanted)
    hosts = [a.target for a in result.domain.downstream_addresses or wanted]
    replaced = [a.target for a in result.replaced_downstream or ()]
    how = "provisioned" if result.created else "was already provisioned"
    summary = f"{name} {how} at {account.vendor_name}, delivering to {', '.join(hosts)}."
    if replaced:
        summary += f" Replaced downstream hosts: {', '.join(replaced)}."
    return StepResult(
        status="succeeded",
        vendor=account.adapter,
        summary=summary,
        detail={
            "domain": name,
            "vendor_account_id": str(account.id),
            "created": result.created,
            "downstream": hosts,
            "replaced_downstream": replaced,
            "disclosure_id": disclosure_id,
        },
    )


def _dns_account(ctx: StepContext, row: Any) -> Account:
    if row is not None and row.dns_host_account_id is not None:
        account = ctx.read(lambda conn: get_account(conn, account_id=row.dns_host_account_id, client_id=ctx.client_id))
        if account is not None:
            return account
    # Not synced yet: the task's DNS host, when its scope names exactly one.
    hosts = ctx.read(
        lambda conn: client_accounts(conn, client_id=ctx.client_id, kind="dns_host", among=ctx.scope_accounts())
    )
    if len(hosts) != 1:
        raise StepFailed("no_dns_host", "No DNS host is known for the domain: sync its DNS host account first.")
    return hosts[0]


def _zone_records(dns: Any, name: str, zone_id: str | None) -> tuple[str, list[DnsRecord]]:
    if zone_id:
        try:
            return zone_id, dns.list_records(zone_id)
        except VendorNotFound:
            pass  # a stale zone id: look the zone up by name below
    zone = next((z for z in dns.list_zones() if z.name == name), None)
    if zone is None:
        raise StepFailed("zone_not_found", f"The DNS host has no zone named {name}.")
    return zone.id, dns.list_records(zone.id)


def _dns_target(ctx: StepContext) -> tuple[Account, str | None]:
    """The DNS host account that will write the domain's MX, and the zone id the registry knows there."""
    name, _ = _domain(ctx)
    row = ctx.read(
        lambda conn: conn.execute(
            select(DOMAINS.c.id, DOMAINS.c.dns_host_account_id, DOMAINS.c.dns_zone_id).where(
                DOMAINS.c.client_id == ctx.client_id, DOMAINS.c.name == name
            )
        ).first()
    )
    account = _dns_account(ctx, row)
    if not account.can(RECORDS_WRITE):
        raise StepFailed("dns_host_read_only", f"vendor_sync cannot write records at {account.vendor_name}.")
    return account, row.dns_zone_id if row is not None and row.dns_host_account_id == account.id else None


def dns_account(ctx: StepContext) -> Account:
    """The account set_mx calls, found without calling anyone (the job asks for its key ahead)."""
    return _dns_target(ctx)[0]


def set_mx(ctx: StepContext) -> StepResult:
    """Point the zone's apex MX at the spam filter's inbound hosts, keeping what it replaced."""
    name, unicode_name = _domain(ctx)
    wanted = INBOUND_MX[_provider(ctx)]
    account, known_zone = _dns_target(ctx)
    with ctx.adapter(account) as dns:
        zone_id, records = _zone_records(dns, name, known_zone)
        changes = mx_changes(records, name, wanted, ctx.settings.provisioning_mx_ttl_s)
        created = _create_side_by_side(dns, zone_id, changes.create)
        for record in changes.delete:
            if record.id:
                dns.delete_record(zone_id, record.id)
    final = after_changes(changes, created)
    mx, replaced = mx_values(final), mx_values(changes.delete)
    summary = f"MX of {name} at {account.vendor_name}: {', '.join(mx)}."
    summary += f" Replaced: {', '.join(replaced)}." if replaced else " Nothing replaced."
    return StepResult(
        status="succeeded",
        vendor=account.adapter,
        summary=summary,
        detail={
            "zone": name,
            "vendor_account_id": str(account.id),
            "mx": mx,
            "created": mx_values(created),
            "replaced": [_record_view(r) for r in changes.delete],
        },
        apply=functools.partial(
            write_mx_state,
            client_id=ctx.client_id,
            name=name,
            unicode_name=unicode_name,
            account_id=account.id,
            zone_id=zone_id,
            records=final,
        ),
    )


def _create_side_by_side(dns: Any, zone_id: str, records: Sequence[DnsRecord]) -> list[DnsRecord]:
    """Create the new records at once, one call each: none depends on another (in the host's answer order).

    Serially, two inbound hosts cost two vendor round trips in the task's critical path. A call that
    fails raises here as it would serially; one that succeeded beside it is found by the next run's diff.
    """
    with ThreadPoolExecutor(max_workers=max(len(records), 1), thread_name_prefix="mx-create") as pool:
        return list(pool.map(functools.partial(dns.create_record, zone_id), records))


def _record_view(record: DnsRecord) -> dict[str, Any]:
    view = asdict(record)
    view.pop("proxied", None)
    return view


def write_mx_state(
    conn: Connection,
    *,
    client_id: uuid.UUID,
    name: str,
    unicode_name: str,
    account_id: uuid.UUID,
    zone_id: str,
    records: list[DnsRecord],
) -> None:
    """The domain's last known MX (the same "priority host" list a sync writes) and its apex MX records."""
    now = utcnow()
    mx = mx_values(records)
    linked = {"dns_host_account_id": account_id, "dns_zone_id": zone_id, "mx": mx}
    domain_id = conn.execute(
        insert(DOMAINS)
        .values(
            id=uuid.uuid4(),
            client_id=client_id,
            name=name,
            unicode_name=unicode_name,
            row_created_at=now,
            next_check_at=now,
            **linked,
        )
        .on_conflict_do_update(constraint="uq_domains_client_name", set_=linked)
        .returning(DOMAINS.c.id)
    ).scalar_one()
    conn.execute(
        delete(RECORDS).where(RECORDS.c.domain_id == domain_id, RECORDS.c.type == "MX", RECORDS.c.name == name)
    )
    if records:
        conn.execute(
            insert(RECORDS).on_conflict_do_nothing(),
            [
                {
                    "id": uuid.uuid4(),
                    "domain_id": domain_id,
                    "type": "MX",
                    "name": name,
                    "content": record.content,
                    "ttl": record.ttl,
                    "priority": record.priority,
                    "vendor_record_id": record.id,
                    "created_at": now,
                    "updated_at": now,
                }
                for record in records
            ],
        )

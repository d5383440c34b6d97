"""One delivery of `vendor_sync.provisioning.run`: read the request, claim the task, run its steps in order.

Exactly once with at-least-once delivery, as the sync jobs are: the run's session lock for the whole
delivery, attempts counted when it is claimed, a step skipped once it succeeded (the local step table),
each outcome reported to intake under its idempotency key, and vendor calls that are safe to repeat
(MailChannels answers 200 for a domain already ours; the MX change is a diff). The task is claimed at
intake before the first vendor call; a task that only needs people (an ISP order, contacts at a vendor
whose adapter cannot write them) gets its human steps and stays `ready`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from mspkit.http import VendorPermanentError
from vendor_sync.db import utcnow
from vendor_sync.intake_client import IntakeProvisioning, IntakeRefused, IntakeUnavailable
from vendor_sync.provisioning import contacts, runs, spam
from vendor_sync.provisioning import steps as step_table
from vendor_sync.provisioning.accounts import Account
from vendor_sync.provisioning.broker import BrokerRefused, BrokerUnavailable, record_disclosure
from vendor_sync.provisioning.context import Discloser, StepContext
from vendor_sync.provisioning.failures import StepFailed
from vendor_sync.provisioning.keyring import KeyRing
from vendor_sync.provisioning.metrics import RUNS, log, timed_step
from vendor_sync.provisioning.plans import (
    PROVISION_DOMAIN,
    PROVISIONABLE,
    REGISTRY_CONTACTS,
    SET_MX,
    VENDOR_CONTACTS,
    HumanStep,
    isp_steps,
    task_view,
)
from vendor_sync.provisioning.steps import StepResult, StepState
from vendor_sync.settings import Settings
from vendor_sync.sync import run_guard
from vendor_sync.sync.refresh import Outcome, classify
from vendor_sync.sync.vendor_keys import KeyRefused, KeyUnavailable

Executor = Callable[[StepContext], StepResult]


@dataclass(frozen=True)
class Step:
    """An automated step: its name, what runs it, the vendor kind it calls, and what it does in words.

    `account`, when given, finds the vendor account the step will call without calling anyone, so the
    job can ask for its key while the step before it waits on its vendor.
    """

    name: str
    execute: Executor
    vendor: str
    doing: str
    account: Callable[[StepContext], Account] | None = None


AUTOMATED: dict[str, tuple[Step, ...]] = {
    "spam_filter_setup": (
        Step(PROVISION_DOMAIN, spam.provision_domain, "spam_filter", "Provisioning the domain at the spam filter"),
        Step(SET_MX, spam.set_mx, "dns_host", "Pointing the domain's MX records at the spam filter", spam.dns_account),
    ),
    "vendor_contact_update": (
        Step(VENDOR_CONTACTS, contacts.vendor_contacts, "registrar", "Changing the contacts at the vendor"),
        Step(REGISTRY_CONTACTS, contacts.registry_contacts, "registry", "Changing the contacts in the registry"),
    ),
}


@dataclass
class Deps:
    """What a delivery talks to: intake, the vendors (with keys from the broker), and the disclosure ledger."""

    intake: IntakeProvisioning
    discloser: Discloser = record_disclosure


@dataclass
class _Progress:
    step: Step | None = None
    states: dict[str, StepState] = field(default_factory=dict)


def run(run_id: uuid.UUID, *, engine: Engine, settings: Settings, deps: Deps) -> Outcome:
    """Run one delivery of a provisioning run."""
    with engine.connect() as conn:
        held = False
        try:
            with conn.begin():
                held = run_guard.try_lock(conn, run_id)
                if not held:
                    return Outcome("skipped", error="in_progress_elsewhere")
                claim = runs.claim(conn, run_id, settings)
            if isinstance(claim, Outcome):
                return claim
            progress = _Progress()
            keys = KeyRing(job_id=runs.job_key(run_id), task_id=claim.task_id)
            try:
                outcome = _work(conn, claim, settings, deps, progress, keys)
            except Exception as exc:  # noqa: BLE001 - classified: transient ones are retried, the rest fail the run
                outcome = _after_error(conn, claim, exc, settings, deps, progress)
            finally:
                keys.close()
            RUNS.labels(outcome.status).inc()
            log.info("provisioning_run_done", run_id=str(run_id), outcome=outcome.status, error=outcome.error)
            return outcome
        finally:
            if held:
                run_guard.unlock(conn, run_id)


def _finish(conn: Connection, claim: runs.Claim, status: str, error: str | None = None) -> Outcome:
    with conn.begin():
        return runs.finish(conn, claim, status, error)


def _work(
    conn: Connection, claim: runs.Claim, settings: Settings, deps: Deps, progress: _Progress, keys: KeyRing
) -> Outcome:
    request_id = claim.request_id or _uuid(claim.task_view.get("request_id"))
    if request_id is None:
        return _finish(conn, claim, "skipped", "unknown_request")
    try:
        detail = deps.intake.request_detail(request_id)
    except IntakeRefused as exc:
        return _finish(conn, claim, "skipped", f"request_{exc.code}")
    kind, body = str(detail.get("type")), detail.get("body")
    if _uuid(detail.get("client_id")) != claim.client_id or not isinstance(body, dict):
        return _finish(conn, claim, "skipped", "request_mismatch")
    with conn.begin():
        runs.note(conn, claim.run_id, type=kind)
    if kind not in PROVISIONABLE:
        return _finish(conn, claim, "skipped", "not_provisionable")
    ctx = StepContext(
        conn=conn,
        run_id=claim.run_id,
        task_id=claim.task_id,
        client_id=claim.client_id,
        job_id=keys.job_id,
        body=body,
        task_view=claim.task_view,
        settings=settings,
        keys=keys,
        discloser=deps.discloser,
    )
    progress.states = ctx.read(lambda c: step_table.states(c, claim.task_id))
    handed = _by_hand(ctx, kind)
    if handed is not None:
        return _hand_over(conn, claim, deps, handed, progress.states)
    plan = AUTOMATED[kind]
    if all(_done(progress.states.get(step.name)) for step in plan):
        unreported = [s for s in (progress.states[step.name] for step in plan) if not s.reported]
        for state in unreported:
            step_table.report(deps.intake, conn, task_id=claim.task_id, step=state)
        return _finish(conn, claim, "succeeded" if unreported else "skipped", None if unreported else "nothing_left")
    if claim.give_up:
        return _give_up(conn, claim, deps, progress, plan, "worker_lost")
    if not claim.claimed:
        try:
            answer = deps.intake.claim(claim.task_id)
        except IntakeRefused as exc:
            # Someone else has it, or it left `ready`/`on_hold` meanwhile: not ours to do.
            return _finish(conn, claim, "skipped", f"not_claimable_{exc.code}")
        ctx.task_view = task_view(answer)
        with conn.begin():
            runs.note(conn, claim.run_id, claimed_at=utcnow(), task_view=ctx.task_view)
    return _run_steps(conn, claim, ctx, deps, plan, progress)


def _run_steps(
    conn: Connection, claim: runs.Claim, ctx: StepContext, deps: Deps, plan: tuple[Step, ...], progress: _Progress
) -> Outcome:
    """The claimed task's steps in order, each skipped once it succeeded; intake told the plan before any outcome."""
    planned = [(s.name, f"{s.doing}.") for s in plan if s.name not in progress.states]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan-report") as background:
        tell = functools.partial(step_table.report_plan, deps.intake, task_id=claim.task_id, planned=planned)
        told = _Plan(background, tell)

        def report(state: StepState) -> None:
            told.wait()
            step_table.report(deps.intake, conn, task_id=claim.task_id, step=state)

        for step in plan:
            state = progress.states.get(step.name)
            if _done(state):
                if state is not None and not state.reported:
                    report(state)
                continue
            if state is not None and state.status == "failed" and state.run_id == claim.run_id:
                # This run failed the step already; the delivery that did so died before reporting it.
                if not state.reported:
                    report(state)
                return _finish(conn, claim, "failed", f"{step.name}: {state.error}"[:500])
            progress.step = step
            ctx.ahead = functools.partial(_while_calling, ctx, told, _next(plan, step, progress.states))
            result = _execute(ctx, step)
            with conn.begin():
                if not runs.still_running(conn, claim.run_id):
                    return Outcome("skipped", error="lost_claim")
                state = step_table.record(
                    conn, task_id=claim.task_id, run_id=claim.run_id, name=step.name, result=result
                )
            progress.states[step.name] = state
            report(state)
            if result.status == "failed":
                return _finish(conn, claim, "failed", f"{step.name}: {result.error}"[:500])
        told.wait()
    return _finish(conn, claim, "succeeded")


class _Plan:
    """The plan told to intake once: while the first step waits on its vendor, or else before the first outcome.

    intake closes the task on the last success of the steps it knows, so it must know them all before it
    hears an outcome, not before the first step works (a plan never told is told by the next run).
    """

    def __init__(self, background: ThreadPoolExecutor, tell: Callable[[], None]) -> None:
        self._background, self._tell = background, tell
        self._told: Future[None] | None = None

    def start(self) -> Future[None]:
        """Start telling it, unless that has started."""
        if self._told is None:
            self._told = self._background.submit(self._tell)
        return self._told

    def wait(self) -> None:
        """Until intake has it (its IntakeUnavailable/IntakeRefused if it failed)."""
        self.start().result()


def _while_calling(ctx: StepContext, plan: _Plan, following: Step | None) -> None:
    """What the job does while a step waits on its vendor: tell intake the plan, ask for the next step's key."""
    plan.start()
    _ask_ahead(ctx, following)


def _done(state: StepState | None) -> bool:
    return state is not None and state.status == "succeeded"


def _next(plan: tuple[Step, ...], step: Step, states: dict[str, StepState]) -> Step | None:
    """The step after `step` that is still to do."""
    after = plan[plan.index(step) + 1 :]
    return next((s for s in after if not _done(states.get(s.name))), None)


def _ask_ahead(ctx: StepContext, step: Step | None) -> None:
    """Ask for the step's key ahead of it; nothing when its account cannot be told (the step will say why)."""
    if step is None or step.account is None:
        return
    try:
        account = step.account(ctx)
    except StepFailed:
        return
    ctx.keys.ask(account)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _by_hand(ctx: StepContext, kind: str) -> list[HumanStep] | None:
    """The human steps of a task only people can do (None: vendor_sync does it)."""
    if kind == "isp_account_setup":
        return isp_steps(ctx.body)
    if kind == "vendor_contact_update":
        account = ctx.read(lambda c: contacts.account_of(c, client_id=ctx.client_id, body=ctx.body))
        if account is not None and not contacts.writes_contacts(account):
            return [ctx.read(lambda c: contacts.by_hand(c, account=account, body=ctx.body))]
    return None


def _hand_over(
    conn: Connection, claim: runs.Claim, deps: Deps, human: list[HumanStep], states: dict[str, StepState]
) -> Outcome:
    """Add the human steps (once each) and leave the task `ready` for a technician: no claim."""
    for step in human:
        state = states.get(step.name)
        if state is None:
            pending = StepResult(status="pending", vendor=None, summary=step.detail, human=True)
            with conn.begin():
                state = step_table.record(
                    conn, task_id=claim.task_id, run_id=claim.run_id, name=step.name, result=pending
                )
        if not state.reported:
            step_table.report(deps.intake, conn, task_id=claim.task_id, step=state)
    return _finish(conn, claim, "succeeded")


def _execute(ctx: StepContext, step: Step) -> StepResult:
    """One go of a step: its result, or a failed result for what retrying cannot fix (transient errors raise)."""
    with timed_step(run_id=ctx.run_id, task_id=ctx.task_id, step=step.name, vendor=step.vendor) as timer:
        try:
            result = _attempt(ctx, step)
        except Exception:
            timer.outcome = "retry"
            raise
        timer.vendor = result.vendor or step.vendor
        timer.outcome = result.status
        return result


def _attempt(ctx: StepContext, step: Step) -> StepResult:
    try:
        return step.execute(ctx)
    except StepFailed as exc:
        code, words = exc.code, exc.words
    except BrokerRefused as exc:
        code, words = (
            "disclosure_denied",
            f"The broker refused to ledger the disclosure ({exc.rule}); nothing was sent.",
        )
    except KeyRefused as exc:
        code, words = exc.code, f"No key was released for the vendor account ({exc.code})."
    except VendorPermanentError as exc:
        # The vendor's own words (adapters scrub keys from them), e.g. MailChannels' 409.
        code, words = classify(exc).code, str(exc)
    except ValueError as exc:
        # An adapter refused what the request asks for before any call.
        code, words = "invalid_input", str(exc)
    return StepResult(
        status="failed", vendor=step.vendor, summary=f"{step.doing} failed.", error=words[:1000], detail={"code": code}
    )


def _transient(exc: BaseException) -> tuple[str, float | None, bool] | None:
    """(code, retry_after, no vendor call made) for an error a later attempt may not meet; None otherwise."""
    if isinstance(exc, IntakeUnavailable):
        return f"intake_{exc.reason}", None, True
    if isinstance(exc, KeyUnavailable | BrokerUnavailable):
        return "key_unavailable" if isinstance(exc, KeyUnavailable) else "broker_unavailable", None, True
    if isinstance(exc, IntakeRefused):
        return None
    failure = classify(exc)
    return (failure.code, failure.retry_after, failure.no_call) if failure.transient else None


def _after_error(
    conn: Connection, claim: runs.Claim, exc: BaseException, settings: Settings, deps: Deps, progress: _Progress
) -> Outcome:
    transient = _transient(exc)
    if transient is not None:
        code, retry_after, no_call = transient
        if no_call or claim.attempts < settings.provisioning_max_attempts:
            with conn.begin():
                return runs.retry_later(conn, claim, code, retry_after, settings, no_call=no_call)
        error = code
    else:
        error = f"intake_refused_{exc.code}" if isinstance(exc, IntakeRefused) else f"error_{type(exc).__name__}"
    plan = (progress.step,) if progress.step is not None else ()
    return _give_up(conn, claim, deps, progress, plan, error)


def _give_up(
    conn: Connection, claim: runs.Claim, deps: Deps, progress: _Progress, plan: tuple[Step, ...], error: str
) -> Outcome:
    """Out of attempts (or an error nothing will fix): fail the step under way, dead-letter the run, tell intake."""
    step = next((s for s in plan if not _done(progress.states.get(s.name))), None)
    state = None
    with conn.begin():
        if not runs.still_running(conn, claim.run_id):
            return Outcome("skipped", error="lost_claim")
        if step is not None and (claim.claimed or claim.task_view):
            words = f"vendor_sync gave up after {max(claim.attempts - int(claim.give_up), 1)} attempts ({error})."
            failed = StepResult("failed", step.vendor, f"{step.doing} failed.", error=words, detail={"code": error})
            state = step_table.record(conn, task_id=claim.task_id, run_id=claim.run_id, name=step.name, result=failed)
        runs.dead_letter(conn, claim, error)
        outcome = runs.finish(conn, claim, "failed", "max_attempts" if claim.give_up else error)
    if state is not None:
        try:
            step_table.report(deps.intake, conn, task_id=claim.task_id, step=state)
        except (IntakeUnavailable, IntakeRefused) as exc:
            # The step stays unreported here; a retry of the task reports it with the next run.
            log.warning("provisioning_report_failed", run_id=str(claim.run_id), error=type(exc).__name__)
    return outcome

"""The `mspctl` command line (typer)."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console

from mspctl import bao, parts
from mspctl.bao import BaoError
from mspctl.envfile import read_env
from mspctl.files import write_private
from mspctl.launcher import LaunchRefusedError, run_with_secret_id
from mspctl.layout import DEFAULT_DIRNAME, Layout, devstack_dir

if TYPE_CHECKING:
    from mspctl.stack import Stack

# The dev stack's modules (supervisor, embedded servers, the dev issuer) are imported by the commands
# that need them: `run-with-secret-id` and `vault-bootstrap` also run in the production images, which
# ship only mspctl's launcher and bootstrap (see deploy/README.md).

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
    no_args_is_help=True,
    help="The MSP dev stack. State lives in MSP_DEVSTACK_DIR (default .devstack/).",
)
# Progress and errors go to stderr; stdout carries only machine-readable lines (URLs, status, JWT).
err = Console(stderr=True, highlight=False)


def _stack(ports: str | None = None) -> Stack:
    from mspctl.stack import Stack

    return Stack(ports=ports, say=lambda message: err.print(f"[dim]{message}[/dim]"))


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once every part is ready.")] = False,
    only: Annotated[str | None, typer.Option(help="Comma-separated parts (dependencies are added).")] = None,
    ports: Annotated[
        str | None, typer.Option(help="'fixed' (portal 8000, APIs 8001-8003) or 'auto'; env MSP_DEVSTACK_PORTS.")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Seed demo data once (full stack only).")] = True,
) -> None:
    """Start the stack; print one `NAME URL` line per part once all are ready."""
    from mspctl.stack import StackError

    if ports not in (None, "auto", "fixed"):
        raise _fail("--ports must be 'auto' or 'fixed'")
    stack = _stack(ports)
    try:
        selected = parts.parse_only(only)
        urls = stack.up(only=selected)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    except StackError as exc:
        name = f"{exc.part}: " if exc.part else ""
        raise _fail(f"{name}{exc}\n(the stack is left as it is for inspection; `mspctl down` stops it)") from exc
    for name, url in urls.items():
        print(f"{name} {url}", flush=True)
    if selected is None and demo:
        _seed_demo(stack)
    if "intake" in urls:
        _say_first_command(stack, urls)
    if "portal" in urls:
        err.print(f"portal: open {urls['portal']}/ and pick a demo person (`mspctl people` lists them)")
    if detach:
        return
    err.print("[bold]following logs; Ctrl-C stops the stack[/bold]")
    # A terminal closing or a `kill` should stop the stack just like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        _follow_logs(stack.layout, list(urls))
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        stack.down()


def _seed_demo(stack: Stack) -> None:
    """Seed demo data once; a failure is reported but leaves the running stack alone."""
    from mspctl import demo

    try:
        summary = demo.seed(stack.layout, stack.env)
    except (demo.DemoError, httpx.HTTPError) as exc:
        err.print(f"[yellow]demo data not seeded: {exc}[/yellow]")
        return
    if summary is not None:
        counts = ", ".join(f"{n} {what}" for what, n in sorted(summary.counts.items()))
        err.print(f"demo data: {counts}")


def first_command(stack: Stack, intake_url: str, cwd: Path | None = None) -> str:
    """A command to paste into a shell in `cwd`: list the clients with an admin token, the URL filled in."""
    cwd = cwd or Path.cwd()
    exe = Path(sys.executable).with_name("mspctl")
    mspctl = os.path.relpath(exe, cwd) if exe.is_relative_to(cwd) else str(exe)
    if "/" not in mspctl:
        mspctl = f"./{mspctl}"
    # A devstack dir other than the default one must be named, or the token comes from another stack.
    where = "" if stack.root == cwd / DEFAULT_DIRNAME else f"MSP_DEVSTACK_DIR={shlex.quote(str(stack.root))} "
    token = f"$({where}{shlex.quote(mspctl)} token --role admin --sub admin)"
    return f'curl -H "Authorization: Bearer {token}" {intake_url}/v1/clients'


def _say_first_command(stack: Stack, urls: dict[str, str]) -> None:
    # Plain writes, not rich: a wrapped line could not be pasted back into a shell.
    sys.stderr.write(f"first command (lists the clients): {first_command(stack, urls['intake'])}\n")
    sys.stderr.write(f"walkthrough: docs/api.md; API docs: {urls['intake']}/docs\n")
    sys.stderr.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _follow_logs(layout: Layout, names: list[str]) -> None:
    """Print new lines of each part's log, prefixed with the part name, until interrupted."""
    offsets: dict[str, int] = {}
    for name in names:
        path = layout.log(name)
        offsets[name] = path.stat().st_size if path.exists() else 0
    width = max(len(n) for n in names)
    while True:
        for name in names:
            path = layout.log(name)
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < offsets[name]:  # rotated
                offsets[name] = 0
            if size > offsets[name]:
                with open(path, "rb") as fh:
                    fh.seek(offsets[name])
                    chunk = fh.read(size - offsets[name])
                offsets[name] = size
                for line in chunk.decode(errors="replace").splitlines():
                    err.print(f"[cyan]{name:<{width}}[/cyan] | {line}", markup=True, highlight=False, soft_wrap=True)
        time.sleep(0.3)


@app.command()
def down() -> None:
    """Stop everything this devstack started and check that no process is left."""
    stack = _stack()
    forced = stack.down()
    if forced:
        err.print(f"[yellow]had to SIGKILL {len(forced)} leftover process(es): {forced}[/yellow]")
    err.print("stack stopped")


@app.command()
def status() -> None:
    """Print one `PART STATE PID` line per part."""
    for entry in _stack().status():
        print(f"{entry.name} {entry.state} {entry.pid or '-'}")


@app.command()
def urls() -> None:
    """Print the `NAME URL` lines `up` prints (from the devstack's env file; the ports are kept)."""
    stack = _stack()
    if not stack.layout.env_file.exists():
        raise _fail(f"no devstack in {stack.root} yet; `make up` creates it")
    for name, url in stack.urls().items():
        print(f"{name} {url}")


def _part_command(action: str, part: str) -> None:
    from mspctl.stack import StackError

    stack = _stack()
    try:
        if action == "stop":
            stack.stop(part)
            err.print(f"{part} stopped")
        elif action == "start":
            stack.start(part)
            err.print(f"{part} started (pid {stack.pid(part)})")
        else:
            pid = stack.kill(part)
            err.print(f"{part}: sent SIGKILL to pid {pid}; supervisor will restart it")
    except StackError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def stop(part: str) -> None:
    """Stop one part."""
    _part_command("stop", part)


@app.command()
def start(part: str) -> None:
    """Start one part and wait until it is ready."""
    _part_command("start", part)


@app.command()
def kill(part: str) -> None:
    """SIGKILL one part (supervisor restarts it)."""
    _part_command("kill", part)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="client_user, client_admin, technician, admin or service")],
    sub: Annotated[str, typer.Option(help="The subject")],
    client_id: Annotated[str | None, typer.Option("--client-id", help="Client UUID (client roles)")] = None,
    aud: Annotated[
        list[str] | None,
        typer.Option(help="Audience (repeatable); default all three services; exactly one for role service"),
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
) -> None:
    """Print one line: a JWT signed by the dev issuer."""
    from mspctl.tokens import TokenError, mint

    try:
        jwt = mint(None, role=role, sub=sub, client_id=client_id, aud=aud or None, ttl=ttl)
    except (TokenError, OSError) as exc:
        raise _fail(str(exc)) from exc
    sys.stdout.write(jwt + "\n")


@app.command()
def people() -> None:
    """Print one `SUB ROLE CLIENT_ID` line per demo person (`-` for staff); each can sign in to the portal."""
    from mspctl import people as demo_people

    everyone = demo_people.load(_stack().layout)
    if not any(p.client_id for p in everyone):
        err.print("[dim]the demo clients are not seeded yet (`mspctl up` seeds them): staff only[/dim]")
    for person in everyone:
        print(f"{person.sub} {person.role} {person.client_id or '-'}")


@app.command(
    "run-with-secret-id",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
def run_with_secret_id_cmd(
    role: Annotated[str, typer.Argument(help="msp-broker-api or msp-broker-revoker")],
    cmd: Annotated[list[str], typer.Argument(help="The command to exec, after --")],
) -> None:
    """Exec CMD with a single-use, response-wrapped AppRole secret id in its environment."""
    try:
        args = list(cmd)
        if args and args[0] == "--":  # click keeps the separator when options are not parsed
            args = args[1:]
        run_with_secret_id(None, role, args)
    except (LaunchRefusedError, BaoError, OSError) as exc:
        raise _fail(str(exc), code=2) from exc


@app.command("vault-bootstrap")
def vault_bootstrap(
    addr: Annotated[str, typer.Option(help="Vault or OpenBao address, e.g. https://openbao:8200")],
    token_file: Annotated[Path, typer.Option(help="File holding an admin token (read once, never printed)")],
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the launcher token and env are written; default MSP_DEVSTACK_DIR or .devstack/"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify the audit device, mount, policies and roles")
    ] = False,
) -> None:
    """Bring any Vault or OpenBao to the broker's configuration, the same bootstrap as `mspctl up`.

    Idempotent: only what is missing or different is written. It refuses a server with no audit device.
    `--check` writes nothing and exits 1 listing what differs.
    """
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise _fail(f"--token-file: cannot read {token_file}: {exc.strerror}") from exc
    if not token:
        raise _fail(f"--token-file: {token_file} is empty")
    try:
        if check:
            problems = bao.verify(addr, token)
            for problem in problems:
                print(problem)
            if problems:
                raise _fail(f"{addr} is not bootstrapped: {'; '.join(problems)}")
            err.print(f"{addr}: audit device, mount, policies and roles are in place")
            return
        layout = Layout(devstack_dir(state_dir))
        layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        known = read_env(layout.env_file).get("MSP_VAULT_ADDR")
        if known not in (None, addr):
            raise _fail(f"--state-dir {layout.root} belongs to the server at {known}, not {addr}")
        changed = bao.bootstrap(addr, token, layout)
        if known is None:
            # The launcher (`run-with-secret-id`) finds the server here, beside its token.
            write_private(layout.env_file, f"# Written by mspctl vault-bootstrap.\nMSP_VAULT_ADDR={addr}\n")
    except (BaoError, httpx.HTTPError, OSError) as exc:
        raise _fail(f"vault-bootstrap: {exc}") from exc
    for item in changed:
        print(f"changed {item}")
    err.print(f"{addr}: bootstrapped ({', '.join(changed) or 'nothing to change'})")


def main() -> None:
    """Entry point for `python -m mspctl.cli`."""
    app()


if __name__ == "__main__":
    main()

"""The dev stack: prepare state, generate the supervisor config, start parts in order, check readiness."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
from cryptography.fernet import Fernet

from mspctl import bao, envfile, issuer, parts, postgres, psa, redis, tokens
from mspctl.files import read_json, write_json_private, write_private
from mspctl.layout import Layout, devstack_dir, repo_root
from mspctl.ports import PortInUseError, assign_ports, port_is_free, port_open
from mspctl.supervisor_conf import Endpoint, Program, render
from mspctl.supervisor_rpc import SupervisorError, daemon_pid, is_running, proxy, reload, start_daemon

EXTERNAL_KEYS = ("MSP_DATABASE_URL", "MSP_REDIS_URL", "MSP_VAULT_ADDR", "MSP_VAULT_BOOTSTRAP_TOKEN")
# Variables a developer's shell may hold that must not leak into the supervised processes.
_SCRUBBED_PREFIXES = ("MSP_", "INTAKE_", "VENDOR_SYNC_", "SECRETS_BROKER_", "PORTAL_", "VAULT_", "BAO_")
# What the portal never reaches (DESIGN: only the three APIs and the IdP), so its programs never get them.
_NOT_FOR_PORTAL = ("MSP_DATABASE_URL", "MSP_REDIS_URL", "MSP_VAULT_ADDR", "MSP_SMTP_URL", "MSP_VENDOR_SIM_URL")
_MAX_UNIX_SOCKET = 100
LISTENER = "openbao-bootstrap"
DEV_OPS_EMAIL = "ops@msp.example"
DEFAULT_TIMEOUT = 180.0


class StackError(RuntimeError):
    """A part failed to come up (or another stack operation failed); `part` names it when known."""

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class PartStatus:
    """One line of `mspctl status`."""

    name: str
    state: str
    pid: int | None


def _sqlalchemy_url(url: str) -> str:
    parts_ = urlsplit(url)
    if parts_.scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
        return urlunsplit(("postgresql+psycopg", *parts_[1:]))
    return url


def _strip_credentials(url: str) -> str:
    p = urlsplit(url)
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


class Stack:
    """One dev stack rooted at a devstack dir (the Python form of `mspctl`)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        ports: str | None = None,
        externals: Mapping[str, str] | None = None,
        say: Callable[[str], None] | None = None,
        token_profile: str | None = None,
        sim_state_file: bool = True,
    ) -> None:
        self.layout = Layout(devstack_dir(root))
        # Whether the simulator keeps its vendors' state on disk across restarts (the dev stack does);
        # a benchmark turns it off, since saving it before each write's answer is not a vendor's latency.
        self.sim_state_file = sim_state_file
        self.ports_mode = ports or os.environ.get("MSP_DEVSTACK_PORTS") or "fixed"
        # The shape of the dev issuer's tokens (`dev`, or `entra` to run everything through the claim mapping).
        self.token_profile = token_profile or os.environ.get("MSP_DEV_TOKEN_PROFILE") or "dev"
        if self.token_profile not in tokens.PROFILES:
            raise ValueError(f"MSP_DEV_TOKEN_PROFILE must be one of {', '.join(tokens.PROFILES)}")
        source = os.environ if externals is None else externals
        self.externals = {k: source[k] for k in EXTERNAL_KEYS if source.get(k)}
        self.say = say or (lambda message: None)
        self.python = sys.executable
        self.repo = repo_root()

    # ---- state ------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The devstack dir."""
        return self.layout.root

    @property
    def env(self) -> dict[str, str]:
        """The `<devstack>/env` values."""
        return envfile.read_env(self.layout.env_file)

    @property
    def ports(self) -> dict[str, int]:
        """The recorded ports."""
        return {k: int(v) for k, v in read_json(self.layout.ports_file).items()}

    def _secrets(self) -> dict[str, Any]:
        data = read_json(self.layout.secrets_file)
        changed = False
        if "postgres_admin" not in data:
            data["postgres_admin"] = secrets.token_hex(24)
            changed = True
        for key, factory in (("postgres", lambda: secrets.token_hex(24)), ("clients", issuer.new_client_secret)):
            group = data.setdefault(key, {})
            for service in parts.SERVICES:
                if service not in group:
                    group[service] = factory()
                    changed = True
        if "supervisor" not in data:
            data["supervisor"] = secrets.token_hex(16)
            changed = True
        if psa.ensure_keys(data):
            changed = True
        if "portal_session_key" not in data:
            # Encrypts the tokens in the portal's session rows; only the portal's programs receive it.
            data["portal_session_key"] = Fernet.generate_key().decode()
            changed = True
        if changed:
            write_json_private(self.layout.secrets_file, data)
        return data

    def client_secret(self, service: str) -> str:
        """The client-credentials secret of a service (`svc:<service>` at MSP_TOKEN_URL)."""
        return str(self._secrets()["clients"][service])

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two `mspctl up` on the same dir at once would race on ports and config.
        with open(self.layout.lock_file, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _external(self, part: str) -> bool:
        key = {"postgres": "MSP_DATABASE_URL", "redis": "MSP_REDIS_URL", "openbao": "MSP_VAULT_ADDR"}.get(part)
        return key is not None and key in self.externals

    # ---- env and programs -------------------------------------------------------------------

    def _env_values(self, ports: dict[str, int], sec: dict[str, Any], pg_superuser: bool) -> dict[str, str]:
        local = "http://127.0.0.1"
        iss = f"{local}:{ports['issuer']}"
        sim = f"{local}:{ports['vendor_sim']}"
        if "MSP_DATABASE_URL" in self.externals:
            admin = _sqlalchemy_url(self.externals["MSP_DATABASE_URL"])
            p = urlsplit(admin)
            host, port, db = p.hostname or "127.0.0.1", p.port or 5432, p.path.lstrip("/") or postgres.DATABASE
        else:
            admin = postgres.url(postgres.ADMIN_USER, sec["postgres_admin"], ports["postgres"])
            host, port, db = "127.0.0.1", ports["postgres"], postgres.DATABASE
        service_urls = {
            svc: (postgres.url(svc, sec["postgres"][svc], port, host, db) if pg_superuser else admin)
            for svc in parts.SERVICES
        }
        return {
            "MSP_ENV": "dev",
            "MSP_INTAKE_URL": f"{local}:{ports['intake']}",
            "MSP_SECRETS_BROKER_URL": f"{local}:{ports['secrets_broker']}",
            "MSP_VENDOR_SYNC_URL": f"{local}:{ports['vendor_sync']}",
            "MSP_DATABASE_URL": admin,
            "MSP_REDIS_URL": self.externals.get("MSP_REDIS_URL", f"redis://127.0.0.1:{ports['redis']}/0"),
            "MSP_VAULT_ADDR": self.externals.get("MSP_VAULT_ADDR", f"{local}:{ports['openbao']}"),
            "MSP_SMTP_URL": f"smtp://127.0.0.1:{ports['mail_smtp']}",
            "MSP_MAIL_UI_URL": f"{local}:{ports['mail_http']}/",
            "MSP_VENDOR_SIM_URL": sim,
            "MSP_JWT_ISSUER": iss,
            "MSP_JWKS_URL": f"{iss}/.well-known/jwks.json",
            "MSP_TOKEN_URL": f"{iss}/oauth/token",
            "INTAKE_DATABASE_URL": service_urls["intake"],
            "VENDOR_SYNC_DATABASE_URL": service_urls["vendor_sync"],
            "SECRETS_BROKER_DATABASE_URL": service_urls["secrets_broker"],
            "PORTAL_DATABASE_URL": service_urls["portal"],
            "MSP_PORTAL_URL": f"{local}:{ports['portal']}",
            # Where intake's worker mails drift-review and renewal tasks (the dev mail sink takes anything).
            "MSP_OPS_EMAIL": DEV_OPS_EMAIL,
            "VENDOR_SYNC_RDAP_BOOTSTRAP_URL": f"{sim}/rdap/bootstrap/dns.json",
            "VENDOR_SYNC_HTTP_ALLOWED_HOSTS": f"http://127.0.0.1:{ports['vendor_sim']}",
            # Every vendor adapter's base URL becomes its path on the simulator (honoured only in dev).
            "VENDOR_SYNC_VENDOR_SIM_URL": sim,
            "MSP_DEV_TOKEN_PROFILE": self.token_profile,
            **tokens.PROFILE_CLAIM_SETTINGS[self.token_profile],
            # intake's tickets live in the simulator's ConnectWise, whose ticket screen frames the portal's pod.
            **psa.intake_env(
                self.layout, sec, sim_url=sim, sim_port=ports["vendor_sim"], intake_url=f"{local}:{ports['intake']}"
            ),
            **psa.portal_env(sim_port=ports["vendor_sim"]),
        }

    def _service_env(self, service: str, env: dict[str, str], sec: dict[str, Any]) -> dict[str, str]:
        """What one service's programs receive: the shared MSP_* values and only its own prefixed ones."""
        prefix = service.upper() + "_"
        # The superuser URL (MSP_DATABASE_URL) stays with mspctl: a service holds only its own role's URL.
        withheld = _NOT_FOR_PORTAL if service == "portal" else ("MSP_DATABASE_URL",)
        shared = {k: v for k, v in env.items() if k.startswith("MSP_") and k not in withheld}
        out = {**shared, **{k: v for k, v in env.items() if k.startswith(prefix)}}
        if service == "portal":
            # An OIDC client acting for people only: no service identity (no client-credentials secret).
            out["PORTAL_CLIENT_SECRET"] = issuer.portal_client_secret(self.layout)
            out["PORTAL_SESSION_KEY"] = sec["portal_session_key"]
        else:
            out[f"{prefix}SERVICE_CLIENT_SECRET"] = sec["clients"][service]
        return out

    def service_env(self, service: str) -> dict[str, str]:
        """The environment a service's processes get (for tests running a service in-process)."""
        if service not in parts.SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return self._service_env(service, self.env, self._secrets())

    def _programs(self, ports: dict[str, int], env: dict[str, str], sec: dict[str, Any]) -> list[Program]:
        py = self.python
        root = str(self.layout.root)
        progs: list[Program] = []
        if not self._external("postgres"):
            progs.append(
                Program(
                    "postgres",
                    postgres.server_command(self.layout, ports["postgres"]),
                    user=postgres.system_user(),
                    stopsignal="INT",  # fast shutdown; TERM waits for clients to leave
                    stopwaitsecs=20,
                    priority=100,
                )
            )
        if not self._external("redis"):
            progs.append(Program("redis", redis.server_command(self.layout, ports["redis"]), priority=100))
        if not self._external("openbao"):
            progs.append(
                Program(
                    "openbao",
                    [py, "-m", "mspctl.bao_server", "--devstack", root],
                    # TERM: a clean raft shutdown; it keeps its data either way.
                    stopwaitsecs=20,
                    priority=100,
                )
            )
        progs.append(
            Program(
                "mail",
                [
                    py,
                    "-m",
                    "mspctl.mailsink",
                    "--dir",
                    str(self.layout.mail_dir),
                    "--smtp-port",
                    str(ports["mail_smtp"]),
                    "--http-port",
                    str(ports["mail_http"]),
                ],
                priority=100,
            )
        )
        progs.append(
            Program(
                "issuer",
                [py, "-m", "mspctl.issuer", "--devstack", root, "--port", str(ports["issuer"])],
                environment={
                    "MSP_JWT_ISSUER": env["MSP_JWT_ISSUER"],
                    "MSP_DEV_TOKEN_PROFILE": self.token_profile,
                    # The portal's redirect URI it registers follows the portal's URL.
                    "MSP_PORTAL_URL": env["MSP_PORTAL_URL"],
                },
                priority=100,
            )
        )
        progs.append(
            Program(
                "vendor_sim",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "vendor_sim.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["vendor_sim"]),
                    "--no-access-log",
                ],
                environment={
                    "MSP_ENV": "dev",
                    "MSP_VENDOR_SIM_URL": env["MSP_VENDOR_SIM_URL"],
                    # The simulated vendors' state (the demo's zones and domains) outlives a restart.
                    "VENDOR_SIM_STATE_FILE": (
                        str(self.layout.root / "vendor_sim" / "state.json") if self.sim_state_file else ""
                    ),
                    # The portal its ticket screen frames (the pod), at 127.0.0.1: another site than the screen's.
                    "VENDOR_SIM_PORTAL_URL": env["MSP_PORTAL_URL"],
                },
                priority=100,
            )
        )

        def uvicorn(app: str, port: int) -> list[str]:
            # No access log: query strings are not ours to print (see DESIGN rule 5).
            return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]

        def celery(app: str, *args: str) -> list[str]:
            return [py, "-m", "celery", "-A", app, *args]

        commands = {
            "intake": uvicorn("intake.main:app", ports["intake"]),
            "intake-relay": [py, "-m", "intake.relay"],
            "intake-worker": celery(
                "intake.celery_app", "worker", "-Q", "intake", "--loglevel", "INFO", "--hostname", "intake@%h"
            ),
            "intake-beat": celery(
                "intake.celery_app", "beat", "--loglevel", "INFO", "--schedule", str(self.layout.intake_beat_schedule)
            ),
            "secrets_broker": uvicorn("secrets_broker.main:app", ports["secrets_broker"]),
            "secrets_broker-worker": celery(
                "secrets_broker.celery_app",
                "worker",
                "-Q",
                "secrets_broker",
                "--loglevel",
                "INFO",
                "--hostname",
                "secrets_broker@%h",
            ),
            "secrets_broker-relay": [py, "-m", "secrets_broker.relay"],
            "vendor_sync": uvicorn("vendor_sync.api:app", ports["vendor_sync"]),
            "vendor_sync-worker": celery(
                "vendor_sync.celery_app",
                "worker",
                "-Q",
                "vendor_sync",
                "--loglevel",
                "INFO",
                "--hostname",
                "vendor_sync@%h",
            ),
            "vendor_sync-beat": celery(
                "vendor_sync.celery_app",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.layout.beat_schedule),
            ),
            "portal": uvicorn("portal.main:app", ports["portal"]),
        }
        for name in parts.APPS:
            service = parts.SERVICE_OF[name]
            program_env = self._service_env(service, env, sec)
            command = commands[name]
            role = parts.LAUNCHED_WITH_ROLE.get(name)
            if role:
                program_env["MSP_DEVSTACK_DIR"] = root
                command = [py, "-m", "mspctl", "run-with-secret-id", role, "--", *command]
            startsecs = 1 if name in parts.HTTP_APPS else 2
            progs.append(Program(name, command, environment=program_env, startsecs=startsecs))
        if not self._external("openbao"):
            progs.append(
                Program(
                    LISTENER,
                    [py, "-m", "mspctl.bao_listener"],
                    environment={"MSP_DEVSTACK_DIR": root},
                    events="PROCESS_STATE_RUNNING",
                    autostart=True,
                    priority=1,
                )
            )
        return progs

    def _endpoint(self, sec: dict[str, Any]) -> Endpoint:
        sock = self.layout.supervisor_sock
        if len(str(sock)) <= _MAX_UNIX_SOCKET:
            return Endpoint(serverurl=f"unix://{sock}", unix_file=sock)
        # Unix socket paths are length-limited: fall back to a password-protected local port.
        port = self.ports.get("supervisor") or 0
        return Endpoint(
            serverurl=f"http://127.0.0.1:{port}",
            inet_port=port,
            username="mspctl",
            password=sec["supervisor"],
        )

    def _daemon_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}

    # ---- readiness ----------------------------------------------------------------------------

    def _probe(self, part: str, env: dict[str, str], ports: dict[str, int]) -> bool:
        """The part's own readiness check (supervisor state is checked separately)."""
        if part == "postgres":
            maintenance = urlsplit(env["MSP_DATABASE_URL"])
            if not self._external("postgres"):
                maintenance = maintenance._replace(path="/postgres")
            return postgres.is_ready(maintenance.geturl())
        if part == "redis":
            return redis.ping(env["MSP_REDIS_URL"])
        if part == "openbao":
            if self._external("openbao"):
                return bao.is_unsealed(env["MSP_VAULT_ADDR"])
            # A new server answers "not initialised" until bootstrap initialises it; afterwards it unseals itself.
            return bao.is_serving(env["MSP_VAULT_ADDR"])
        if part == "issuer":
            return _http_ok(env["MSP_JWKS_URL"])
        if part == "mail":
            return port_open(ports["mail_smtp"]) and _http_ok(env["MSP_MAIL_UI_URL"] + "messages.json")
        if part == "vendor_sim":
            return _http_ok(env["MSP_VENDOR_SIM_URL"] + "/healthz")
        if part in parts.HTTP_APPS:
            return _http_ok(f"http://127.0.0.1:{ports[part]}/readyz")
        return True  # workers, relays, beat: RUNNING in supervisor is the signal

    def _wait_ready(self, names: list[str], env: dict[str, str], ports: dict[str, int], deadline: float) -> None:
        pending = list(names)
        server = proxy(self.layout).supervisor
        while pending:
            for name in list(pending):
                state = "EXTERNAL"
                if not self._external(name):
                    info = server.getProcessInfo(name)
                    state = info["statename"]
                    if state == "FATAL":
                        raise StackError(f"{name} failed to start (FATAL); see {self.layout.log(name)}", part=name)
                    if state != "RUNNING":
                        continue
                if self._probe(name, env, ports):
                    pending.remove(name)
                    self.say(f"{name} ready")
            if not pending:
                return
            if time.monotonic() > deadline:
                name = pending[0]
                raise StackError(f"{name} is not ready (waited too long); see {self.layout.log(name)}", part=name)
            time.sleep(0.2)

    def _start(self, names: list[str]) -> None:
        server = proxy(self.layout).supervisor
        for name in names:
            if self._external(name):
                continue
            if server.getProcessInfo(name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
                continue
            if name in parts.HTTP_APPS and not port_is_free(self.ports[name]):
                raise StackError(f"port {self.ports[name]} for {name} is already in use", part=name)
            try:
                server.startProcess(name, False)
            except xmlrpc.client.Fault as exc:
                if "ALREADY_STARTED" not in exc.faultString:
                    raise StackError(f"{name} could not be started: {exc.faultString}", part=name) from exc

    def _running(self, names: list[str]) -> set[str]:
        server = proxy(self.layout).supervisor
        return {n for n in names if not self._external(n) and server.getProcessInfo(n)["statename"] == "RUNNING"}

    # ---- bootstrap steps ----------------------------------------------------------------------

    def _provision_postgres(self, env: dict[str, str], sec: dict[str, Any], superuser: bool) -> None:
        if not superuser:
            self.say("postgres: external URL is not a superuser; all services share it")
            return
        if not self._external("postgres"):
            postgres.ensure_database(env["MSP_DATABASE_URL"])
        postgres.provision_services(env["MSP_DATABASE_URL"], sec["postgres"])

    def _bootstrap_bao(self, env: dict[str, str]) -> None:
        addr = env["MSP_VAULT_ADDR"]
        external = self._external("openbao")
        token = self.externals.get("MSP_VAULT_BOOTSTRAP_TOKEN", "") if external else ""
        if external and not token:
            raise StackError(
                "MSP_VAULT_ADDR is set but MSP_VAULT_BOOTSTRAP_TOKEN is not: bootstrap needs an admin token",
                part="openbao",
            )
        try:
            if not external:
                # Once per devstack: a new server is initialised here; later starts unseal by themselves.
                if bao.initialize(addr, self.layout):
                    self.say("openbao: initialised (raft storage, static seal)")
                token = self.layout.root_token.read_text().strip()
            changed = bao.bootstrap(addr, token, self.layout)
        except (bao.BaoError, httpx.HTTPError, OSError) as exc:
            raise StackError(f"openbao bootstrap failed: {exc}", part="openbao") from exc
        if changed:
            self.say(f"openbao: bootstrapped ({', '.join(changed)})")

    def _migrate(self, services: list[str], env: dict[str, str], sec: dict[str, Any], deadline: float) -> None:
        base = self._daemon_env()
        for service in services:
            log = self.layout.log(f"{service}-migrate")
            self.say(f"{service}: migrating")
            with open(log, "ab") as out:
                try:
                    result = subprocess.run(
                        [self.python, "-m", f"{service}.migrate"],
                        cwd=self.repo,
                        env={**base, **self._service_env(service, env, sec)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=max(5.0, deadline - time.monotonic()),
                    )
                except subprocess.TimeoutExpired as exc:
                    raise StackError(f"{service} migration timed out; see {log}", part=service) from exc
            if result.returncode != 0:
                raise StackError(f"{service} migration failed; see {log}", part=service)

    # ---- public operations ---------------------------------------------------------------------

    def up(self, only: list[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
        """Start the stack (or the `only` parts and their dependencies); returns {part: url} once ready."""
        deadline = time.monotonic() + timeout
        selected = parts.expand(only)
        self.layout.create()
        with self._lock():
            return self._up(selected, deadline)

    def _up(self, selected: list[str], deadline: float) -> dict[str, str]:
        layout = self.layout
        running = is_running(layout)
        recorded = self.ports
        if running and all(n in recorded for n in parts.PORT_NAMES):
            ports = recorded
        else:
            try:
                ports = assign_ports(
                    recorded,
                    parts.PORT_NAMES,
                    mode=self.ports_mode,
                    needed_fixed=[p for p in selected if p in parts.APIS],
                )
                if self.ports_mode == "fixed":
                    ports["portal"] = self._portal_port("portal" in selected, ports)
            except (RuntimeError, ValueError) as exc:
                part = next((a for a in parts.HTTP_APPS if f"for {a} " in str(exc)), None)
                raise StackError(str(exc), part=part) from exc
            if len(str(layout.supervisor_sock)) > _MAX_UNIX_SOCKET:
                ports["supervisor"] = (
                    recorded.get("supervisor")
                    or assign_ports({}, ["supervisor"], mode="auto", needed_fixed=[])["supervisor"]
                )
            write_json_private(layout.ports_file, dict(ports))
        sec = self._secrets()

        # One-time state: the cluster, the signing key, client secret digests, bao config and seal key.
        if not self._external("postgres") and "postgres" in selected:
            postgres.initdb(layout, sec["postgres_admin"])
        tokens.ensure_key(layout)
        issuer.write_clients(layout, sec["clients"])
        if not self._external("openbao"):
            bao.write_config(layout, ports["openbao"], ports["openbao_cluster"])
            bao.ensure_seal_key(layout)

        pg_superuser = True
        if self._external("postgres"):
            try:
                pg_superuser = postgres.is_superuser(_sqlalchemy_url(self.externals["MSP_DATABASE_URL"]))
            except psycopg.Error as exc:
                raise StackError(f"external PostgreSQL (MSP_DATABASE_URL) is not reachable: {exc}", "postgres") from exc
        env = self._env_values(ports, sec, pg_superuser)
        envfile.write_env(layout.env_file, env)

        conf = render(layout, self._endpoint(sec), self._programs(ports, env, sec), self.repo)
        try:
            if not running:
                write_private(layout.supervisor_conf, conf)
                self.say("starting supervisord")
                start_daemon(layout, self._daemon_env())
            elif layout.supervisor_conf.read_text() != conf:
                write_private(layout.supervisor_conf, conf)
                self.say("supervisor config changed; reloading")
                reload(layout)
        except SupervisorError as exc:
            raise StackError(str(exc)) from exc

        infra = [p for p in selected if p in parts.INFRA]
        apps = [p for p in selected if p in parts.APPS]
        self._start(infra)
        self._wait_ready(infra, env, ports, deadline)
        if "postgres" in selected:
            self._provision_postgres(env, sec, pg_superuser)
        if "openbao" in selected:
            self._bootstrap_bao(env)
            if not bao.is_bootstrapped(env["MSP_VAULT_ADDR"], layout):
                raise StackError("openbao is not bootstrapped (launcher token does not work)", part="openbao")
        if apps:
            already = self._running(apps)
            to_migrate = [s for s in parts.SERVICES if any(parts.SERVICE_OF[a] == s for a in apps if a not in already)]
            self._migrate(to_migrate, env, sec, deadline)
            self._start(apps)
            self._wait_ready(apps, env, ports, deadline)
        self._record_pids()
        return self.urls(selected)

    @staticmethod
    def _portal_port(needed: bool, chosen: dict[str, int]) -> int:
        """Port 8000 for the portal (as 8001-8003 for the APIs); PortInUseError when it is needed and taken."""
        port = parts.PORTAL_PORT
        clash = next((name for name, value in chosen.items() if value == port and name != "portal"), None)
        if needed and (clash is not None or not port_is_free(port)):
            raise PortInUseError(
                f"port {port} for portal is already in use; stop whatever holds it "
                f"or use `mspctl up --ports auto` (MSP_DEVSTACK_PORTS=auto)"
            )
        return port

    def urls(self, names: list[str] | None = None) -> dict[str, str]:
        """{part: URL} for printing (no credentials)."""
        env = self.env
        out: dict[str, str] = {}
        for name in names or list(parts.ALL_PARTS):
            if name == "postgres":
                out[name] = postgres.display_url(env["MSP_DATABASE_URL"])
            elif name == "redis":
                out[name] = _strip_credentials(env["MSP_REDIS_URL"])
            elif name == "openbao":
                out[name] = env["MSP_VAULT_ADDR"]
            elif name == "mail":
                out[name] = env["MSP_MAIL_UI_URL"]
            elif name == "issuer":
                out[name] = env["MSP_JWT_ISSUER"]
            elif name == "vendor_sim":
                out[name] = env["MSP_VENDOR_SIM_URL"]
            elif name in parts.HTTP_APPS:
                out[name] = env[f"MSP_{name.upper()}_URL"]
            else:
                out[name] = self.layout.log(name).as_uri()
        return out

    def _process_infos(self) -> list[dict[str, Any]]:
        if not is_running(self.layout):
            return []
        return list(proxy(self.layout).supervisor.getAllProcessInfo())

    def _record_pids(self) -> None:
        pids: dict[str, dict[str, float]] = {}
        sup = daemon_pid(self.layout)
        infos = [{"name": "supervisord", "pid": sup}, *self._process_infos()] if sup else []
        for info in infos:
            pid = info.get("pid") or 0
            if pid:
                with contextlib.suppress(psutil.Error):
                    pids[str(info["name"])] = {"pid": pid, "create_time": psutil.Process(pid).create_time()}
        write_json_private(self.layout.pids_file, pids)

    def status(self) -> list[PartStatus]:
        """One entry per part: its supervisor state and PID."""
        infos = {i["name"]: i for i in self._process_infos()}
        out = []
        for name in parts.ALL_PARTS:
            if self._external(name):
                out.append(PartStatus(name, "EXTERNAL", None))
                continue
            info = infos.get(name)
            if info is None:
                out.append(PartStatus(name, "STOPPED", None))
            else:
                out.append(PartStatus(name, str(info["statename"]), int(info["pid"]) or None))
        return out

    def pid(self, part: str) -> int | None:
        """The PID of a running part, else None."""
        return next((s.pid for s in self.status() if s.name == part), None)

    def _require(self, part: str) -> Any:
        if part not in parts.ALL_PARTS:
            raise StackError(f"unknown part {part!r}; parts are: {', '.join(parts.ALL_PARTS)}", part=part)
        if self._external(part):
            raise StackError(f"{part} is external (set by environment); mspctl does not manage it", part=part)
        if not is_running(self.layout):
            raise StackError("the stack is not running; run `mspctl up` first", part=part)
        return proxy(self.layout).supervisor

    def stop(self, part: str) -> None:
        """Stop one part (supervisor will not restart it)."""
        server = self._require(part)
        with contextlib.suppress(xmlrpc.client.Fault):  # NOT_RUNNING: already stopped
            server.stopProcess(part)

    def start(self, part: str, timeout: float = 60.0) -> None:
        """Start one part and wait until it is ready."""
        self._require(part)
        self._start([part])
        self._wait_ready([part], self.env, self.ports, time.monotonic() + timeout)
        self._record_pids()

    def kill(self, part: str) -> int:
        """SIGKILL one part's process group (supervisor restarts it); returns the killed PID."""
        server = self._require(part)
        pid = int(server.getProcessInfo(part)["pid"])
        if not pid:
            raise StackError(f"{part} is not running", part=part)
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return pid

    def _known_processes(self) -> list[psutil.Process]:
        procs: dict[int, psutil.Process] = {}
        for entry in read_json(self.layout.pids_file).values():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(int(entry["pid"]))
                if abs(proc.create_time() - float(entry["create_time"])) < 1.0:
                    procs[proc.pid] = proc
        sup = daemon_pid(self.layout)
        if sup:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(sup)
                for proc in [root, *root.children(recursive=True)]:
                    procs[proc.pid] = proc
        return list(procs.values())

    def down(self, timeout: float = 60.0) -> list[int]:
        """Stop everything and make sure no process is left; returns PIDs that had to be SIGKILLed."""
        if not self.layout.root.exists():
            return []
        with self._lock():
            procs = self._known_processes()
            for info in self._process_infos():
                with contextlib.suppress(psutil.Error):
                    if info.get("pid"):
                        proc = psutil.Process(int(info["pid"]))
                        procs += [proc, *proc.children(recursive=True)]
            if is_running(self.layout):
                with contextlib.suppress(OSError, xmlrpc.client.Error, SupervisorError):
                    server = proxy(self.layout).supervisor
                    # supervisord's own shutdown stops one group per 1 s tick; stop all at once first.
                    server.stopAllProcesses(False)
                    stop_deadline = time.monotonic() + timeout
                    while time.monotonic() < stop_deadline and any(
                        i["statename"] in ("RUNNING", "STARTING", "STOPPING", "BACKOFF")
                        for i in server.getAllProcessInfo()
                    ):
                        time.sleep(0.1)
                    server.shutdown()
            _, alive = psutil.wait_procs(procs, timeout=timeout)
            forced = []
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
                    forced.append(proc.pid)
            psutil.wait_procs(alive, timeout=5)
            self.layout.pids_file.unlink(missing_ok=True)
            return forced

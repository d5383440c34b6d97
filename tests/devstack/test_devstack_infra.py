"""PostgreSQL, Redis, mail sink, env file, status and port handling of an infra stack."""

from __future__ import annotations

import smtplib
import socket
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import redis

from mspctl import parts
from mspctl.envfile import ALL_KEYS
from mspctl.layout import Layout
from mspctl.postgres import libpq_url, system_user
from mspctl.redis import ping

pytestmark = pytest.mark.timeout(120)


def test_env_file_has_exactly_the_contract_keys_and_is_private(infra):
    layout = Layout(infra.dir)
    assert layout.env_file.stat().st_mode & 0o777 == 0o600
    env = infra.env
    assert set(env) == set(ALL_KEYS)
    assert env["MSP_ENV"] == "dev"
    for key in ("MSP_DATABASE_URL", "INTAKE_DATABASE_URL", "VENDOR_SYNC_DATABASE_URL", "SECRETS_BROKER_DATABASE_URL"):
        assert env[key].startswith("postgresql+psycopg://"), key
        assert ":5432/" not in env[key]
    assert ":6379" not in env["MSP_REDIS_URL"]
    sim_port = env["MSP_VENDOR_SIM_URL"].rsplit(":", 1)[1]
    assert env["VENDOR_SYNC_RDAP_BOOTSTRAP_URL"] == f"{env['MSP_VENDOR_SIM_URL']}/rdap/bootstrap/dns.json"
    assert env["VENDOR_SYNC_HTTP_ALLOWED_HOSTS"] == f"http://127.0.0.1:{sim_port}"


def test_each_service_role_owns_its_schema_only(infra):
    env = infra.env
    with psycopg.connect(libpq_url(env["MSP_DATABASE_URL"]), autocommit=True) as admin:
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        admin.execute("CREATE TABLE IF NOT EXISTS vendor_sync.t_probe (id int)")
    for service in parts.SERVICES:
        url = env[f"{service.upper()}_DATABASE_URL"]
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            assert conn.execute("SELECT current_user, current_schema()").fetchone() == (service, service)
            conn.execute("CREATE TABLE IF NOT EXISTS probe (id int)")
            conn.execute("DROP TABLE probe")
            assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    with psycopg.connect(libpq_url(env["INTAKE_DATABASE_URL"]), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM vendor_sync.t_probe")


def test_postgres_runs_as_its_own_user_on_loopback(infra):
    pid = infra.stack.pid("postgres")
    proc = psutil.Process(pid)
    if system_user():
        assert proc.username() == system_user()
    cmdline = proc.cmdline()
    assert cmdline[cmdline.index("-h") + 1] == "127.0.0.1"


def test_redis_answers_without_persistence(infra):
    assert ping(infra.env["MSP_REDIS_URL"])
    client = redis.Redis.from_url(infra.env["MSP_REDIS_URL"], decode_responses=True)
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
    finally:
        client.close()


def test_mail_sink_stores_and_lists_messages(infra):
    env = infra.env
    host, port = env["MSP_SMTP_URL"].removeprefix("smtp://").split(":")
    subject = f"probe {time.time()}"
    msg = EmailMessage()
    msg["From"] = "noreply@msp.example"
    msg["To"] = "client@example.com"
    msg["Subject"] = subject
    msg.set_content("a link only: https://example.invalid/x")
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.send_message(msg)
    mail_dir = Layout(infra.dir).mail_dir
    stored = [p for p in mail_dir.glob("*.eml") if subject in p.read_text()]
    assert len(stored) == 1
    listed = httpx.get(env["MSP_MAIL_UI_URL"] + "messages.json").json()
    [item] = [m for m in listed if m["subject"] == subject]
    assert item["to"] == ["client@example.com"] and item["from"] == "noreply@msp.example"
    assert item["text"].strip() == "a link only: https://example.invalid/x" and item["html"] is None
    assert set(item) == {"id", "from", "to", "subject", "date", "text", "html"}
    page = httpx.get(env["MSP_MAIL_UI_URL"])
    assert page.status_code == 200 and subject in page.text


def test_status_prints_one_line_per_part(mspctl, infra):
    result = mspctl(infra.dir, "status")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == list(parts.ALL_PARTS)
    assert all(len(line) == 3 for line in lines)
    states = {line[0]: (line[1], line[2]) for line in lines}
    for part in parts.TEST_INFRA:
        assert states[part][0] == "RUNNING" and states[part][1].isdigit()
    for part in ("intake", "intake-relay", "intake-worker", "intake-beat"):
        assert states[part] == ("STOPPED", "-")


def test_second_up_changes_nothing(infra):
    before = infra.stack.status()
    conf = Layout(infra.dir).supervisor_conf.stat().st_mtime_ns
    infra.stack.up(only=list(parts.TEST_INFRA))
    assert infra.stack.status() == before
    assert Layout(infra.dir).supervisor_conf.stat().st_mtime_ns == conf


def test_fixed_api_port_taken_fails_clearly(mspctl, tmp_path: Path):
    holder = None
    try:
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 8001))
        holder.listen()
    except OSError:
        holder = None  # already taken by something else (e.g. a `make up` stack): same expectation
    try:
        result = mspctl(tmp_path / "ds", "up", "--detach", "--only", "intake", "--ports", "fixed")
    finally:
        if holder:
            holder.close()
    assert result.returncode == 1
    assert "8001" in result.stderr and "intake" in result.stderr
    assert not (tmp_path / "ds" / "supervisord.pid").exists()


def test_unknown_part_is_refused(mspctl, tmp_path: Path):
    result = mspctl(tmp_path / "ds", "up", "--detach", "--only", "nosuchpart")
    assert result.returncode == 1
    assert "nosuchpart" in result.stderr

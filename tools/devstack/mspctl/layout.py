"""Where everything lives inside a devstack dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIRNAME = ".devstack"


def devstack_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The devstack dir: the explicit one, else `MSP_DEVSTACK_DIR`, else `.devstack/` in the cwd."""
    if explicit is not None:
        return Path(explicit).absolute()
    env = os.environ.get("MSP_DEVSTACK_DIR")
    return Path(env).absolute() if env else Path.cwd() / DEFAULT_DIRNAME


def repo_root() -> Path:
    """The monorepo root (programs run with it as cwd)."""
    # mspctl is installed editable from tools/devstack/mspctl, so the repo is three levels up.
    candidate = Path(__file__).resolve().parents[3]
    if (candidate / "services").is_dir():
        return candidate
    return Path.cwd()


@dataclass(frozen=True)
class Layout:
    """Paths of one devstack dir."""

    root: Path

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def pids_file(self) -> Path:
        return self.root / "pids.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def supervisor_sock(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def bao_dir(self) -> Path:
        return self.root / "bao"

    @property
    def bao_hcl(self) -> Path:
        return self.root / "bao.hcl"

    @property
    def bao_data(self) -> Path:
        # Raft storage: every stored secret, kept across `down` and `up`.
        return self.bao_dir / "data"

    @property
    def bao_seal_key(self) -> Path:
        return self.bao_dir / "seal.key"

    @property
    def bao_recovery_key(self) -> Path:
        return self.bao_dir / "recovery-key"

    @property
    def bao_audit_log(self) -> Path:
        return self.bao_dir / "audit.log"

    @property
    def root_token(self) -> Path:
        return self.bao_dir / "root-token"

    @property
    def launcher_token(self) -> Path:
        return self.bao_dir / "launcher-token"

    @property
    def jwt_dir(self) -> Path:
        return self.root / "jwt"

    @property
    def signing_key(self) -> Path:
        return self.jwt_dir / "signing-key.pem"

    @property
    def clients_file(self) -> Path:
        return self.jwt_dir / "clients.json"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    @property
    def beat_schedule(self) -> Path:
        return self.root / "celerybeat-schedule"

    @property
    def intake_beat_schedule(self) -> Path:
        # Each beat keeps its own schedule file: two beats on one shelve would overwrite each other.
        return self.root / "intake-celerybeat-schedule"

    def log(self, part: str) -> Path:
        """Log file of one part."""
        return self.logs / f"{part}.log"

    def create(self) -> None:
        """Create the dir tree with private modes."""
        self.root.mkdir(parents=True, exist_ok=True)
        # 0711: the postgres system user must traverse the dir, but nobody may list it.
        self.root.chmod(0o711)
        for d in (self.logs, self.bao_dir, self.jwt_dir, self.mail_dir, self.redis_dir):
            d.mkdir(exist_ok=True)
            d.chmod(0o700)

"""The simulated vendors' state on disk, so it outlives a restart of the simulator (`make down` / `make up`).

Set by `VENDOR_SIM_STATE_FILE` (or `create_app(state_file=...)`); the dev stack uses
`<devstack>/vendor_sim/state.json`. Without it (the tests' simulators) nothing is read or written.

- The file is one JSON object keyed by vendor (`cloudflare`, `godaddy`, `namecheap`, `mailchannels`), each
  value exactly what `GET /_sim/{vendor}/state` shows (ids included, keys only as fingerprints), so it
  holds no secret. On start it is loaded through the same checks as `PUT /_sim/{vendor}/state`; a file
  that is not valid stops the simulator with a message naming it (remove it to start empty).
- After every request that may change a vendor's state (a `/_sim` write, a vendor write, any Namecheap
  command) the state is saved before the answer goes out, when it differs from what was last saved:
  written to a temporary file beside it, flushed to disk, then renamed over it (a crash leaves the old
  file or the new one, never half of one).
- `POST /_sim/reset` empties the vendors, and so the file too: the file always mirrors the simulator's memory.
- ConnectWise is the one exception to "exactly what GET shows": its entry adds `signing_key` (`{id, key}`), the
  key its callbacks are signed with. That key is no secret of anyone's (the simulator serves it without
  credentials at its key URL); it is kept so a restart does not strand a consumer's cached key. While
  ConnectWise has no ticket and no callback registration its entry is left out (a fresh key at the next start).
- RDAP changes (`PUT /_sim/rdap/domains/{name}`), faults, latency, rate limits and the request log are
  not kept: they are test settings, not a vendor's data.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vendor_sim.state import StateStore
from vendor_sim.validate import Problems

ENV_VAR = "VENDOR_SIM_STATE_FILE"


@runtime_checkable
class FileState(Protocol):
    """A vendor whose file entry is not exactly its /_sim state (ConnectWise: plus its callback signing key)."""

    def file_state(self) -> dict[str, Any] | None:
        """What the file keeps for this vendor; None to leave the vendor out of the file."""
        ...

    def load_file_state(self, body: Any) -> Problems:
        """Load what `file_state` wrote; nothing changes when any problem is returned."""
        ...


class StateFileError(RuntimeError):
    """The state file cannot be read or does not hold valid vendor state."""


def path_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The state file named by VENDOR_SIM_STATE_FILE, or None when it is unset or empty."""
    value = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    return Path(value) if value else None


class StateFile:
    """Loads the vendors' state from one file at start and saves it back after each change."""

    def __init__(self, path: Path, stores: Mapping[str, StateStore]) -> None:
        self.path = path
        self._stores = stores
        self._lock = threading.Lock()
        self._saved: str | None = None

    def load(self) -> bool:
        """Replace each vendor's state with the file's; False when there is no file yet."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateFileError(f"vendor_sim cannot read its state file {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise self._invalid(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise self._invalid("not a JSON object keyed by vendor")
        unknown = sorted(set(data) - set(self._stores))
        if unknown:
            raise self._invalid(f"unknown vendor(s) {', '.join(unknown)}; known: {', '.join(sorted(self._stores))}")
        for vendor, state in data.items():
            store = self._stores[vendor]
            problems = store.load_file_state(state) if isinstance(store, FileState) else store.replace(state)
            if problems:
                first = problems.items[0]
                raise self._invalid(f"{vendor}.{first['field']} {first['detail']}")
        with self._lock:
            self._saved = self.render()
        return True

    def render(self) -> str:
        """Every vendor's state as the file holds it (a FileState vendor with nothing to keep is left out)."""
        state: dict[str, Any] = {}
        for vendor, store in sorted(self._stores.items()):
            kept = store.file_state() if isinstance(store, FileState) else store.snapshot()
            if kept is not None:
                state[vendor] = kept
        return json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self) -> bool:
        """Write the state if it changed since it was last loaded or saved; True when written."""
        with self._lock:
            text = self.render()
            if text == self._saved:
                return False
            self._write(text)
            self._saved = text
            return True

    def _write(self, text: str) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        # The rename itself is durable once the directory is.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _invalid(self, why: str) -> StateFileError:
        return StateFileError(
            f"vendor_sim's state file {self.path} is not valid vendor state: {why}. "
            "Fix it, or remove it to start with empty vendors."
        )

"""What the private OpenBao's file audit device saw (imported by name, like broker_helpers).

OpenBao logs every request and response; secret values and tokens are HMACed, paths and operations
are not. So a test can tell which operations the broker ran on one credential's path, and whether a
read came back wrapped, without any plaintext.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VaultOp:
    """One answered request on a path: its operation and whether the answer was response-wrapped."""

    operation: str
    wrapped: bool


def vault_ops(devstack_dir: Path, path: str) -> list[VaultOp]:
    """Every answered request whose path is exactly `path` (e.g. `msp-kv/data/clients/...`), in log order."""
    from mspctl.layout import Layout

    ops = []
    for line in Layout(devstack_dir).bao_audit_log.read_text().splitlines():
        if path not in line:
            continue
        entry: dict[str, Any] = json.loads(line)
        if entry.get("type") != "response" or entry.get("request", {}).get("path") != path:
            continue
        ops.append(VaultOp(operation=entry["request"]["operation"], wrapped="wrap_info" in entry.get("response", {})))
    return ops

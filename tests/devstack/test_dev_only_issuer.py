"""The dev issuer refuses to start unless MSP_ENV=dev (its own environment, else the devstack's env file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mspctl.issuer import DevOnlyRefused, require_dev_env


def test_dev_in_the_environment_is_accepted(tmp_path: Path) -> None:
    require_dev_env(tmp_path, {"MSP_ENV": "dev"})


def test_the_env_file_decides_when_the_environment_is_silent(tmp_path: Path) -> None:
    (tmp_path / "env").write_text("MSP_ENV=dev\n")
    require_dev_env(tmp_path, {})
    (tmp_path / "env").write_text("MSP_ENV=production\n")
    with pytest.raises(DevOnlyRefused, match=r"MSP_ENV in .*env is 'production'"):
        require_dev_env(tmp_path, {})


@pytest.mark.parametrize("value", ["production", "test", ""])
def test_anything_but_dev_is_refused(tmp_path: Path, value: str) -> None:
    (tmp_path / "env").write_text("MSP_ENV=dev\n")  # the process's own setting wins over the file
    with pytest.raises(DevOnlyRefused, match="runs only with MSP_ENV=dev"):
        require_dev_env(tmp_path, {"MSP_ENV": value})


def test_no_setting_at_all_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevOnlyRefused, match=r"MSP_ENV in .* is 'unset'"):
        require_dev_env(tmp_path, {})


def test_the_process_exits_outside_dev(tmp_path: Path) -> None:
    env = {**os.environ, "MSP_ENV": "production"}
    result = subprocess.run(
        [sys.executable, "-m", "mspctl.issuer", "--devstack", str(tmp_path), "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "the dev issuer refuses to start: MSP_ENV is 'production'" in result.stderr

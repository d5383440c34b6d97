"""The logging and error rendering cannot leak a canary in any encoding."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from mspkit.leakcheck import canary_forms, find_leaks


def test_canary_in_locals_exceptions_settings_and_urls_never_reaches_output():
    canary = "CANARY-" + secrets.token_hex(12)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "leak_script.py"), canary],
        capture_output=True, timeout=60, env={**os.environ, "MSP_ENV": "dev"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    # The script really did log and render (so a silent script cannot pass).
    text = output.decode()
    for marker in ("explicit_failure", "settings_loaded", "calling_vendor", "vendor_unreachable",
                   "RESPONSE /boom 500", "RESPONSE /domain-error 400", "ValueError"):
        assert marker in text, marker
    assert find_leaks(output, canary) == []


def test_canary_forms_cover_the_design_list():
    forms = canary_forms("s3cr/t+")
    assert {"plain", "base64", "json", "url", "hex"} <= set(forms)
    assert "base64" in find_leaks("xx czNjci90Kw xx", "s3cr/t+")
    assert find_leaks("nothing here", "s3cr/t+") == []

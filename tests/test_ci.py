"""In CI (SELDON_NO_SKIP=1, set by .ci/run) a skipped test is a failed one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def run_pytest(tmp_path: Path, no_skip: bool) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_skips.py"
    test.write_text(
        "import pytest\n\n\ndef test_needs_what_is_missing():\n    pytest.skip('no reference venv')\n"
    )
    env = {**os.environ, "SELDON_NO_SKIP": "1" if no_skip else "0"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(test)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_in_ci_and_only_there(tmp_path: Path) -> None:
    ci = run_pytest(tmp_path, no_skip=True)
    assert ci.returncode == 1, ci.stdout
    assert "skipped in CI, where nothing may skip" in ci.stdout and "no reference venv" in ci.stdout
    local = run_pytest(tmp_path, no_skip=False)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout

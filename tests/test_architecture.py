"""The import contracts in .importlinter (layers, a pure core, Twilio only in its channel) hold, ruff
(ruff.toml: format and lint) is content with every file, and the vendored chart library is the pinned one."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted():
    """`ruff format` (ruff.toml) leaves every file as it is: one shape, lines up to 120."""
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_passes_the_linter():
    """`ruff check` (ruff.toml's rule set): no finding, no function above complexity 15, no line over 120."""
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_vendored_chart_library_is_the_pinned_one():
    """bot/static/vendor/chart.umd.min.js is byte for byte the npm build pinned in requirements.txt
    (scripts/vendor-chartjs fetches it): no edited or stale copy is served to the console."""
    pin = re.search(r"^# npm: chart\.js==(\S+) sha256=([0-9a-f]{64})$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin, "requirements.txt pins chart.js"
    vendored = (ROOT / "bot" / "static" / "vendor" / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == pin[2]
    assert vendored.startswith(f"/*!\n * Chart.js v{pin[1]}\n".encode())
    assert "MIT License" in (ROOT / "bot" / "static" / "vendor" / "chart.js.LICENSE.md").read_text()

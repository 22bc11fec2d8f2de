"""`lsq explain`: the effective policy of a service and where each value came from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LSQ = str(Path(sys.executable).with_name("lsq"))

MANIFEST = """\
services:
  web:
    command: "exec python3 -m http.server $PORT --bind 127.0.0.1"
    policy:
      timeout: 5s
      retries: {attempts: 3}
"""


def _lsq(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LSQ, *args], cwd=app, capture_output=True, text=True, timeout=60)


def test_explain_names_the_origin_of_each_value(tmp_path: Path) -> None:
    (tmp_path / "lsq.yaml").write_text(MANIFEST)
    done = _lsq(tmp_path, "explain", "web")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:] if line.strip()}
    assert "5.0" in lines["timeout"] and "lsq.yaml:5:16" in lines["timeout"]
    assert "3" in lines["attempts"] and "lsq.yaml:6:27" in lines["attempts"]
    assert lines["connect_timeout"].rstrip().endswith("# default")
    policy = json.loads(_lsq(tmp_path, "explain", "web", "--json").stdout)["policy"]
    assert policy["timeout"] == {"value": 5.0, "origin": "lsq.yaml"}
    assert policy["retries"]["budget_ratio"]["origin"] == "default"


def test_explain_of_an_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "lsq.yaml").write_text(MANIFEST)
    done = _lsq(tmp_path, "explain", "nope")
    assert done.returncode == 2
    assert "no service 'nope'" in done.stderr and "Traceback" not in done.stderr

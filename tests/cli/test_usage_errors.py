"""Mistyped commands and options: one line naming the problem, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LSQ = str(Path(sys.executable).with_name("lsq"))


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["upp"], "lsq: error: No such command 'upp'. Did you mean 'up'?; see `lsq --help`"),
        (["ps", "--jsn"], "No such option '--jsn'. Did you mean '--json'?; see `lsq ps --help`"),
        (["logs", "--since"], "Option '--since' requires an argument; see `lsq"),
        (["up", "--timeout", "soon"], "'soon' is not a valid float"),
        (["up", "-d", "--timeout", "inf"], "--timeout takes seconds above 0, up to 1e+06; found inf"),
        (["up", "-d", "--timeout=nan"], "--timeout takes seconds above 0, up to 1e+06; found nan"),
        (["up", "--timeout", "0", "-d"], "--timeout takes seconds above 0, up to 1e+06; found 0"),
    ],
)
def test_a_mistyped_command_line_gets_one_line_and_exit_2(
    tmp_path: Path, args: list[str], said: str
) -> None:
    done = subprocess.run(
        [LSQ, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr

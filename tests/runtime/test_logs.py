"""Service output: bad bytes, line assembly, live flushing to a file, and
`lsq logs` filters (B18, B19, B20)."""

from __future__ import annotations

import json
import re
import time

from rthelpers import PY, App, wait_for

BAD_BYTES = """
import os, time
os.write(1, b"\\xff\\xfe raw bytes\\n")
for i in range(1, 200):
    os.write(1, f"tick {i}\\n".encode())
    time.sleep(0.2)
"""


def test_invalid_utf8_is_replaced_and_later_lines_keep_coming(app: App) -> None:
    # B18 (one tick every 0.2 s instead of every second)
    app.write("bad.py", BAD_BYTES)
    app.manifest(f"""
        services:
          bad:
            command: [{PY}, bad.py]
    """)
    up = app.up()
    out = up.wait_output("tick 8")

    assert "\ufffd\ufffd raw bytes" in out
    assert "Traceback" not in out
    ticks = [int(n) for n in re.findall(r"bad-0 +\| tick (\d+)", out)]
    assert ticks == list(range(1, len(ticks) + 1))
    logs = app.logs("bad", until="tick 8")
    assert "\ufffd\ufffd raw bytes" in logs and "tick 8" in logs


SLOW_PRINTER = """
import time
for i in range(1, 100):
    print(f"line {i} at {time.time():.3f}")
    time.sleep(0.7)
"""


def test_output_to_a_file_is_flushed_line_by_line(app: App) -> None:
    # B19: `lsq up > out.log`; the service is plain `python` without -u.
    app.write("slow.py", SLOW_PRINTER)
    app.manifest(f"""
        services:
          slow:
            command: [{PY}, slow.py]
    """)
    up = app.up()
    arrived: dict[int, float] = {}
    deadline = time.monotonic() + 10
    while len(arrived) < 5 and time.monotonic() < deadline:
        now = time.time()
        for n, sent in re.findall(r"line (\d+) at ([\d.]+)", up.output()):
            arrived.setdefault(int(n), now - float(sent))
        time.sleep(0.05)

    assert len(arrived) >= 5, up.output()
    late = {
        n: round(lag, 2) for n, lag in arrived.items() if lag > 1.5
    }  # block buffering would hold lines for many seconds
    assert not late, f"lines reached the file late (seconds): {late}"


PIECES = """
import os, time
for i in range(5):
    for piece in (b"a", b"b", b"c"):
        os.write(1, piece)
        time.sleep(0.02)
    os.write(1, b"\\n")
for pct in (10, 50, 100):
    os.write(1, f"\\rprogress {pct}%".encode())
    time.sleep(0.02)
os.write(1, b"\\n")
os.write(1, b"no newline yet")
time.sleep(2)
os.write(1, b"\\ndone\\n")
time.sleep(300)
"""


def test_pieces_of_a_line_are_joined_and_a_partial_line_is_flushed(app: App) -> None:
    # B20
    app.write("pieces.py", PIECES)
    app.manifest(f"""
        services:
          pieces:
            command: [{PY}, pieces.py]
    """)
    up = app.up()
    up.wait_output("no newline yet", timeout=10)
    out = up.wait_output("| done")

    lines = [line.split("| ", 1)[1] for line in out.splitlines() if "pieces-0 " in line]
    assert lines.count("abc") == 5
    assert not {"a", "b", "c", "ab", "bc"} & set(lines)
    assert "progress 100%" in lines
    assert not any("10%" in line for line in lines)
    assert "no newline yet \u2026" in lines  # flushed after idle, marked partial
    assert out.index("no newline yet") < out.index("| done")

    assert "" not in lines
    records = [
        json.loads(raw)
        for raw in (app.state_dir() / "logs" / "pieces.log").read_text().splitlines()
    ]
    partial = [r for r in records if r["line"] == "no newline yet"]
    assert len(partial) == 1 and partial[0]["partial"] is True
    assert not any(r.get("partial") for r in records if r["line"] == "abc")
    logs = app.logs("pieces", until="done")
    assert "no newline yet \u2026" in logs
    assert "pieces-0      | \n" not in logs  # the newline that ended the partial line


TIMED = """
import time
print("alpha early", flush=True)
print("beta early", flush=True)
time.sleep(4)
print("alpha late", flush=True)
time.sleep(300)
"""


def test_logs_since_and_grep_filter_lines(app: App) -> None:
    app.write("timed.py", TIMED)
    app.manifest(f"""
        services:
          timed:
            command: [{PY}, timed.py]
          other-with-a-long-name:
            command: [{PY}, -c, "print('alpha other', flush=True); import time; time.sleep(300)"]
    """)
    up = app.up()
    up.wait_output("alpha late")

    # The runtime flushes the log files a few times a second.
    def all_logs() -> str:
        out = app.lsq("logs").stdout
        return out if "alpha late" in out else ""

    everything = str(wait_for(all_logs, 3, "alpha late in lsq logs"))
    assert all(t in everything for t in ("alpha early", "beta early", "alpha other"))
    # Names as long as the app's longest one: the lines align.
    assert len({line.index(" | ") for line in everything.splitlines()}) == 1, everything
    grep = app.lsq("logs", "--grep", "alpha", "timed").stdout
    assert "alpha early" in grep and "alpha late" in grep
    assert "beta" not in grep and "alpha other" not in grep
    late_ts = max(
        r["ts"]
        for r in map(
            json.loads,
            (app.state_dir() / "logs" / "timed.log").read_text().splitlines(),
        )
    )
    # The early lines are at least 4 s older than the late one, so a margin
    # under 4 s keeps them out however long `lsq logs` takes to start.
    window = time.time() - late_ts + 3.0
    recent = app.lsq("logs", "--since", f"{window:.2f}s", "timed").stdout
    assert "alpha late" in recent and "early" not in recent
    assert "alpha early" in app.lsq("logs", "--since", "5m").stdout

    bad = app.lsq("logs", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    unknown = app.lsq("logs", "nosuch")
    assert unknown.returncode == 2 and "no service 'nosuch'" in unknown.stderr

    up.send(2)
    up.wait()
    wait_for(
        lambda: "alpha late" in app.lsq("logs", "timed").stdout,
        5,
        "logs after the runtime stopped",
    )


def test_a_partial_line_is_flushed_when_the_process_exits(app: App) -> None:
    # B20: the trailing partial line at exit, before the idle flush could run.
    app.manifest("""
        services:
          once:
            command: printf 'first\\nlast words'; exit 0
    """)
    up = app.up()
    out = up.wait_output("once-0: exited")

    assert "last words \u2026" in out
    assert out.index("last words") < out.index("once-0: exited")

    def records() -> list[tuple[str, bool]]:
        lines = (app.state_dir() / "logs" / "once.log").read_text().splitlines()
        return [(r["line"], r.get("partial", False)) for r in map(json.loads, lines)]

    wait_for(lambda: len(records()) == 2, 5, "two records in once.log")
    assert records() == [("first", False), ("last words", True)]

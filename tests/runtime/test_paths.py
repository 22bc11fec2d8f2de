"""Paths with spaces: the app folder, a service's cwd and a relative command (B26)."""

from __future__ import annotations

from pathlib import Path

from rthelpers import App

SERVE_SH = """
#!/bin/sh
echo "cwd=[$(pwd)] arg=[$1]"
echo "ran from a folder with a space" > "started here.txt"
exec sleep 300
"""


def test_services_start_in_folders_with_spaces(tmp_path: Path) -> None:
    # B26
    app = App(tmp_path / "my project")
    try:
        app.write("api v2/serve it.sh", SERVE_SH, mode=0o755)
        app.manifest("""
            services:
              argv:
                cwd: api v2
                command: ["./serve it.sh", "one arg"]
              shell:
                cwd: api v2
                command: '"./serve it.sh" "other arg"'
        """)
        result = app.lsq("up", "-d", "--timeout", "20")
        app.track_runtime()
        assert result.returncode == 0, result.stdout + result.stderr

        service_dir = app.root / "api v2"
        logs = app.logs(until="other arg")
        assert f"cwd=[{service_dir}] arg=[one arg]" in logs
        assert f"cwd=[{service_dir}] arg=[other arg]" in logs
        assert (service_dir / "started here.txt").exists()
        assert [s["state"] for s in app.ps()["services"]] == ["running", "running"]  # type: ignore[attr-defined]
    finally:
        app.cleanup()


def test_a_missing_cwd_is_reported_with_the_path_quoted(tmp_path: Path) -> None:
    app = App(tmp_path / "my project")
    try:
        app.manifest("""
            services:
              api:
                cwd: api v3
                command: [./serve.sh]
        """)
        result = app.lsq("up", "-d", "--timeout", "20")
        app.track_runtime()
        message = result.stderr + result.stdout
        assert result.returncode != 0
        assert f"'{app.root / 'api v3'}'" in message, message
        assert "Traceback" not in message
    finally:
        app.cleanup()

#!/usr/bin/env python3
"""Take docs/screenshot.png: the dashboard's Services view with the example shop running.

Usage: .venv/bin/python bench/dashboard/screenshot.py [--out docs/screenshot.png]

Copies examples/shop to a tmp folder (notifications/node_modules is linked,
not copied), starts it with `lsq up -d`, places a few orders over ~15 s so the
traffic columns have figures, shoots the page in headless chromium and stops
the app. Needs /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LSQ = str(Path(sys.executable).parent / "lsq")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def copy_shop(dest: Path) -> None:
    src = ROOT / "examples" / "shop"
    shutil.copytree(
        src, dest, ignore=shutil.ignore_patterns("node_modules", ".lsq", "__pycache__")
    )
    modules = src / "notifications" / "node_modules"
    if modules.exists():
        (dest / "notifications" / "node_modules").symlink_to(modules)


def order(url: str, n: int) -> None:
    body = json.dumps(
        {"product_id": 1 + n % 3, "qty": 1, "email": f"c{n}@shop.example"}
    ).encode()
    req = urllib.request.Request(
        f"{url}/orders",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError:
        pass  # declined or out of stock: still traffic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="lsq-shot-") as tmp:
        app = Path(tmp) / "shop"
        copy_shop(app)
        up = subprocess.run(
            [LSQ, "up", "-d", "--timeout", "180"],
            cwd=app,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        try:
            if up.returncode != 0:
                sys.exit(f"lsq up failed:\n{up.stdout}\n{up.stderr}")
            ps = json.loads(
                subprocess.run(
                    [LSQ, "ps", "--json"],
                    cwd=app,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            orders = next(s["address"] for s in ps["services"] if s["name"] == "orders")
            url = subprocess.run(
                [LSQ, "dashboard"], cwd=app, capture_output=True, text=True, check=True
            ).stdout.strip()
            with sync_playwright() as play:
                browser = play.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1440, "height": 760})
                page.goto(url)
                page.wait_for_selector("tr.instance")
                end = time.monotonic() + 15
                n = 0
                while time.monotonic() < end and n < 300:
                    order(orders, n)
                    n += 1
                    time.sleep(0.1)
                time.sleep(2.5)
                page.screenshot(path=str(args.out))
                browser.close()
            print(f"wrote {args.out} after {n} orders")
        finally:
            subprocess.run(
                [LSQ, "down"], cwd=app, capture_output=True, timeout=120, check=False
            )


if __name__ == "__main__":
    main()

"""Catalog: products with stock, in its own SQLite database.

GET  /products                   all products
GET  /products/{id}              one product
POST /products/{id}/reserve      {"qty": n} takes n from stock, 409 if short
POST /products/{id}/release      {"qty": n} puts n back (an order fell through)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common.web import App, HTTPError, Request, log, required_env, serve, sqlite_path

DB_PATH = sqlite_path(required_env("DATABASE_URL"))

SEED = [
    ("Espresso cup", 1200, 40),
    ("Pour-over kettle", 4500, 10),
    ("Mechanical keyboard", 8900, 25),
    ("Desk lamp", 3900, 5),
]


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """One short-lived connection per use: simple and safe across threads."""
    db = sqlite3.connect(DB_PATH, timeout=5.0, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        yield db
    finally:
        db.close()


def create_and_seed() -> None:
    """Create the table and the sample products; running it again changes nothing."""
    with connect() as db:
        # Two replicas may open a new file at once. When both hold a read lock
        # and want to write, SQLite answers "database is locked" at once to
        # one of them instead of waiting (its deadlock rule): try again.
        for attempt in range(100):
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        db.execute(
            "CREATE TABLE IF NOT EXISTS products ("
            " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
            " price_cents INTEGER NOT NULL, stock INTEGER NOT NULL CHECK (stock >= 0))"
        )
        db.executemany(
            "INSERT OR IGNORE INTO products (name, price_cents, stock)"
            " VALUES (?, ?, ?)",
            SEED,
        )


def as_json(row: sqlite3.Row) -> dict[str, Any]:
    return {key: row[key] for key in row.keys()}


def find(db: sqlite3.Connection, product_id: str) -> dict[str, Any]:
    row = db.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        raise HTTPError(404, f"no product with id {product_id}")
    return as_json(row)


def quantity(request: Request) -> int:
    qty = request.json().get("qty")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
        raise HTTPError(422, f"qty must be a whole number of 1 or more, found {qty!r}")
    return qty


def check_health() -> None:
    with connect() as db:
        db.execute("SELECT count(*) FROM products").fetchone()


app = App(health=check_health)


@app.route("GET", "/products")
def list_products(request: Request) -> tuple[int, Any]:
    with connect() as db:
        rows = db.execute("SELECT * FROM products ORDER BY id").fetchall()
    return 200, [as_json(row) for row in rows]


@app.route("GET", r"/products/(\d+)")
def get_product(request: Request) -> tuple[int, Any]:
    with connect() as db:
        return 200, find(db, request.params[0])


@app.route("POST", r"/products/(\d+)/reserve")
def reserve(request: Request) -> tuple[int, Any]:
    product_id, qty = request.params[0], quantity(request)
    with connect() as db:
        # One conditional UPDATE: two concurrent reservations can never
        # both take the last items.
        taken = db.execute(
            "UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?",
            (qty, product_id, qty),
        ).rowcount
        product = find(db, product_id)
    if not taken:
        raise HTTPError(
            409,
            f"not enough stock: asked for {qty}, {product['stock']} left",
            stock=product["stock"],
        )
    log("info", "reserved", product_id=product["id"], qty=qty, stock=product["stock"])
    return 200, {**product, "reserved": qty}


@app.route("POST", r"/products/(\d+)/release")
def release(request: Request) -> tuple[int, Any]:
    product_id, qty = request.params[0], quantity(request)
    with connect() as db:
        db.execute(
            "UPDATE products SET stock = stock + ? WHERE id = ?", (qty, product_id)
        )
        product = find(db, product_id)
    log("info", "released", product_id=product["id"], qty=qty, stock=product["stock"])
    return 200, {**product, "released": qty}


if __name__ == "__main__":
    create_and_seed()
    serve(app)

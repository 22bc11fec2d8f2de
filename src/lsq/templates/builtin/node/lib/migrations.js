"use strict";
// Schema migrations, applied in order at start-up. Append; never edit one that shipped.

module.exports = [
  {
    version: 1,
    name: "create items",
    sqlite:
      "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT," +
      " name TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    postgres:
      "CREATE TABLE items (id SERIAL PRIMARY KEY," +
      " name TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
  },
];

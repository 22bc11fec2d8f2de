"use strict";
// The data store: SQLite (a file, or memory) or PostgreSQL, chosen by DATABASE_URL.
// sqlite:////abs/path.db opens a file; postgresql://... a server.

const migrations = require("./migrations");

class Database {
  constructor(url) {
    this.url = url || "";
    this.dialect = this.url.startsWith("postgres") ? "postgres" : "sqlite";
    this.conn = null;
  }

  async connect() {
    if (this.dialect === "postgres") {
      const { Pool } = require("pg");
      this.conn = new Pool({ connectionString: this.url, max: 4 });
      // An idle connection the server closes must not crash the process;
      // the next query reconnects, and /health/ready reports the outage.
      this.conn.on("error", () => {});
      return;
    }
    const { Database: Sqlite } = require("node-sqlite3-wasm");
    const path = this.url ? this.url.slice("sqlite:///".length) : ":memory:";
    this.conn = new Sqlite(path);
    this.conn.exec("PRAGMA busy_timeout = 5000");
  }

  async close() {
    if (!this.conn) return;
    if (this.dialect === "postgres") await this.conn.end();
    else this.conn.close();
    this.conn = null;
  }

  // Rows as plain objects; `?` placeholders in both dialects.
  async query(sql, params = []) {
    if (this.dialect === "postgres") {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      return (await this.conn.query(text, params)).rows;
    }
    return this.conn.all(sql, params);
  }

  async ping() {
    try {
      await this.query("SELECT 1 AS ok");
      return true;
    } catch {
      return false;
    }
  }

  async migrate() {
    if (this.dialect === "postgres") return this.migratePostgres();
    this.conn.exec("BEGIN IMMEDIATE");
    try {
      const applied = await this.applyPending((sql, p) => this.query(sql, p));
      this.conn.exec("COMMIT");
      return applied;
    } catch (err) {
      this.conn.exec("ROLLBACK");
      throw err;
    }
  }

  async migratePostgres() {
    // Replicas may start together: one of them migrates at a time.
    const client = await this.conn.connect();
    try {
      await client.query("SELECT pg_advisory_lock(7261)");
      const run = async (sql, params = []) => {
        let n = 0;
        const text = sql.replace(/\?/g, () => `$${++n}`);
        return (await client.query(text, params)).rows;
      };
      return await this.applyPending(run);
    } finally {
      await client.query("SELECT pg_advisory_unlock(7261)");
      client.release();
    }
  }

  async applyPending(run) {
    await run(
      "CREATE TABLE IF NOT EXISTS schema_migrations" +
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    );
    const done = new Set(
      (await run("SELECT version FROM schema_migrations")).map((r) => Number(r.version)),
    );
    const applied = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await run(m[this.dialect]);
      await run("INSERT INTO schema_migrations VALUES (?, ?)", [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  }
}

module.exports = { Database };

"use strict";
// The HTTP API: one example resource, `items`, plus health, metrics and OpenAPI.

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { Database } = require("./db");
const obs = require("./observability");
const settings = require("./settings");

const OPENAPI = fs.readFileSync(path.join(__dirname, "..", "openapi.json"));
const FAVICON = fs.readFileSync(path.join(__dirname, "..", "static", "favicon.png"));
const ITEM = /^\/items\/(\d+)$/;

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function send(res, status, body, type = "application/json") {
  const raw = typeof body === "string" || Buffer.isBuffer(body);
  const data = raw ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": type });
  res.end(data);
}

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new HttpError(413, "body too large");
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
  } catch {
    throw new HttpError(400, "body is not JSON");
  }
}

function validName(body) {
  const name = body && body.name;
  if (typeof name !== "string" || name.length < 1 || name.length > 200) {
    throw new HttpError(422, "name: expected a string of 1 to 200 characters");
  }
  return name;
}

// Route a request; returns [route template, handler].
function route(db, method, url) {
  const p = url.split("?")[0];
  if (p === "/health/live" && method === "GET") return ["/health/live", async (req, res) => send(res, 200, { status: "ok" })];
  if (p === "/health/ready" && method === "GET")
    return ["/health/ready", async (req, res) => {
      if (await db.ping()) send(res, 200, { status: "ok" });
      else send(res, 503, { status: "unavailable" });
    }];
  if (p === "/metrics" && method === "GET")
    return ["/metrics", async (req, res) => send(res, 200, await obs.registry.metrics(), obs.registry.contentType)];
  if (p === "/openapi.json" && method === "GET") return ["/openapi.json", async (req, res) => send(res, 200, OPENAPI, "application/json")];
  if (p === "/favicon.ico" && method === "GET") return ["/favicon.ico", async (req, res) => send(res, 200, FAVICON, "image/png")];
  if (p === "/items" && method === "GET")
    return ["/items", async (req, res) => send(res, 200, await db.query("SELECT id, name FROM items ORDER BY id"))];
  if (p === "/items" && method === "POST")
    return ["/items", async (req, res) => {
      const name = validName(await readJson(req));
      const [row] = await db.query("INSERT INTO items (name) VALUES (?) RETURNING id, name", [name]);
      obs.log("info", "item created", { item_id: row.id });
      send(res, 201, row);
    }];
  const match = ITEM.exec(p);
  if (match && (method === "GET" || method === "DELETE"))
    return ["/items/{id}", async (req, res) => {
      const id = Number(match[1]);
      const sql = method === "GET" ? "SELECT id, name FROM items WHERE id = ?" : "DELETE FROM items WHERE id = ? RETURNING id";
      const rows = await db.query(sql, [id]);
      if (!rows.length) throw new HttpError(404, `no item ${id}`);
      if (method === "GET") send(res, 200, rows[0]);
      else send(res, 204, "", "text/plain");
    }];
  return ["unmatched", async () => { throw new HttpError(404, "not found"); }];
}

async function handle(db, req, res) {
  const trace = obs.traceFromHeader(req.headers.traceparent);
  const start = process.hrtime.bigint();
  const startNs = BigInt(Date.now()) * 1000000n;
  const [template, handler] = route(db, req.method, req.url);
  await obs.traces.run(trace, async () => {
    try {
      await handler(req, res);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) obs.log("error", "request failed", { error: String(err && err.stack) });
      if (!res.headersSent) send(res, status, { detail: err.message });
      else res.end();
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const labels = { method: req.method, route: template };
    obs.metrics.requests.inc({ ...labels, status: String(res.statusCode) });
    obs.metrics.latency.observe(labels, seconds);
    if (res.statusCode >= 500) obs.metrics.errors.inc(labels);
    // Health probes come every second: keep them out of the normal log.
    const level = template.startsWith("/health") ? "debug" : "info";
    obs.log(level, "request", {
      method: req.method, path: req.url.split("?")[0], status: res.statusCode,
      duration_ms: Math.round(seconds * 100000) / 100,
    });
    if (settings.OTLP_ENDPOINT) {
      require("./otel").recordSpan({
        traceId: trace.traceId, spanId: trace.spanId, parentId: trace.parentId,
        name: `${req.method} ${template}`, startNs, endNs: BigInt(Date.now()) * 1000000n,
        status: res.statusCode,
      });
    }
  });
}

// Connect, migrate, listen; resolves to the listening server.
async function start({ port = settings.PORT, host = settings.HOST, databaseUrl = settings.DATABASE_URL } = {}) {
  const db = new Database(databaseUrl);
  await db.connect();
  const applied = await db.migrate();
  const server = http.createServer((req, res) => handle(db, req, res));
  server.db = db;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  obs.log("info", "started", { migrations: applied, port: server.address().port });
  return server;
}

async function stop(server) {
  await new Promise((resolve) => server.close(resolve));
  await server.db.close();
  obs.log("info", "stopped");
}

module.exports = { start, stop };

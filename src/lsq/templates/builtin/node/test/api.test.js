"use strict";
// The service's own tests: `npm test`.

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { after, before, test } = require("node:test");
const { start, stop } = require("../lib/app");

let server;
let base;
let dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "svc-test-"));
  server = await start({ port: 0, host: "127.0.0.1", databaseUrl: `sqlite:///${dir}/test.db` });
  base = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  await stop(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("health answers", async () => {
  assert.equal((await fetch(`${base}/health/live`)).status, 200);
  assert.equal((await fetch(`${base}/health/ready`)).status, 200);
});

test("items round trip", async () => {
  const created = await fetch(`${base}/items`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "first" }),
  });
  assert.equal(created.status, 201);
  const { id } = await created.json();
  assert.deepEqual(await (await fetch(`${base}/items/${id}`)).json(), { id, name: "first" });
  assert.equal((await fetch(`${base}/items/${id}`, { method: "DELETE" })).status, 204);
  assert.equal((await fetch(`${base}/items/${id}`)).status, 404);
});

test("a bad item is refused", async () => {
  const res = await fetch(`${base}/items`, { method: "POST", body: JSON.stringify({ name: "" }) });
  assert.equal(res.status, 422);
});

test("metrics count requests", async () => {
  await fetch(`${base}/items`);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /http_requests_total\{method="GET",route="\/items",status="200"\}/);
  assert.match(text, /http_request_duration_seconds_bucket/);
});

test("openapi describes items", async () => {
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  assert.ok(doc.paths["/items"]);
});

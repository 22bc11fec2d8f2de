// Notifications: keeps every message the shop sends to a customer.
//
//   POST /notify         {"order_id", "email", "text"} -> 201 with the stored message
//   GET  /notifications  every message, oldest first
//   GET  /health         200 once the database answers
//
// The data lives in a real SQLite file (DATABASE_URL). sql.js is SQLite
// compiled to WebAssembly: pure JavaScript, no native build. It works on an
// in-memory copy, so after each write the whole database is written to a
// temporary file that is then renamed over the old one; a crash mid-write
// never leaves a half-written database behind.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const SERVICE = process.env.LSQ_SERVICE || 'notifications';
const INSTANCE = process.env.LSQ_INSTANCE || `${SERVICE}-0`;

function log(level, msg, fields = {}) {
  const line = {
    ts: new Date().toISOString(), level, service: SERVICE, instance: INSTANCE, msg, ...fields,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    log('error', `${name} is not set; run this service with \`lsq up\``);
    process.exit(2);
  }
  return value;
}

function databasePath(url) {
  const prefix = 'sqlite:///';
  if (!url.startsWith(prefix)) {
    log('error', `DATABASE_URL must be a sqlite:/// URL, found ${url}`);
    process.exit(2);
  }
  return url.slice(prefix.length);
}

function loadSqlJs() {
  try {
    return require('sql.js');
  } catch (err) {
    log('error', 'sql.js is not installed; run: npm ci --prefix examples/shop/notifications');
    process.exit(2);
  }
}

async function openDatabase(file) {
  const SQL = await loadSqlJs()();
  const db = fs.existsSync(file) ? new SQL.Database(fs.readFileSync(file)) : new SQL.Database();
  db.run(`CREATE TABLE IF NOT EXISTS notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            order_id TEXT NOT NULL, email TEXT NOT NULL, text TEXT NOT NULL,
            created_at TEXT NOT NULL)`);
  return db;
}

function save(db, file) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, db.export());
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function rows(db, sql, params = []) {
  const stmt = db.prepare(sql);
  try {
    stmt.bind(params);
    const out = [];
    while (stmt.step()) out.push(stmt.getAsObject());
    return out;
  } finally {
    stmt.free();
  }
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function validate(body) {
  const problems = [];
  for (const key of ['order_id', 'email', 'text']) {
    if (typeof body[key] !== 'string' || body[key] === '') {
      problems.push(`${key} must be a non-empty string`);
    }
  }
  if (problems.length) throw new HttpError(422, problems.join('; '));
  return body;
}

function makeRoutes(db, file) {
  return {
    'GET /health': () => {
      rows(db, 'SELECT count(*) AS n FROM notifications');
      return [200, { status: 'ok', instance: INSTANCE }];
    },
    'GET /notifications': () => [200, rows(db, 'SELECT * FROM notifications ORDER BY id')],
    'POST /notify': (body) => {
      const { order_id, email, text } = validate(body);
      db.run('INSERT INTO notifications (order_id, email, text, created_at) VALUES (?, ?, ?, ?)',
        [order_id, email, text, new Date().toISOString()]);
      // Node runs one handler at a time, so the last row is the one just added.
      const [stored] = rows(db, 'SELECT * FROM notifications WHERE id = last_insert_rowid()');
      save(db, file);
      return [201, stored];
    },
  };
}

function parseBody(raw) {
  if (!raw) return {};
  let body;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${err.message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return body;
}

function respond(routes, req, raw) {
  const url = req.url.split('?')[0];
  const route = routes[`${req.method} ${url}`];
  if (!route) return [404, { error: `no route for ${req.method} ${url}` }];
  try {
    return route(parseBody(raw));
  } catch (err) {
    if (err instanceof HttpError) return [err.status, { error: err.message }];
    log('error', 'unhandled error', { error: String(err), path: url });
    return [url === '/health' ? 503 : 500, { error: 'internal error' }];
  }
}

function handler(routes) {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const [status, body] = respond(routes, req, Buffer.concat(chunks).toString('utf8'));
      const payload = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(payload),
      });
      res.end(payload);
      // LSQ probes every second; only failed probes are worth a line.
      if (req.url === '/health' && status === 200) return;
      const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
      const fields = { method: req.method, path: req.url, status, ms };
      log(status >= 500 ? 'error' : 'info', 'request', fields);
    });
  };
}

async function main() {
  const port = Number(requiredEnv('PORT'));
  const file = databasePath(requiredEnv('DATABASE_URL'));
  const db = await openDatabase(file);
  save(db, file); // create the file at once so a fresh start is visible on disk
  const server = http.createServer(handler(makeRoutes(db, file)));

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return; // the signal may arrive twice: directly and via the group
    stopping = true;
    log('info', 'stopping', { signal });
    // close() stops accepting and waits for open requests; idle keep-alive
    // connections would hold it open, so those are closed too.
    server.close(() => {
      db.close();
      log('info', 'stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server.listen(port, '127.0.0.1', () => log('info', 'listening', { port }));
}

main().catch((err) => {
  log('error', 'failed to start', { error: String(err) });
  process.exit(1);
});

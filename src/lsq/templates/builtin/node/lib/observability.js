"use strict";
// Trace context (W3C traceparent), JSON logs and Prometheus metrics.

const { AsyncLocalStorage } = require("node:async_hooks");
const crypto = require("node:crypto");
const client = require("prom-client");
const settings = require("./settings");

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const traces = new AsyncLocalStorage();

function traceFromHeader(value) {
  const match = TRACEPARENT.exec(String(value || "").trim().toLowerCase());
  const spanId = crypto.randomBytes(8).toString("hex");
  if (match && !/^0+$/.test(match[1]) && !/^0+$/.test(match[2])) {
    return { traceId: match[1], spanId, parentId: match[2] };
  }
  return { traceId: crypto.randomBytes(16).toString("hex"), spanId, parentId: null };
}

function currentTrace() {
  return traces.getStore() || null;
}

function traceparent(trace) {
  return `00-${trace.traceId}-${trace.spanId}-01`;
}

const LEVELS = { debug: 10, info: 20, warning: 30, error: 40 };
const threshold = LEVELS[(process.env.LOG_LEVEL || "info").toLowerCase()] || 20;

// One JSON object per line on stdout, with the current trace id when there is one.
function log(level, msg, fields = {}) {
  if (LEVELS[level] < threshold) return;
  const event = {
    ts: new Date().toISOString(),
    level,
    logger: "app",
    msg,
    service: settings.SERVICE,
    instance: settings.INSTANCE,
  };
  const trace = currentTrace();
  if (trace) {
    event.trace_id = trace.traceId;
    event.span_id = trace.spanId;
  }
  process.stdout.write(JSON.stringify({ ...event, ...fields }) + "\n");
}

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
const requests = new client.Counter({
  name: "http_requests_total",
  help: "HTTP requests answered.",
  labelNames: ["method", "route", "status"],
  registers: [registry],
});
const errors = new client.Counter({
  name: "http_request_errors_total",
  help: "Requests that failed with a 5xx.",
  labelNames: ["method", "route"],
  registers: [registry],
});
const latency = new client.Histogram({
  name: "http_request_duration_seconds",
  help: "Time to answer a request.",
  labelNames: ["method", "route"],
  registers: [registry],
});

module.exports = {
  traces,
  traceFromHeader,
  currentTrace,
  traceparent,
  log,
  registry,
  metrics: { requests, errors, latency },
};

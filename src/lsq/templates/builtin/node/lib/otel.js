"use strict";
// OpenTelemetry trace export over OTLP/HTTP (JSON), with no extra packages.
// Loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set. Spans are batched every
// half second; a failed post is dropped (telemetry must never break the service).

const settings = require("./settings");

const queue = [];
let timer = null;

function recordSpan({ traceId, spanId, parentId, name, startNs, endNs, status }) {
  if (queue.length >= 10000) return;
  const span = {
    traceId,
    spanId,
    name,
    kind: 2,
    startTimeUnixNano: String(startNs),
    endTimeUnixNano: String(endNs),
    attributes: [{ key: "http.response.status_code", value: { intValue: String(status) } }],
    status: { code: status >= 500 ? 2 : 0 },
  };
  if (parentId) span.parentSpanId = parentId;
  queue.push(span);
  if (!timer) timer = setTimeout(flush, 500).unref();
}

async function flush() {
  timer = null;
  const spans = queue.splice(0, 512);
  if (!spans.length) return;
  const resource = {
    attributes: [
      { key: "service.name", value: { stringValue: settings.SERVICE } },
      { key: "service.instance.id", value: { stringValue: settings.INSTANCE } },
    ],
  };
  const body = { resourceSpans: [{ resource, scopeSpans: [{ scope: { name: "app" }, spans }] }] };
  const url = settings.OTLP_ENDPOINT.replace(/\/$/, "") + "/v1/traces";
  try {
    await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
  } catch {
    // dropped on purpose
  }
  if (queue.length && !timer) timer = setTimeout(flush, 500).unref();
}

module.exports = { recordSpan };

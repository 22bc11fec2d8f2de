"use strict";
// Calling other services of the app.
//
// LSQ gives each service the address of every other one as LSQ_<NAME>_URL, the
// name upper-cased with every other character than a letter or digit as `_`:
// `user-api` is LSQ_USER_API_URL. `call("user-api", "GET", "/items")` sends the
// current trace along in a `traceparent` header.

const { currentTrace, traceparent } = require("./observability");

function envName(service) {
  return "LSQ_" + service.toUpperCase().replace(/[^A-Z0-9]/g, "_") + "_URL";
}

function serviceUrl(service) {
  const name = envName(service);
  const url = process.env[name];
  if (!url) {
    throw new Error(`${name} is not set: is "${service}" in lsq.yaml and running under lsq up?`);
  }
  return url.replace(/\/$/, "");
}

function traceHeaders() {
  const trace = currentTrace();
  return trace ? { traceparent: traceparent(trace) } : {};
}

async function call(service, method, path, { headers = {}, json, timeoutMs = 10000 } = {}) {
  const init = { method, headers: { ...traceHeaders(), ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  }
  return fetch(serviceUrl(service) + path, init);
}

module.exports = { envName, serviceUrl, traceHeaders, call };

// The LSQ dashboard: one page, one live stream (/ui/stream), no build step.
"use strict";

const MAX_LOG_ROWS = 5000;
const WINDOW_S = 900;
const $ = (sel) => document.querySelector(sel);

const ui = {
  view: "services",
  status: null,
  events: [],
  traffic: {},          // service -> [[t, rps, err, p50, p95, p99], ...]
  edges: [],
  paused: false,
  pending: [],
  filter: { service: "", level: "", query: "" },
  chartsDirty: false,
};

// -- small helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function hue(name) {
  let x = 0;
  for (const ch of name) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return x % 360;
}
const colour = (name) => `hsl(${hue(name)}, 65%, 58%)`;
const darker = (name) => `hsl(${hue(name)}, 60%, 42%)`;

function duration(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));

function toast(message, ok) {
  const el = $("#toast");
  el.textContent = message;
  el.className = ok ? "ok" : "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, ok ? 2000 : 6000);
}

async function getJSON(path) {
  const resp = await fetch(path, { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `${resp.status}`);
  return data;
}

// -- tabs -----------------------------------------------------------------------

function show(view) {
  ui.view = view;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.view === view);
  }
  for (const s of document.querySelectorAll(".view")) {
    s.classList.toggle("active", s.id === `view-${view}`);
  }
  if (view === "traffic") drawCharts();
  if (view === "topology") loadTopology();
  if (view === "traces") loadTraces();
  if (view === "logs") scrollLogs();
}

// -- services -------------------------------------------------------------------

function badge(text) {
  return h("span", { class: `badge s-${text}` }, text);
}

async function control(name, action, body) {
  try {
    await post(`/v1/services/${encodeURIComponent(name)}/${action}`, body);
    toast(`${name}: ${action} done`, true);
  } catch (err) {
    toast(`${name}: ${action} failed: ${err.message}`);
  }
}

function serviceRow(svc) {
  const t = svc.traffic;
  const ext = svc.external;
  const input = h("input", { type: "number", min: "0", max: "256", value: String(svc.replicas),
                             "data-scale": svc.name, title: "replicas" });
  const actions = ext ? h("td", {}, "external") : h("td", { class: "actions" },
    h("button", { "data-action": "start", onclick: () => control(svc.name, "start") }, "start"), " ",
    h("button", { "data-action": "stop", onclick: () => control(svc.name, "stop") }, "stop"), " ",
    h("button", { "data-action": "restart", onclick: () => control(svc.name, "restart") }, "restart"), " ",
    input, " ",
    h("button", { "data-action": "scale",
                  onclick: () => control(svc.name, "scale", { replicas: Number(input.value) }) }, "scale"));
  return h("tr", { class: "service", "data-service": svc.name },
    h("td", {}, h("span", { class: "swatch" }), svc.name),
    h("td", {}, badge(svc.state)), h("td", {}, badge(svc.health)),
    h("td", {}), h("td", {}), h("td", {}), h("td", { class: "num" }), h("td", {}),
    h("td", {}), h("td", {}),
    h("td", { class: "num" }, t ? fmt(t[1]) : ""),
    h("td", { class: "num" }, t ? `${fmt(t[2] * 100)}%` : ""),
    h("td", { class: "num" }, t && t[4] !== null ? `${fmt(t[4])} ms` : ""),
    actions);
}

function instanceRow(inst) {
  let state = inst.state;
  let note = inst.reason || "";
  if (state === "backoff" && inst.next_retry) {
    const wait = Math.max(0, inst.next_retry - ui.status.now);
    note = `crash loop: next retry in ${wait.toFixed(1)}s. ${note}`;
  }
  return h("tr", { class: "instance", "data-instance": inst.id, title: note },
    h("td", {}, inst.id), h("td", {}, badge(state === "backoff" ? (inst.crashes > 1 ? "crash-loop" : "restarting") : state)),
    h("td", {}, inst.healthy ? "healthy" : (inst.pid ? "not healthy" : "")),
    h("td", { class: "num" }, inst.pid ?? ""), h("td", { class: "num" }, inst.port ?? ""),
    h("td", {}, duration(inst.uptime)),
    h("td", { class: "num restarts" }, inst.restarts),
    h("td", { class: "num" }, inst.last_exit ?? ""),
    h("td", { class: "num" }, inst.cpu === null ? "" : `${fmt(inst.cpu)}%`),
    h("td", { class: "num" }, bytes(inst.memory)),
    h("td", {}), h("td", {}), h("td", {}),
    h("td", { class: "muted" }, note.slice(0, 80)));
}

function renderServices() {
  const st = ui.status;
  if (!st) return;
  $("#app-name").textContent = st.app;
  const up = st.startup || {};
  $("#startup").textContent = up.state === "failed" ? `start-up failed: ${up.reason}` :
    up.state === "starting" ? "starting…" : "";
  // Do not rebuild while the user is typing a replica count.
  if (document.activeElement && document.activeElement.dataset.scale) return;
  const body = $("#services tbody");
  const rows = [];
  for (const svc of st.services) {
    const row = serviceRow(svc);
    row.querySelector(".swatch").style.background = colour(svc.name);
    rows.push(row);
    for (const inst of svc.instances) rows.push(instanceRow(inst));
  }
  body.replaceChildren(...rows);
  const sel = $("#log-service");
  if (sel.options.length !== st.services.length + 1) {
    const keep = sel.value;
    sel.replaceChildren(h("option", { value: "" }, "all services"),
      ...st.services.map((s) => h("option", { value: s.name }, s.name)));
    sel.value = keep;
  }
}

function addEvents(events) {
  ui.events.push(...events);
  ui.events = ui.events.slice(-200);
  const list = $("#events");
  list.replaceChildren(...ui.events.slice(-50).reverse().map((e) =>
    h("li", {}, h("span", { class: "muted" }, clock(e.ts)), " ",
      e.instance || e.service || "lsq", ": ", e.message)));
}

// -- logs -----------------------------------------------------------------------

function matches(line) {
  const f = ui.filter;
  if (f.service && line.service !== f.service) return false;
  if (f.level) {
    const rank = { debug: 1, info: 2, warn: 3, error: 4 };
    if ((rank[line.level] || 2) < rank[f.level]) return false;
  }
  if (f.query && !line.line.toLowerCase().includes(f.query.toLowerCase())) return false;
  return true;
}

function highlight(text) {
  const q = ui.filter.query;
  if (!q) return [text];
  const out = [];
  const low = text.toLowerCase();
  const needle = q.toLowerCase();
  let at = 0;
  for (let i = low.indexOf(needle); i >= 0; i = low.indexOf(needle, at)) {
    out.push(text.slice(at, i), h("mark", {}, text.slice(i, i + q.length)));
    at = i + q.length;
  }
  out.push(text.slice(at));
  return out;
}

function logRow(line) {
  const who = h("span", { class: "who" }, line.instance.padEnd(14));
  who.style.color = colour(line.service);
  let body;
  if (line.fields) {
    const f = line.fields;
    const msg = f.msg ?? f.message ?? f.event ?? "";
    const skip = new Set(["msg", "message", "event", "level", "severity", "levelname", "ts", "time", "timestamp"]);
    body = [highlight(String(msg))];
    for (const [k, v] of Object.entries(f)) {
      if (skip.has(k)) continue;
      body.push(" ", h("span", { class: "field" }, `${k}=`),
        h("span", { class: "fv" }, typeof v === "string" ? v : JSON.stringify(v)));
    }
  } else {
    body = highlight(line.line);
  }
  return h("div", { class: "logline", "data-seq": line.seq },
    h("span", { class: "ts" }, clock(line.ts)), " ", who, " ",
    h("span", { class: `lvl lvl-${line.level}` }, line.level), " ", ...body.flat());
}

function appendLogs(lines) {
  const box = $("#log-lines");
  const frag = document.createDocumentFragment();
  for (const line of lines.slice(-MAX_LOG_ROWS)) if (matches(line)) frag.append(logRow(line));
  box.append(frag);
  let extra = box.childElementCount - MAX_LOG_ROWS;
  while (extra-- > 0) box.firstElementChild.remove();
  scrollLogs();
  logInfo();
}

function scrollLogs() {
  if ($("#log-follow").checked && !ui.paused) {
    const box = $("#log-lines");
    box.scrollTop = box.scrollHeight;
  }
}

function logInfo(extra) {
  const shown = $("#log-lines").childElementCount;
  const waiting = ui.paused ? `, ${ui.pending.length} waiting` : "";
  $("#log-info").textContent = `${shown} lines shown${waiting}${extra ? ", " + extra : ""}`;
}

function onLogs(batch) {
  if (ui.paused) {
    ui.pending.push(...batch.lines);
    if (ui.pending.length > MAX_LOG_ROWS) ui.pending.splice(0, ui.pending.length - MAX_LOG_ROWS);
    logInfo();
    return;
  }
  appendLogs(batch.lines);
}

async function searchLogs() {
  const f = ui.filter;
  const params = new URLSearchParams({ q: f.query, service: f.service, level: f.level, limit: "1000" });
  try {
    const data = await getJSON(`/ui/logs?${params}`);
    $("#log-lines").replaceChildren();
    appendLogs(data.lines);
    logInfo(`searched ${data.searched} lines in ${data.ms} ms`);
  } catch (err) {
    toast(`log search failed: ${err.message}`);
  }
}

function setupLogs() {
  let timer = null;
  const refilter = () => {
    ui.filter = { service: $("#log-service").value, level: $("#log-level").value,
                  query: $("#log-query").value.trim() };
    clearTimeout(timer);
    timer = setTimeout(searchLogs, 200);
  };
  $("#log-service").addEventListener("change", refilter);
  $("#log-level").addEventListener("change", refilter);
  $("#log-query").addEventListener("input", refilter);
  $("#log-pause").addEventListener("click", () => {
    ui.paused = !ui.paused;
    $("#log-pause").textContent = ui.paused ? "Resume" : "Pause";
    if (!ui.paused) {
      const lines = ui.pending;
      ui.pending = [];
      appendLogs(lines);
    }
    logInfo();
  });
  $("#log-follow").addEventListener("change", scrollLogs);
}

// -- traffic --------------------------------------------------------------------

function addTraffic(points) {
  for (const [name, p] of Object.entries(points)) {
    const series = (ui.traffic[name] ||= []);
    if (!series.length || series[series.length - 1][0] < p[0]) series.push(p);
    const cut = p[0] - WINDOW_S;
    while (series.length && series[0][0] < cut) series.shift();
  }
  if (ui.view === "traffic") drawCharts();
}

function chartCard(name) {
  const id = `chart-${CSS.escape(name)}`;
  let card = document.getElementById(id);
  if (card) return card;
  card = h("div", { class: "chartcard", id, "data-service": name },
    h("h3", {}, h("span", { class: "swatch" }), name),
    h("div", { class: "legend" }, "requests / s"), h("canvas", { "data-kind": "rps" }),
    h("div", { class: "legend" }, "error rate %"), h("canvas", { "data-kind": "err" }),
    h("div", { class: "legend" }, "latency ms: p50 (light), p95, p99 (dark)"),
    h("canvas", { "data-kind": "lat" }));
  card.querySelector(".swatch").style.background = colour(name);
  $("#charts").append(card);
  return card;
}

function drawCharts() {
  const names = Object.keys(ui.traffic).sort();
  const gw = ui.status ? ui.status.gateway : false;
  $("#traffic-note").textContent = !gw ? "The gateway is off for this app: no traffic figures." :
    names.length ? "Last 15 minutes, one point a second." : "No requests through the gateway yet.";
  const now = ui.status ? ui.status.now : Date.now() / 1000;
  for (const name of names) {
    const card = chartCard(name);
    const pts = ui.traffic[name];
    const [rps, err, lat] = card.querySelectorAll("canvas");
    line(rps, now, [{ pts, i: 1, colour: colour(name) }]);
    line(err, now, [{ pts, i: 2, colour: "#c62828", scale: 100 }], 1);
    line(lat, now, [
      { pts, i: 3, colour: `hsl(${hue(name)}, 55%, 75%)` },
      { pts, i: 4, colour: colour(name) },
      { pts, i: 5, colour: darker(name) }]);
    card.dataset.points = String(pts.length);
  }
}

function line(canvas, now, sets, minMax) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  if (!w) return;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(hgt * dpr); }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, hgt);
  let max = minMax || 0;
  for (const s of sets) for (const p of s.pts) if (p[s.i] !== null) max = Math.max(max, p[s.i] * (s.scale || 1));
  max = max > 0 ? max * 1.15 : 1;
  const left = 40, bottom = hgt - 14;
  g.strokeStyle = "#dde1e6"; g.fillStyle = "#6b7480"; g.font = "10px system-ui"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(left, 2); g.lineTo(left, bottom); g.lineTo(w, bottom); g.stroke();
  g.fillText(max >= 10 ? max.toFixed(0) : max.toFixed(2), 2, 10);
  g.fillText("0", 2, bottom);
  g.fillText("-15 min", left, hgt - 2);
  g.fillText("now", w - 22, hgt - 2);
  const x = (t) => left + (w - left) * (1 - (now - t) / WINDOW_S);
  const y = (v) => bottom - (bottom - 4) * (v / max);
  for (const s of sets) {
    g.strokeStyle = s.colour; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    for (const p of s.pts) {
      const v = p[s.i];
      if (v === null || now - p[0] > WINDOW_S) { pen = false; continue; }
      const px = x(p[0]), py = y(v * (s.scale || 1));
      if (pen) g.lineTo(px, py); else g.moveTo(px, py);
      pen = true;
    }
    g.stroke();
  }
}

async function loadTraffic() {
  try {
    const data = await getJSON("/ui/traffic");
    for (const [name, pts] of Object.entries(data.services)) ui.traffic[name] = pts;
    ui.edges = data.edges;
    if (ui.view === "traffic") drawCharts();
  } catch (err) {
    toast(`traffic: ${err.message}`);
  }
}

// -- topology -------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function edgeLabel(e) {
  const rate = `${fmt(e.rps, e.rps && e.rps < 1 ? 2 : 1)}/s`;
  if (!e.error_rate) return rate;
  const count = e.errors ? `${e.errors} err, ` : "";
  return `${rate} · ${count}${fmt(e.error_rate * 100)}%`;
}

async function loadTopology() {
  let data;
  try { data = await getJSON("/ui/topology"); } catch (err) { toast(`topology: ${err.message}`); return; }
  const svg = $("#topology");
  const layers = {};
  for (const n of data.nodes) (layers[n.layer] ||= []).push(n);
  const pos = {};
  const nw = 150, nh = 40, gx = 220, gy = 70;
  let maxRows = 1;
  const nLayers = Object.keys(layers).length;
  for (const [layer, nodes] of Object.entries(layers)) {
    maxRows = Math.max(maxRows, nodes.length);
    // Callers on the left, what they depend on to the right.
    nodes.forEach((n, i) => { pos[n.name] = { x: 20 + (nLayers - 1 - Number(layer)) * gx, y: 20 + i * gy }; });
  }
  const vw = Math.max(400, nLayers * gx), vh = Math.max(120, maxRows * gy + 20);
  svg.setAttribute("viewBox", `0 0 ${vw} ${vh}`);
  svg.setAttribute("width", String(vw));
  svg.setAttribute("height", String(vh));
  const defs = s("defs", {});
  const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                                markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7480" }));
  defs.append(marker);
  const parts = [defs];
  for (const e of data.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + nw, y1 = a.y + nh / 2, x2 = b.x, y2 = b.y + nh / 2;
    const path = s("path", { d: `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`,
      fill: "none", stroke: e.error_rate > 0.05 ? "#c62828" : "#6b7480",
      "stroke-width": e.rps ? String(1.5 + Math.min(4, Math.log10(1 + e.rps))) : "1.5",
      "stroke-dasharray": e.declared ? "" : "4 3", "marker-end": "url(#arrow)", class: "edge",
      "data-from": e.from, "data-to": e.to });
    parts.push(path);
    if (e.rps !== null) {
      const label = s("text", { x: String((x1 + x2) / 2), y: String((y1 + y2) / 2 - 4), "text-anchor": "middle",
        fill: e.error_rate > 0.05 ? "#c62828" : "#1d232b", class: "edge-label",
        "data-from": e.from, "data-to": e.to }, edgeLabel(e));
      if (e.requests !== null && e.requests !== undefined) {
        // Trace counts cover the last minute, so say so on hover.
        label.append(s("title", {}, `last minute: ${e.requests} requests, ${e.errors} errors (5xx)` +
          (e.source === "traces" ? ", from gateway hop spans" : "")));
      }
      parts.push(label);
    }
  }
  for (const n of data.nodes) {
    const p = pos[n.name];
    const g = s("g", { class: "node", "data-service": n.name });
    const stroke = { running: "#1a7f37", "crash-loop": "#c62828", restarting: "#b35900", failed: "#c62828", external: "#6b7480" }[n.state] || "#b35900";
    g.append(s("rect", { x: String(p.x), y: String(p.y), width: String(nw), height: String(nh), rx: "6",
      fill: "#fff", stroke, "stroke-width": "2", "stroke-dasharray": n.external ? "5 3" : "" }));
    g.append(s("rect", { x: String(p.x), y: String(p.y), width: "6", height: String(nh), fill: colour(n.name) }));
    g.append(s("text", { x: String(p.x + 14), y: String(p.y + 17) }, n.name));
    g.append(s("text", { x: String(p.x + 14), y: String(p.y + 32), fill: "#6b7480" }, n.state));
    parts.push(g);
  }
  svg.replaceChildren(...parts);
}

// -- traces ---------------------------------------------------------------------

async function loadTraces() {
  let data;
  try { data = await getJSON("/ui/traces?limit=200"); } catch (err) { toast(`traces: ${err.message}`); return; }
  $("#traces-info").textContent = `${data.traces.length} traces, ${data.spans} spans kept`;
  $("#traces tbody").replaceChildren(...data.traces.map((t) =>
    h("tr", { class: t.error ? "err" : "", "data-trace": t.trace_id, onclick: () => showTrace(t.trace_id) },
      h("td", {}, clock(t.start)), h("td", {}, t.name), h("td", {}, t.services.join(", ")),
      h("td", { class: "num" }, t.spans), h("td", { class: "num" }, `${fmt(t.duration_ms, 2)} ms`))));
}

function depthOf(spans) {
  const byId = Object.fromEntries(spans.map((sp) => [sp.span_id, sp]));
  const depth = {};
  const get = (sp, guard) => {
    if (depth[sp.span_id] !== undefined) return depth[sp.span_id];
    const parent = byId[sp.parent_id];
    const d = parent && guard < 64 ? get(parent, guard + 1) + 1 : 0;
    depth[sp.span_id] = d;
    return d;
  };
  for (const sp of spans) get(sp, 0);
  return depth;
}

async function showTrace(id) {
  for (const tr of document.querySelectorAll("#traces tbody tr")) tr.classList.toggle("sel", tr.dataset.trace === id);
  let data;
  try { data = await getJSON(`/ui/traces/${encodeURIComponent(id)}`); } catch (err) { toast(`trace: ${err.message}`); return; }
  const spans = data.spans;
  const t0 = Math.min(...spans.map((x) => x.start));
  const t1 = Math.max(...spans.map((x) => x.end));
  const total = Math.max(1, t1 - t0);
  const depth = depthOf(spans);
  const rows = spans.map((sp) => {
    const bar = h("div", { class: `wf-bar${sp.error ? " err" : ""}`, title: JSON.stringify(sp.attributes) });
    bar.style.left = `${(100 * (sp.start - t0)) / total}%`;
    bar.style.width = `${(100 * (sp.end - sp.start)) / total}%`;
    bar.style.background = colour(sp.service);
    const name = h("div", { class: "wf-name", title: `${sp.service}: ${sp.name}` }, `${sp.service}: ${sp.name}`);
    name.style.paddingLeft = `${depth[sp.span_id] * 0.8}rem`;
    return h("div", { class: "wf-row span", "data-service": sp.service }, name,
      h("div", { class: "wf-track" }, bar), h("div", { class: "num" }, `${fmt((sp.end - sp.start) / 1e6, 2)} ms`));
  });
  const logs = data.logs.length ? data.logs.map(logRow) : [h("p", { class: "muted" }, "No log line carries this trace id.")];
  const box = h("div", { class: "loglines trace-logs" }, ...logs);
  box.style.height = "auto";
  box.style.maxHeight = "20rem";
  $("#trace-detail").replaceChildren(h("h3", {}, `trace ${data.trace_id}`), ...rows, h("h3", {}, "log lines"), box);
}

// -- the live stream ------------------------------------------------------------

function connect() {
  const es = new EventSource("/ui/stream");
  es.onopen = () => { $("#conn").className = "conn on"; $("#conn").textContent = "live"; };
  es.onerror = () => { $("#conn").className = "conn off"; $("#conn").textContent = "reconnecting"; };
  es.addEventListener("status", (e) => { ui.status = JSON.parse(e.data); renderServices(); });
  es.addEventListener("events", (e) => addEvents(JSON.parse(e.data)));
  es.addEventListener("logs", (e) => onLogs(JSON.parse(e.data)));
  es.addEventListener("traffic", (e) => {
    const data = JSON.parse(e.data);
    ui.edges = data.edges;
    addTraffic(data.points);
  });
}

function main() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  $("#traces-refresh").addEventListener("click", loadTraces);
  setupLogs();
  loadTraffic();
  connect();
  setInterval(() => { if (ui.view === "topology") loadTopology(); }, 5000);
}

document.addEventListener("DOMContentLoaded", main);

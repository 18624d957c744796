// fieldgate's page for technicians: the gateway's state from /api/v1, kept
// live over the WebSocket. Plain JavaScript, no library, nothing fetched from
// outside the gateway.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

const state = {
  token: sessionStorage.getItem("fg-token") || "",
  user: sessionStorage.getItem("fg-user") || "",
  role: sessionStorage.getItem("fg-role") || "",
  status: null,
  sources: new Map(), // id → source from the API
  series: new Map(), // "id|quantity" → {points, step, unit}
  charted: new Set(),
};
const RANKS = { viewer: 1, technician: 2, admin: 3 };
const canChange = () => (RANKS[state.role] || 0) >= RANKS.technician;
// Quantities shown first on a card and charted first; every other numeric
// quantity follows, by name.
const CHART_QUANTITIES = ["temperature", "humidity"];
const DAY = 24 * 3600 * 1000;

// ---- API ----------------------------------------------------------------

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, accept = "application/json") {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: accept };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 429 && attempt < 3) { // the rate limit: wait as told
      await sleep(1000 * (Number(res.headers.get("Retry-After")) || 1));
      continue;
    }
    if (res.status === 401 && state.token && path !== "/auth/login") {
      forgetLogin("Your session ended: log in again.");
    }
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { msg = (await res.json()).errors[0].message; } catch (_) { /* not our error shape */ }
      throw new APIError(res.status, msg);
    }
    if (accept !== "application/json") return res;
    return res.status === 204 ? null : res.json();
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function notice(msg) {
  const n = $("#notice");
  n.textContent = msg || "";
  n.hidden = !msg;
}

// ---- formatting -----------------------------------------------------------

// SenML units (RFC 8428 and its registry) as people read them: label,
// decimals, and a scale (pressure is stored in Pa and shown in hPa).
const UNITS = {
  Cel: ["°C", 1], K: ["K", 1], "%RH": ["%RH", 0], "%": ["%", 0], "%EL": ["% battery", 0], Pa: ["hPa", 0, 0.01], hPa: ["hPa", 0],
  ppm: ["ppm", 0], ppb: ["ppb", 0], lx: ["lx", 0], V: ["V", 2], mV: ["mV", 0], A: ["A", 2], mA: ["mA", 0], W: ["W", 1],
  kW: ["kW", 2], Wh: ["Wh", 0], kWh: ["kWh", 2], J: ["J", 0], VA: ["VA", 1], var: ["var", 1], Hz: ["Hz", 1], dB: ["dB", 1],
  dBm: ["dBm", 0], dBW: ["dBW", 1], m: ["m", 2], mm: ["mm", 1], cm: ["cm", 1], "m/s": ["m/s", 1], "km/h": ["km/h", 1],
  "m/s2": ["m/s²", 2], s: ["s", 0], ms: ["ms", 0], kg: ["kg", 2], g: ["g", 1], l: ["l", 1], "l/s": ["l/s", 2], m3: ["m³", 2],
  "m3/s": ["m³/s", 3], "mm/h": ["mm/h", 1], "ug/m3": ["µg/m³", 0], "mg/m3": ["mg/m³", 1], Ohm: ["Ω", 1], rad: ["rad", 2],
  "/": ["", 2], count: ["", 0], bit: ["bit", 0], "bit/s": ["bit/s", 0], lm: ["lm", 0], cd: ["cd", 0], "W/m2": ["W/m²", 0],
  beat: ["beats", 0], "beat/min": ["bpm", 0], "1/min": ["/min", 0], S: ["S", 3], "S/m": ["S/m", 3], N: ["N", 1], Bq: ["Bq", 0],
};
function fmtValue(value, unit) {
  const [label, digits, scale] = UNITS[unit] || [unit, 2];
  return [(value * (scale || 1)).toFixed(digits), label];
}
// fmtQuantity names a quantity for people: "attic_temperature" → "attic temperature".
const fmtQuantity = (q) => q.replace(/[_.]+/g, " ");
function fmtValue(value, unit) {
  const [label, digits, scale] = UNITS[unit] || [unit, 2];
  return [(value * (scale || 1)).toFixed(digits), label];
}
function fmtAge(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}
function fmtDuration(sec) {
  if (!isFinite(sec) || sec < 0) return "—";
  if (sec < 90) return Math.round(sec) + " s";
  if (sec < 5400) return Math.round(sec / 60) + " min";
  if (sec < 172800) return (sec / 3600).toFixed(1) + " h";
  return (sec / 86400).toFixed(1) + " days";
}
const ageNode = (iso) => el("span", { class: "age", "data-time": iso || "" }, fmtAge(iso));
function refreshAges() {
  for (const n of document.querySelectorAll("[data-time]")) n.textContent = fmtAge(n.dataset.time);
}

// ---- header and uplink ------------------------------------------------------

function renderStatus(s) {
  state.status = s;
  $("#gw-name").textContent = s.name || s.gateway_id;
  document.title = (s.name || s.gateway_id) + " — fieldgate";
  const clock = s.clock === "synced" ? "clock synced" : "clock NOT synced";
  // The id is the heading when no name is set: not twice.
  $("#gw-meta").textContent = `${s.name ? s.gateway_id + " · " : ""}fieldgate ${s.version} · up ${fmtDuration(s.uptime_seconds)} · ${clock}`;
  const h = $("#health");
  h.className = "health " + s.health.state;
  $("#health-state").textContent = { ok: "All good", degraded: "Needs attention", failing: "Failing" }[s.health.state] || s.health.state;
  $("#health-reasons").replaceChildren(...s.health.reasons.map((r) => el("li", {}, r)));

  const u = s.uplink;
  const facts = [];
  if (!u.configured) {
    facts.push(["State", "no uplink configured: readings stay on the gateway"]);
  } else {
    const since = u.offline_since && u.state !== "online" ? ` since ${new Date(u.offline_since).toLocaleString()} (${fmtAge(u.offline_since)})` : "";
    facts.push(["State", u.state + since]);
    if (u.last_outage) {
      const o = u.last_outage;
      facts.push(["Last outage", `${fmtDuration(o.seconds)}, ended ${fmtAge(o.ended)}; ${o.waiting.toLocaleString()} readings waited`]);
    }
    if (u.held) facts.push(["Held", u.held]);
    facts.push(["Waiting to upload", u.backlog.toLocaleString() + " readings"]);
    facts.push(["Oldest not sent", u.backlog ? fmtDuration(u.oldest_unsent_age_seconds) + " old" : "—"]);
    facts.push(["Estimated drain", u.backlog && u.drain_rate > 0 ? fmtDuration(u.estimated_drain_seconds) : "—"]);
    facts.push(["Last error", u.last_error ? u.last_error + (u.last_error_at ? " (" + fmtAge(u.last_error_at) + ")" : "") : "none"]);
    facts.push(["Dead letters", String(u.dead_letters)]);
  }
  facts.push(["Offline autonomy", s.autonomy.summary]);
  $("#uplink").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function loadDeadLetters() {
  const box = $("#deadletters");
  const { dead_letters: dls } = await api("GET", "/uplink/deadletters");
  if (!dls.length) { box.replaceChildren(); return; }
  box.replaceChildren(el("h3", {}, "Batches the cloud refused"),
    canChange() && dls.length > 1 ? el("button", { type: "button", class: "secondary", onclick: retryAllDeadLetters }, "Retry all") : null,
    el("ul", {}, ...dls.map((d) =>
      el("li", {}, `${d.readings} readings (#${d.first}–${d.last}): ${d.status} ${d.reason} `,
        canChange() ? el("button", { type: "button", class: "secondary", onclick: () => retryDeadLetter(d.id) }, "Retry") : null,
        canChange() ? el("button", { type: "button", class: "secondary", onclick: () => discardDeadLetter(d) }, "Discard") : null))));
}

async function retryAllDeadLetters() {
  try {
    const { queued } = await api("POST", "/uplink/deadletters/retry");
    notice(`${queued} batches queued: each leaves the list once the cloud takes it.`);
  } catch (e) { notice("Retry failed: " + e.message); }
}

async function discardDeadLetter(d) {
  if (!confirm(`Discard ${d.readings} readings for good? The cloud will never get them.`)) return;
  try {
    await api("DELETE", `/uplink/deadletters/${encodeURIComponent(d.id)}`);
    notice("Discarded.");
    loadDeadLetters();
  } catch (e) { notice("Discard failed: " + e.message); }
}

async function retryDeadLetter(id) {
  try {
    await api("POST", `/uplink/deadletters/${encodeURIComponent(id)}/retry`);
    notice("Retry queued: the batch leaves the list once the cloud takes it.");
  } catch (e) { notice("Retry failed: " + e.message); }
}

// ---- sources: cards with values and a 24 h chart -----------------------------

async function loadSources() {
  const { sources } = await api("GET", "/sources");
  state.sources = new Map(sources.map((s) => [s.id, s]));
  renderSources();
  const sel = $("#export-source");
  const chosen = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "All sources"), ...sources.map((s) => el("option", { value: s.id }, s.name ? `${s.name} (${s.id})` : s.id)));
  sel.value = chosen;
}

// Charts load lazily: a card's series when it comes into view, so a page
// with many sources stays within the API's rate limit.
const chartObserver = "IntersectionObserver" in window
  ? new IntersectionObserver((entries) => { for (const e of entries) if (e.isIntersecting) chartSource(e.target.dataset.source); })
  : null;
function chartSource(id) {
  const s = state.sources.get(id);
  if (!s) return;
  for (const r of s.latest) {
    const key = s.id + "|" + r.quantity;
    if (!state.charted.has(key)) {
      state.charted.add(key);
      loadSeries(s.id, r.quantity).catch(() => state.charted.delete(key)); // tried again when next in view
    }
  }
}

const stateClass = (st) => (st === "failing" || st === "silent" ? "bad" : st === "degraded" || st === "late" ? "warn" : "");
const STATE_LABELS = { waiting: "waiting for first reading" };

function renderSources() {
  const box = $("#sources");
  if (!state.sources.size) { box.replaceChildren(el("p", { class: "empty" }, "No sensors or devices yet.")); return; }
  const order = [...state.sources.values()].sort((a, b) => (stateClass(b.state) ? 1 : 0) - (stateClass(a.state) ? 1 : 0) || a.id.localeCompare(b.id));
  if (chartObserver) chartObserver.disconnect(); // the new cards are observed as they are made
  box.replaceChildren(...order.map(renderCard));
}

// replaceCard redraws source s's card, if it is on the page.
function replaceCard(s) {
  const card = document.querySelector(`[data-source="${CSS.escape(s.id)}"]`);
  if (!card) return;
  if (chartObserver) chartObserver.unobserve(card);
  card.replaceWith(renderCard(s));
}

const rank = (q) => (CHART_QUANTITIES.includes(q) ? CHART_QUANTITIES.indexOf(q) : CHART_QUANTITIES.length);
const byRank = (a, b) => rank(a.quantity) - rank(b.quantity) || a.quantity.localeCompare(b.quantity);

function renderCard(s) {
  const latest = [...s.latest].sort(byRank);
  const newest = latest.reduce((m, r) => (!m || r.time > m ? r.time : m), "");
  const card = el("article", { class: "card " + stateClass(s.state), "data-source": s.id, "aria-label": s.name || s.id },
    el("header", {}, el("h3", {}, s.name || s.id), el("span", { class: "badge " + s.state, title: s.state_reason || "" }, STATE_LABELS[s.state] || s.state)),
    s.name ? el("div", { class: "id" }, s.id) : null,
    s.state_reason && s.state !== "waiting" ? el("div", { class: "reason" }, s.state_reason) : null,
    el("div", { class: "values" }, ...latest.map((r) => {
      const [v, u] = fmtValue(r.value, r.unit);
      return el("div", { class: "value", "data-quantity": r.quantity, title: r.clock === "unsynced" ? "time unsure: clock not synced" : "" },
        el("span", { class: "q" }, fmtQuantity(r.quantity)), v, u ? " " : "", u ? el("small", {}, u) : null);
    })),
    latest.length ? null : el("p", { class: "empty" }, "No reading yet."),
    el("div", {}, "Last reading ", ageNode(newest || s.last_seen)),
    s.last_error && stateClass(s.state) ? el("p", { class: "problem" }, s.last_error) : null,
    s.frozen && s.frozen.length ? el("p", { class: "problem" }, "Value unchanged for hours: " + s.frozen.join(", ")) : null);
  for (const r of latest) {
    const ser = state.series.get(s.id + "|" + r.quantity);
    if (ser && ser.points.length) card.append(chart(ser, r.quantity));
  }
  if (chartObserver) chartObserver.observe(card); else queueMicrotask(() => chartSource(s.id));
  return card;
}

async function loadSeries(id, quantity) {
  const to = new Date(), from = new Date(to - DAY);
  const q = new URLSearchParams({ quantity, from: from.toISOString(), to: to.toISOString(), step: "5m" });
  const s = await api("GET", `/sources/${encodeURIComponent(id)}/series?${q}`);
  state.series.set(id + "|" + quantity, { points: s.points.map((p) => ({ t: Date.parse(p.time), min: p.min, avg: p.avg, max: p.max })), step: 5 * 60 * 1000, unit: s.unit });
  if (state.sources.has(id)) replaceCard(state.sources.get(id));
}

// chart draws the last 24 h as a min–max band with the average on top.
function chart(ser, quantity) {
  const W = 300, H = 90, L = 34, B = 14;
  // A new site has less than a day: the chart spans what there is (at
  // least an hour), so it does not look empty.
  const now = Date.now(), first = ser.points.length ? ser.points[0].t : now;
  const t0 = Math.max(now - DAY, Math.min(first, now - 3600 * 1000)), span = now - t0;
  const pts = ser.points.filter((p) => p.t >= t0);
  const scale = (UNITS[ser.unit] || [])[2] || 1;
  let lo = Math.min(...pts.map((p) => p.min)) * scale, hi = Math.max(...pts.map((p) => p.max)) * scale;
  if (hi - lo < 1) { const mid = (hi + lo) / 2; lo = mid - 0.5; hi = mid + 0.5; }
  const x = (t) => L + ((t - t0) / span) * (W - L);
  const y = (v) => 2 + (1 - (v * scale - lo) / (hi - lo)) * (H - B - 4);
  const g = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${fmtQuantity(quantity)}, last ${fmtDuration(span / 1000)}: ${fmtValue(lo / scale, ser.unit).join(" ")} to ${fmtValue(hi / scale, ser.unit).join(" ")}` });
  // Where readings stop for more than two steps the line breaks: a gap
  // is drawn as a gap, not as a straight line across it.
  const runs = [];
  for (const p of pts) {
    const run = runs[runs.length - 1];
    if (run && p.t - run[run.length - 1].t <= 2 * ser.step) run.push(p); else runs.push([p]);
  }
  const xy = (p, v) => `${x(p.t).toFixed(1)},${y(v).toFixed(1)}`;
  for (const run of runs) {
    if (run.length > 1) {
      g.append(svg("polygon", { class: "band", points: run.map((p) => xy(p, p.max)).concat(run.slice().reverse().map((p) => xy(p, p.min))).join(" ") }));
      g.append(svg("polyline", { class: "line", points: run.map((p) => xy(p, p.avg)).join(" "), "data-points": run.length }));
    } else {
      g.append(svg("circle", { class: "dot", cx: x(run[0].t).toFixed(1), cy: y(run[0].avg).toFixed(1), r: 2, "data-points": 1 }));
    }
  }
  g.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
  const label = (txt, ax, ay, anchor) => { const t = svg("text", { x: ax, y: ay, "text-anchor": anchor }); t.textContent = txt; g.append(t); };
  label(hi.toFixed(1), L - 3, 10, "end");
  label(lo.toFixed(1), L - 3, H - B, "end");
  label("−" + fmtDuration(span / 1000), L, H - 2, "start");
  label("−" + fmtDuration(span / 2000), L + (W - L) / 2, H - 2, "middle");
  label("now", W, H - 2, "end");
  const [, unit] = fmtValue(0, ser.unit);
  return el("figure", { class: "chart-box" }, g, el("figcaption", { class: "chart-label" },
    `${fmtQuantity(quantity)}${unit ? " (" + unit + ")" : ""}, last ${fmtDuration(span / 1000)}: band min–max, line average`));
}

// live adds a reading from the WebSocket to its card and chart.
function live(r) {
  const s = state.sources.get(r.source);
  if (!s) { loadSources().catch(() => {}); return; }
  const i = s.latest.findIndex((x) => x.quantity === r.quantity);
  if (i >= 0) { if (r.time >= s.latest[i].time) s.latest[i] = r; } else s.latest.push(r);
  if (s.kind === "device") { s.state = "ok"; s.last_seen = r.time; }
  const ser = state.series.get(r.source + "|" + r.quantity);
  if (ser) {
    const t = Date.parse(r.time), start = t - (t % ser.step);
    const last = ser.points[ser.points.length - 1];
    if (last && last.t === start) {
      last.avg = (last.avg * (last.n || 1) + r.value) / ((last.n || 1) + 1); last.n = (last.n || 1) + 1;
      last.min = Math.min(last.min, r.value); last.max = Math.max(last.max, r.value);
    } else if (!last || start > last.t) {
      ser.points.push({ t: start, min: r.value, avg: r.value, max: r.value, n: 1 });
    }
  }
  replaceCard(s);
}

// ---- devices --------------------------------------------------------------

async function loadDevices() {
  const { devices } = await api("GET", "/devices");
  const rows = devices.map((d) => el("tr", { "data-device": d.id },
    el("td", {}, el("code", {}, d.id)),
    el("td", { class: "name" }, d.name || ""),
    el("td", {}, el("span", { class: "badge " + d.state, title: d.state_reason }, STATE_LABELS[d.state] || d.state),
      el("div", { class: "reason" }, d.state_reason + (d.online ? " · connected" : ""))),
    el("td", {}, ageNode(d.last_seen)),
    el("td", { class: "num" }, d.readings.toLocaleString()),
    el("td", { class: "num" }, String(d.rejected), d.last_error ? el("div", { class: "problem" }, d.last_error) : null),
    el("td", {}, canChange() ? el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", onclick: (ev) => renameDevice(ev, d) }, "Rename"),
      el("button", { type: "button", class: "danger", onclick: (ev) => removeDevice(ev, d) }, "Remove")) : null)));
  const body = $("#devices tbody");
  if (body.querySelector("input")) return; // a rename is being typed: keep the row
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No devices yet: add one below."))]));
}

async function addDevice(ev) {
  ev.preventDefault();
  const f = ev.target, id = f.id.value.trim(), name = f.name.value.trim();
  try {
    const d = await api("PUT", `/devices/${encodeURIComponent(id)}`, name ? { name } : {});
    if (!d.password) { notice(`Device ${id} exists already; its password is unchanged.`); return; }
    const host = location.hostname;
    $("#nd-id").textContent = d.id;
    $("#nd-password").textContent = d.password;
    $("#nd-esphome").textContent = `mqtt:\n  broker: ${host}\n  username: ${d.id}\n  password: "${d.password}"\n  topic_prefix: ${d.id}`;
    $("#nd-tasmota").textContent = `Backlog MqttHost ${host}; MqttUser ${d.id}; MqttPassword ${d.password}; Topic ${d.id}`;
    $("#new-device").hidden = false;
    $("#nd-done").focus();
    f.reset();
    notice("");
    await loadDevices();
  } catch (e) { notice("Could not add the device: " + e.message); }
}

function renameDevice(ev, d) {
  const cell = ev.target.closest("tr").querySelector(".name");
  const input = el("input", { value: d.name || "", "aria-label": "New name for " + d.id, maxlength: 128 });
  const save = async () => {
    try { await api("PATCH", `/devices/${encodeURIComponent(d.id)}`, { name: input.value.trim() }); }
    catch (e) { notice("Rename failed: " + e.message); }
    cell.replaceChildren();
    await loadDevices();
    await loadSources();
  };
  input.addEventListener("keydown", (k) => { if (k.key === "Enter") save(); if (k.key === "Escape") { cell.replaceChildren(); loadDevices(); } });
  cell.replaceChildren(input, el("button", { type: "button", onclick: save }, "Save"));
  input.focus();
}

// removeDevice asks once more on the same button, so nothing is deleted by a stray tap.
async function removeDevice(ev, d) {
  const b = ev.target;
  if (!b.dataset.armed) {
    b.dataset.armed = "1";
    b.textContent = "Really remove " + d.id + "?";
    setTimeout(() => { if (b.isConnected) { delete b.dataset.armed; b.textContent = "Remove"; } }, 5000);
    return;
  }
  try {
    await api("DELETE", `/devices/${encodeURIComponent(d.id)}`);
    notice(`Device ${d.id} removed; its readings stay.`);
  } catch (e) { notice("Remove failed: " + e.message); }
  await loadDevices();
}

// ---- export -----------------------------------------------------------------

function localInput(d) { // datetime-local wants local time without zone
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

async function exportCSV(ev) {
  ev.preventDefault();
  const f = ev.target;
  const q = new URLSearchParams({ format: "csv", from: new Date(f.from.value).toISOString(), to: new Date(f.to.value).toISOString() });
  if (f.source.value) q.set("source", f.source.value);
  const btn = $("#export-btn");
  btn.disabled = true;
  try {
    const res = await api("GET", "/readings/export?" + q, undefined, "text/csv");
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: `fieldgate-${f.source.value || "all"}-${f.from.value.slice(0, 10)}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { notice("Export failed: " + e.message); }
  btn.disabled = false;
}

// ---- login ------------------------------------------------------------------

function renderSession() {
  $("#who").textContent = state.token ? `${state.user} (${state.role})` : "read-only";
  $("#login-btn").hidden = !!state.token;
  $("#logout-btn").hidden = !state.token;
  document.body.classList.toggle("tech", canChange());
}

function forgetLogin(msg) {
  state.token = state.user = state.role = "";
  sessionStorage.clear();
  renderSession();
  if (msg) notice(msg);
}

async function login(ev) {
  ev.preventDefault();
  const f = ev.target, err = $("#login-error");
  try {
    const t = await api("POST", "/auth/login", { username: f.username.value, password: f.password.value });
    Object.assign(state, { token: t.token, user: t.user, role: t.role });
    sessionStorage.setItem("fg-token", t.token);
    sessionStorage.setItem("fg-user", t.user);
    sessionStorage.setItem("fg-role", t.role);
    err.hidden = true;
    f.reset();
    $("#login-dialog").close();
    notice("");
    renderSession();
    refreshAll();
    connectLive();
  } catch (e) {
    err.textContent = e.status === 401 ? "Wrong user or password." : e.message;
    err.hidden = false;
  }
}

async function logout() {
  try { await api("POST", "/auth/logout"); } catch (_) { /* the token is dropped anyway */ }
  forgetLogin("");
  refreshAll();
}

// ---- live stream and refresh --------------------------------------------------

let socket = null, retryMs = 1000;
function connectLive() {
  if (socket) { socket.onclose = null; socket.close(); }
  const q = state.token ? "?access_token=" + encodeURIComponent(state.token) : "";
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws" + q);
  socket = ws;
  ws.onopen = () => { retryMs = 1000; };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "status") renderStatus(msg.status);
    else if (msg.type === "reading") live(msg.reading);
  };
  ws.onclose = () => { // the gateway restarted or the Wi-Fi dropped: try again
    if (socket !== ws) return;
    setTimeout(connectLive, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  };
}

async function refreshAll() {
  try {
    renderStatus(await api("GET", "/status"));
    await loadSources();
    await loadDevices();
    await loadDeadLetters();
    if ($("#notice").textContent.startsWith("The gateway")) notice(""); // it answers again
  } catch (e) {
    if (e.status === 401) {
      notice("This gateway needs a login to read.");
      if (!$("#login-dialog").open) $("#login-dialog").showModal();
    } else {
      notice("The gateway does not answer: " + e.message);
    }
  }
}

function init() {
  renderSession();
  $("#login-btn").addEventListener("click", () => $("#login-dialog").showModal());
  $("#login-cancel").addEventListener("click", () => $("#login-dialog").close());
  $("#login-form").addEventListener("submit", login);
  $("#logout-btn").addEventListener("click", logout);
  $("#add-device").addEventListener("submit", addDevice);
  $("#nd-done").addEventListener("click", () => { $("#new-device").hidden = true; $("#nd-password").textContent = ""; });
  const f = $("#export-form");
  f.to.value = localInput(new Date());
  f.from.value = localInput(new Date(Date.now() - DAY));
  f.addEventListener("submit", exportCSV);
  refreshAll();
  connectLive();
  setInterval(refreshAges, 1000);
  setInterval(refreshAll, 5000); // online state, ages, uplink figures
}

init();

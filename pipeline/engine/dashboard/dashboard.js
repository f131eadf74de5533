// tern's dashboard: polls /api/stats for counters and reads alerts from a
// tap (/tap, one JSON message per line). Every text that comes from a
// message goes into the page through textContent, never as HTML: alert
// titles and sources are attackers' data.
"use strict";

const STATS_EVERY_MS = 1000;
const MAX_ALERTS = 50;
const ALERT_TAP = "tap?rate=50&match=" + encodeURIComponent("Type == 'tern.alert'");

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tern-token") || "";
let prev = null; // the previous stats snapshot, for rates

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

// el builds an element; children are nodes or strings (added as text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function fmt(n) {
  if (!isFinite(n)) return "–";
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + s + "s";
}

// rate is the per-second rate of a counter between the previous snapshot
// and this one (key names the series within its kind).
function rate(key, value, now) {
  if (!prev || !(key in prev.values)) return NaN;
  const dt = (now - prev.now) / 1000;
  return dt > 0 ? Math.max(0, value - prev.values[key]) / dt : NaN;
}

function fill(bytesHeld, max) {
  if (!max) return el("span", { class: "quiet" }, "–");
  const pct = Math.min(100, (100 * bytesHeld) / max);
  const bar = el("span", { class: "fill" + (pct >= 80 ? " high" : ""), title: bytes(bytesHeld) + " of " + bytes(max) });
  const inner = el("span");
  inner.style.width = pct.toFixed(1) + "%";
  bar.append(inner);
  return el("span", {}, bar, el("span", { class: "fill-label" }, pct.toFixed(0) + "%"));
}

function replaceRows(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5", class: "quiet" }, empty))]));
}

function renderStats(s) {
  const values = {};
  $("host").textContent = s.hostname;
  $("uptime").textContent = s.started ? "up " + duration(s.now - s.started) : "";

  replaceRows($("plugins"), s.plugins.map((p) => {
    const key = "p:" + p.id;
    values[key] = p.count;
    const r = rate(key, p.count, s.now);
    const queue = p.kind === "input" ? el("span", { class: "quiet" }, "–")
      : el("span", {}, fill(p.queue_bytes, p.queue_max_bytes), el("span", { class: "fill-label" }, fmt(p.queue_messages) + " msgs"));
    return el("tr", { "data-id": p.id },
      el("td", {}, el("span", { class: "kind" }, p.kind), p.id),
      el("td", {}, el("span", { class: "badge state-" + p.state, title: p.error || "" }, p.state)),
      el("td", { class: "num rate" }, fmt(r)),
      el("td", { class: "num total" }, fmt(p.count)),
      el("td", {}, queue));
  }), "no plugin");

  const reasons = (list, prefix, tbody, empty) => replaceRows(tbody, list.map((d) => {
    const key = prefix + d.plugin + "/" + d.reason;
    values[key] = d.count;
    return el("tr", {}, el("td", {}, d.plugin), el("td", {}, d.reason),
      el("td", { class: "num" }, fmt(rate(key, d.count, s.now))), el("td", { class: "num" }, fmt(d.count)));
  }), empty);
  reasons(s.drops, "d:", $("drops"), "nothing dropped");
  reasons(s.dead_letters, "x:", $("dead"), "no dead letter");

  replaceRows($("lua"), s.lua.map((l) => el("tr", {},
    el("td", {}, l.plugin),
    el("td", {}, el("span", { class: "badge " + (l.disabled ? "disabled" : "ok") }, l.disabled ? "disabled" : "ok")),
    el("td", { class: "num" }, fmt(l.failures)),
    el("td", {}, Object.entries(l.by_kind).filter(([, n]) => n > 0).map(([k, n]) => k + " " + fmt(n)).join(", ")))),
  "no Lua script");

  prev = { now: s.now, values };
}

function setConn(text, ok) {
  const c = $("conn");
  c.textContent = text;
  c.className = "badge " + (ok ? "ok" : "bad");
}

function needToken() {
  $("login").hidden = false;
  setConn("token needed", false);
}

async function pollStats() {
  try {
    const res = await fetch("api/stats", { headers: headers(), cache: "no-store" });
    if (res.status === 401) return needToken();
    if (!res.ok) throw new Error(res.status + " " + res.statusText);
    renderStats(await res.json());
    setConn("live", true);
    document.body.dataset.stats = "ok";
  } catch (err) {
    setConn("unreachable", false);
  } finally {
    if ($("login").hidden) setTimeout(pollStats, STATS_EVERY_MS);
  }
}

// --- alerts ---------------------------------------------------------------

function fieldValues(msg, name) {
  const out = [];
  for (const f of msg.fields || []) {
    if (f.name === name) out.push(...(f.value || []).filter((v) => v !== null));
  }
  return out;
}

const SEVERITIES = { 2: "high", 4: "medium", 5: "low" };

function renderAlert(msg) {
  const first = (name) => fieldValues(msg, name)[0];
  const title = first("alert.title") || first("alert.description") || msg.payload || "(untitled alert)";
  const desc = first("alert.title") ? first("alert.description") : null;
  const severity = String(first("alert.severity") || SEVERITIES[msg.severity] || "low");
  const sources = [];
  for (const f of msg.fields || []) {
    if (f.name === "alert.source") sources.push((f.value || []).filter((v) => v !== null).join(" "));
  }
  const id = first("alert.id");
  const update = first("alert.update") === true;
  const when = new Date(msg.timestamp);
  const li = el("li", { class: "sev-" + severity },
    el("div", { class: "title" }, title),
    desc ? el("div", { class: "desc" }, desc) : null,
    sources.length ? el("div", { class: "sources" }, "sources: " + sources.join(", ")) : null,
    el("div", { class: "meta" },
      [severity, update ? "update of #" + id : id !== undefined ? "#" + id : null, msg.logger, isNaN(when) ? msg.timestamp : when.toLocaleTimeString()]
        .filter((x) => x !== null && x !== undefined && x !== "").join(" · ")));
  li.dataset.severity = severity;
  const list = $("alerts");
  list.prepend(li);
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  $("no-alerts").hidden = true;
}

function tapStatus(t) {
  if (t.dropped > 0) {
    const p = $("alert-drops");
    p.hidden = false;
    p.textContent = t.dropped + " alerts dropped (this page read too slowly)";
  }
}

async function followAlerts() {
  const status = $("alert-status");
  try {
    const res = await fetch(ALERT_TAP, { headers: headers(), cache: "no-store" });
    if (res.status === 401) return needToken();
    if (!res.ok) {
      status.textContent = "unavailable: " + (await res.text()).trim();
      setTimeout(followAlerts, 10000);
      return;
    }
    status.textContent = "live";
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += dec.decode(value, { stream: true });
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line) continue;
        const obj = JSON.parse(line);
        if (obj.tap) tapStatus(obj.tap);
        else renderAlert(obj);
      }
    }
    status.textContent = "reconnecting…";
  } catch (err) {
    status.textContent = "reconnecting…";
  }
  setTimeout(followAlerts, 2000);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("tern-token", token);
  $("login").hidden = true;
  pollStats();
  followAlerts();
});

pollStats();
followAlerts();

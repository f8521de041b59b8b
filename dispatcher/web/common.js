/* Shared by /tech, /status and /ops: token, API calls with timeout, server clock, wording. */
"use strict";
const PAGE = document.body.dataset.page;
const TOKEN_KEY = "hourglass.token." + PAGE;
const mem = {};
const store = {
  get(k) { try { return localStorage.getItem(k); } catch (e) { return mem[k] ?? null; } },
  set(k, v) { try { localStorage.setItem(k, v); } catch (e) { mem[k] = v; } },
  del(k) { try { localStorage.removeItem(k); } catch (e) { delete mem[k]; } },
};
/* ---- Authentication, all of it here: a bearer token taken once from the #token= link and kept
   in localStorage. The pages reach it only through `auth`, so sessions replace this block alone. ---- */
function takeToken() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    store.set(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);  // keep it out of history and screenshots
  }
  return store.get(TOKEN_KEY);
}
let token = takeToken();
const auth = {
  signedIn: () => Boolean(token),
  headers: () => ({"Authorization": "Bearer " + token}),
  streamUrl: (path) => path + "?access_token=" + encodeURIComponent(token),  // EventSource sends no headers
  remember(value) { store.set(TOKEN_KEY, value); },  // a pasted token; the page reloads after
  forget() { store.del(TOKEN_KEY); },
};
let skew = 0;  // server clock minus ours, so a phone with a wrong clock still counts down right
const now = () => Date.now() + skew;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

async function api(path, opts = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 10000);  // a hung request on a weak signal counts as failed
  const headers = {...auth.headers(), "Accept": "application/json"};
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.key) headers["Idempotency-Key"] = opts.key;
  let r;
  try {
    r = await fetch(path, {method: opts.method || "GET", headers, cache: "no-store", signal: ctl.signal,
                           body: opts.body === undefined ? undefined : JSON.stringify(opts.body)});
  } catch (e) {
    const err = new Error("no connection"); err.status = 0; throw err;
  } finally { clearTimeout(timer); }
  const date = Date.parse(r.headers.get("Date") || "");
  if (!isNaN(date)) {
    const s = date - Date.now();
    skew = Math.abs(s) > 3000 ? s : 0;  // the Date header has 1 s resolution: ignore small differences
  }
  let data = null;
  try { data = await r.json(); } catch (e) { /* empty or non-JSON body */ }
  if (!r.ok) {
    const err = new Error((data && data.detail) || ("HTTP " + r.status)); err.status = r.status; throw err;
  }
  return data;
}

function clock(ms) {  // 42:05, or 1:02:05 past an hour
  const s = Math.floor(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
const localTime = (iso) => new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
}

const KINDS = {disk: "Disk", fan: "Fan", psu: "Power supply", dimm: "Memory module", memory: "Memory module",
  nic: "Network card", cpu: "CPU", raid: "RAID array", host: "Server"};
const FAILURES = {smart_failed: "failed SMART health check", fan_stopped: "stopped spinning",
  psu_lost: "lost power", host_down: "stopped responding", ecc_uncorrectable: "reported uncorrectable memory errors",
  raid_degraded: "is degraded", mce: "reported a machine-check error", link_down: "lost its link"};
function what(i) {
  const kind = KINDS[i.kind] || (i.kind ? i.kind[0].toUpperCase() + i.kind.slice(1) : "Part");
  const slot = i.slot ? ` in slot ${i.slot}` : "";
  return `${kind}${slot} ${FAILURES[i.failure] || String(i.failure || "failed").replace(/_/g, " ")}`;
}

/* Shared by /tech, /status and /ops: sign-in, API calls with timeout, server clock, wording. */
"use strict";
const PAGE = document.body.dataset.page;
const mem = {};
const store = {
  get(k) { try { return localStorage.getItem(k); } catch (e) { return mem[k] ?? null; } },
  set(k, v) { try { localStorage.setItem(k, v); } catch (e) { mem[k] = v; } },
  del(k) { try { localStorage.removeItem(k); } catch (e) { delete mem[k]; } },
};
/* ---- Authentication, all of it here: the session cookie a one-time sign-in link set. It is
   HttpOnly (no script can read it) and the browser sends it to this site alone, with fetch and
   EventSource; no secret is ever in a URL or in storage. Whether this browser is signed in, and
   as whom, the API says (401: not, or no longer). Who signed in last is kept, never a secret, to
   key the offline caches so another person never sees them. ---- */
const ME_KEY = "hourglass.me";
const auth = {
  me() { try { return JSON.parse(store.get(ME_KEY) || "null"); } catch (e) { return null; } },
  key() { const m = auth.me(); return m ? `${m.role}:${m.person || m.customer}` : null; },
  signedIn: () => true,  // the first API answer tells; a 401 shows the sign-in help
  headers: () => ({}),
  streamUrl: (path) => path,
  async check() {  // who this session is; kept for the caches (a 401 throws like any call)
    const me = await api("/api/v1/me");
    store.set(ME_KEY, JSON.stringify(me));
    return me;
  },
  forget() { store.del(ME_KEY); },
  async signOut() {  // ends this session on the server, then the sign-in page
    try { await fetch("/signout", {method: "POST", credentials: "same-origin"}); } catch (e) { /* offline: the cookie stays until it ends */ }
    auth.forget();
    location.href = "/signin";
  },
};
const SIGNIN_HELP = `<p>Open the sign-in link you were sent (it works once and signs this device in),
  or <a href="/signin">ask for a new link</a> with your email address.</p>`;
let skew = 0;  // server clock minus ours, so a phone with a wrong clock still counts down right
const now = () => Date.now() + skew;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

async function api(path, opts = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 10000);  // a hung request on a weak signal counts as failed
  const headers = {...auth.headers(), ...(opts.headers || {}), "Accept": "application/json"};
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

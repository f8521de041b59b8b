/* The tech page's script (/tech); shared helpers come from common.js, loaded first. */
"use strict";
function newKey() {  // crypto.randomUUID needs https; getRandomValues works on plain http too
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function showHelp(reason) {
  document.getElementById("bar").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("list").innerHTML = `<section class="help" id="help">
    <h2>Sign in</h2>
    <p>${esc(reason)}</p>
    ${SIGNIN_HELP}
    <p>No email address on file? Ask your site manager to send you a link.</p></section>`;
}

/* ---- live: server-sent events, with polling every 10 s while the stream is down ---- */
let es = null, lastOk = 0, online = false;
function live(refresh) {
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    const streaming = es && es.readyState === 1;
    timer = setTimeout(async () => { await refresh(); schedule(); }, streaming ? 60000 : 10000);
  };
  const connect = () => {
    if (!("EventSource" in window)) return;
    es = new EventSource(auth.streamUrl("/api/v1/stream"));
    es.addEventListener("change", () => refresh());
    es.onopen = () => { schedule(); paintStatus(); };
    es.onerror = () => {
      paintStatus(); schedule();
      if (es.readyState === 2) setTimeout(connect, 15000);  // closed for good (e.g. a proxy's 502): start over
    };
  };
  connect(); schedule(); refresh();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.addEventListener("online", () => { refresh(); retryFailed(); });
  window.addEventListener("offline", () => { online = false; paintStatus(); });
  setInterval(() => { if (navigator.onLine) retryFailed(); }, 15000);  // a signal back without an "online" event
}

/* ---- the technician's jobs ---- */
const PENDING_KEY = "hourglass.tech.pending";
const CACHE_KEY = "hourglass.tech.jobs";
const NEXT = {  // the one next action for each job state
  dispatched: {action: "acknowledge", label: "Acknowledge"},
  acknowledged: {action: "on-site", label: "On site"},
  on_site: {action: "replaced", label: "Replaced…"},
};
const ACTION_LABEL = {acknowledge: "Acknowledge", "on-site": "On site", replaced: "Replaced", decline: "Decline", done: "Done", dismiss: "False alarm", notes: "Note", "pause-request": "Pause request"};
const STATE_LABEL = {dispatched: "new job", acknowledged: "acknowledged", on_site: "on site", replaced: "replaced"};
const DONE_LABEL = {acknowledge: "Acknowledged", "on-site": "On site", replaced: "Replaced", decline: "Declined", done: "Done", dismiss: "Dismissed", notes: "Note added", "pause-request": "Pause asked"};
/* Planned work (proactive jobs from predictions): pending taps are keyed "p<id>", SLA jobs by their id. */
const PLANNED_CACHE_KEY = "hourglass.tech.planned";
const PNEXT = {planned: {action: "acknowledge", label: "Acknowledge"}, acknowledged: {action: "done", label: "Done…"}};
let planned = null;
try {
  const c = JSON.parse(store.get(PLANNED_CACHE_KEY) || "null");
  if (c && c.who && c.who === auth.key()) planned = c.items;
} catch (e) { /* no cache */ }
let jobs = null, updatedAt = 0, known = null, loading = null, again = false;
/* The outbox: one tap waiting per job, {action, body, key, at (the phone's time of the tap),
   label, status: waiting | sending | failed}, kept across reloads; the server's refusals of
   taps that waited (the job went to someone else meanwhile) stay in `refused` until dismissed;
   `sent` holds the last outcomes for a minute; `workerQueue` what the service worker holds
   (notification actions taken without a signal: pwa.js keeps it up to date). */
const REFUSED_KEY = "hourglass.tech.refused";
let pending = {}, refused = [], sent = [], workerQueue = [];
try { pending = JSON.parse(store.get(PENDING_KEY) || "{}"); } catch (e) { pending = {}; }
try { refused = JSON.parse(store.get(REFUSED_KEY) || "[]"); } catch (e) { refused = []; }
const savePending = () => store.set(PENDING_KEY, JSON.stringify(pending));
const saveRefused = () => store.set(REFUSED_KEY, JSON.stringify(refused));
try {
  const c = JSON.parse(store.get(CACHE_KEY) || "null");
  if (c && c.who && c.who === auth.key()) { jobs = c.items; updatedAt = c.at; }
} catch (e) { /* no cache */ }

async function refresh() {
  if (loading) { again = true; return loading; }  // coalesce bursts of change events into one request
  loading = (async () => {
    try {
      const data = await api("/api/v1/jobs?mine=true");
      const fresh = new Set(data.items.map((j) => j.id));
      const arrived = known ? data.items.filter((j) => !known.has(j.id)).map((j) => j.id) : [];
      known = fresh; jobs = data.items; updatedAt = Date.now(); online = true; lastOk = updatedAt;
      store.set(CACHE_KEY, JSON.stringify({who: auth.key(), at: updatedAt, items: jobs}));
      try {  // planned work second: a failure here never hides the SLA jobs
        planned = (await api("/api/v1/proactive-jobs?mine=true")).items;
        store.set(PLANNED_CACHE_KEY, JSON.stringify({who: auth.key(), items: planned}));
      } catch (e) { if (e.status === 401) throw e; }
      render(arrived);
      if (arrived.length && navigator.vibrate) navigator.vibrate([200, 100, 200]);
    } catch (e) {
      if (e.status === 401) { signedOut(e); return; }
      if (e.status === 403) { showHelp("This page is for technicians: " + e.message + "."); stop = true; return; }
      online = e.status !== 0 ? online : false;
      paintStatus();
    } finally {
      loading = null;
      if (again && !stop) { again = false; refresh(); }
    }
  })();
  return loading;
}
let stop = false;
function signedOut(e) {  // the session ended (or never began): caches go, the help shows
  auth.forget(); store.del(CACHE_KEY); store.del(PLANNED_CACHE_KEY); store.del(REFUSED_KEY);
  refused = []; stop = true; if (es) es.close(); paintOutbox();
  showHelp(e.message + ".");
}

function render(arrived = []) {
  if (stop) return;
  const list = document.getElementById("list");
  document.getElementById("count").textContent = jobs ? `${jobs.length} open` : "";
  if (jobs === null) { list.innerHTML = `<p class="empty">Loading your jobs…</p>`; return; }
  const sla = jobs.length ? jobs.map((j) => card(j, arrived.includes(j.id))).join("")
    : `<div class="empty"><b>No open jobs</b>New jobs appear here the moment they are dispatched to you.</div>`;
  list.innerHTML = sla + plannedSection();
  tick();
}

function plannedSection() {  // below every SLA job, always
  if (!planned || !planned.length) return "";
  return `<section class="planned-sec" id="planned" aria-label="Planned work, no clock">
    <h2>Planned work (no clock) · ${planned.length}</h2>${planned.map(pcard).join("")}</section>`;
}

function pcard(j) {
  const p = j.prediction, loc = p.location || {};
  const where = [p.host, loc.room && "room " + loc.room, loc.rack && "rack " + loc.rack,
                 loc.unit != null && "U" + loc.unit, p.slot && "slot " + p.slot].filter(Boolean).join(" · ");
  const spare = j.spare_part ? `spare ${j.spare_part} reserved` : (j.part_note || "");
  return `<article class="pjob" data-pjob="${j.id}">
    <div class="top"><span>${esc(where)}</span><span class="state">${esc(j.state)}</span></div>
    <div class="what">${esc(p.kind)}: ${esc(String(p.prediction).replace(/_/g, " "))}</div>
    <div class="nc">No deadline · planned ${esc(localTime(j.planned_at))}${spare ? " · " + esc(spare) : ""}</div>
    ${pactions(j)}
  </article>`;
}

function pactions(j) {
  const id = "p" + j.id, p = pending[id], next = PNEXT[j.state];
  if (p) {
    const label = p.status === "failed" ? "Failed – tap to retry" : "Sending…";
    const note = p.status === "failed"
      ? `<div class="note failed" data-note>“${esc(ACTION_LABEL[p.action])}” not saved${p.error ? ": " + esc(p.error) : ""}.</div>`
      : `<div class="note" data-note>Sending “${esc(ACTION_LABEL[p.action])}”${p.attempt > 1 ? ` (try ${p.attempt})` : ""}…</div>`;
    return `<div class="actions"><button type="button" class="quiet ${p.status}" data-retry="${id}">${label}</button></div>${note}`;
  }
  const saved = savedNote[id] && Date.now() - savedNote[id].at < 4000
    ? `<div class="note saved" data-note>Saved: ${esc(savedNote[id].text)} ✓</div>` : '<div class="note" data-note></div>';
  if (!next) return saved;
  return `<div class="actions"><button type="button" class="secondary" data-act="dismiss" data-job-id="${id}">False alarm</button><button type="button" class="quiet" data-act="${next.action}" data-job-id="${id}">${next.label}</button></div>${saved}`;
}

/* ---- the job card: where first (large), then what, the clock, the spare, and the actions at
   the bottom of the card within thumb reach; the most-used action is the biggest ---- */
function card(j, isNew) {
  const i = j.incident, loc = i.location || {}, c = j.card || {};
  const cell = (label, v, cls = "") => `<div class="${cls}"><small>${label}</small><b>${esc(v ?? "–")}</b></div>`;
  const site = c.site_name ? `${c.site_name} (${i.site})` : i.site;
  return `<article class="job${isNew ? " new" : ""}" data-job="${j.id}" data-deadline="${esc(i.deadline)}">
    <div class="where" data-where>${cell("Site", site, "wide")}${cell("Room", loc.room)}${cell("Rack", loc.rack)}${cell("Unit", loc.unit != null ? "U" + loc.unit : null)}${cell("Slot", i.slot)}</div>
    <div class="top"><span><b>${esc(i.host)}</b> · ${esc(i.customer)}</span>
      <span class="state">${esc(STATE_LABEL[j.state] || j.state)}</span></div>
    <div class="what">${esc(what(i))}</div>
    <div class="comp">${esc(i.component)}${i.serial ? " · old serial " + esc(i.serial) : ""}</div>
    <div class="cd" data-cd>--:--</div>
    <div class="due" data-due>due ${esc(localTime(i.deadline))}</div>
    ${spareLine(c)}${pauseLine(c)}
    <div class="acts">${actions(j)}</div>
  </article>`;
}

function spareLine(c) {  // which part to take, and from which shelf or bin
  if (!c.spare) return `<div class="spare none" data-spare>No spare reserved — ask the site manager</div>`;
  return `<div class="spare" data-spare>Spare: <b>${esc(c.spare.part)}</b>${c.spare.location ? ", " + esc(c.spare.location) : " (no shelf given: ask the store room)"}</div>`;
}

const PAUSE_REASON = {customer_denied_access: "customer denied access", customer_maintenance_window: "customer's maintenance window"};
function pauseLine(c) {  // the manager's answer to a pause request, on the card
  const p = c.pause_request;
  if (!p) return "";
  const why = esc(PAUSE_REASON[p.reason] || p.reason);
  if (p.state === "pending") return `<div class="asked" data-pause>Pause asked (${why}): waiting for the site manager. The clock runs.</div>`;
  if (p.state === "granted") return `<div class="asked ok" data-pause>Pause granted (${why}).</div>`;
  return `<div class="asked no" data-pause>Pause refused${p.answer ? ": " + esc(p.answer) : ""}. The clock runs.</div>`;
}

function actions(j) {
  const p = pending[j.id];
  const next = NEXT[j.state];
  let note = "";
  if (p) {
    const label = p.status === "failed" ? "Failed – tap to retry" : "Sending…";
    note = p.status === "failed"
      ? `<div class="note failed" data-note>“${esc(ACTION_LABEL[p.action])}” not saved${p.error ? ": " + esc(p.error) : ""}.</div>`
      : `<div class="note" data-note>Sending “${esc(ACTION_LABEL[p.action])}”${p.attempt > 1 ? ` (try ${p.attempt}${p.error ? ", " + esc(p.error) : ""})` : ""}…</div>`;
    return `<div class="actions"><button type="button" class="primary ${p.status}" data-retry="${j.id}">${label}</button></div>${note}`;
  }
  if (savedNote[j.id] && Date.now() - savedNote[j.id].at < 4000) {
    note = `<div class="note saved" data-note>Saved: ${esc(savedNote[j.id].text)} ✓</div>`;
  }
  const more = `<div class="actions more">
      <button type="button" class="secondary" data-act="note" data-job-id="${j.id}">Note</button>
      <button type="button" class="secondary" data-act="photo" data-job-id="${j.id}">Photo</button>
      <button type="button" class="secondary" data-act="pause-request" data-job-id="${j.id}">Ask pause</button>
    </div>`;
  if (!next) {
    return `<div class="waiting">Part replaced${j.new_serial ? " (" + esc(j.new_serial) + ")" : ""}. Waiting for telemetry to verify it.</div>${more}${note}`;
  }
  const decline = j.state === "dispatched" || j.state === "acknowledged"
    ? `<button type="button" class="secondary" data-act="decline" data-job-id="${j.id}">Decline</button>` : "";
  return `${more}<div class="actions main">${decline}<button type="button" class="primary" data-act="${next.action}" data-job-id="${j.id}">${next.label}</button></div>${note || '<div class="note" data-note></div>'}`;
}
const savedNote = {};

function tick() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const left = Date.parse(el.dataset.deadline) - now();
    const red = left < 15 * 60 * 1000;  // under 15 minutes, or past due
    const cd = el.querySelector("[data-cd]"), due = el.querySelector("[data-due]");
    cd.textContent = left >= 0 ? clock(left) : "−" + clock(left);
    cd.classList.toggle("red", red); due.classList.toggle("red", red); el.classList.toggle("urgent", red);
    due.textContent = left >= 0 ? `left · due ${localTime(el.dataset.deadline)}`
                                : `OVERDUE since ${localTime(el.dataset.deadline)}`;
  }
  paintStatus();
}

function paintStatus() {
  if (stop) return;
  const streaming = es && es.readyState === 1;
  const el = document.getElementById("status");
  const banner = document.getElementById("banner");
  const age = updatedAt ? ago(Date.now() - updatedAt) : "never";
  const offline = !online || !navigator.onLine;
  el.innerHTML = offline
    ? `<span class="dot off"></span>Offline · updated ${age}`
    : `<span class="dot ${streaming ? "live" : ""}"></span>${streaming ? "Live" : "Refreshing every 10 s"} · updated ${age}`;
  banner.hidden = !offline || !updatedAt;
  if (!banner.hidden) banner.textContent = `No connection. Showing your jobs as of ${new Date(updatedAt).toLocaleTimeString()} (${age}); taps are kept and sent when the signal is back.`;
  paintOutbox();
}

/* ---- the outbox, shown above the jobs: what waits, what the server refused, what just went ---- */
const SENT_SHOWN = 60000;  // a sent tap's outcome stays in view for a minute
function jobName(jobId) {
  const id = String(jobId);
  return id.startsWith("p") ? `planned job ${id.slice(1)}` : `job ${id}`;
}
function paintOutbox() {
  const box = document.getElementById("outbox");
  if (!box) return;
  sent = sent.filter((x) => Date.now() - x.done < SENT_SHOWN);
  const waiting = Object.entries(pending);
  const queued = workerQueue.length + waiting.length;
  if (stop || (!queued && !refused.length && !sent.length)) { box.hidden = true; box.innerHTML = ""; return; }
  const line = (id, p) => {
    const how = p.status === "failed" ? `not sent: ${esc(p.error || "refused")} – tap the job's button to retry`
      : p.inflight ? `sending${p.attempt > 1 ? ` (try ${p.attempt})` : ""}…`
      : navigator.onLine ? `retrying${p.error ? " (" + esc(p.error) + ")" : ""}` : "waiting for a signal";
    return `<li data-outbox="${esc(id)}"><b>${esc(ACTION_LABEL[p.action] || p.action)}</b> · ${esc(jobName(id))}${p.label ? " (" + esc(p.label) + ")" : ""}
      · tapped ${esc(ago(Date.now() - Date.parse(p.at)))} <span class="how">${how}</span></li>`;
  };
  const fromWorker = (w) => `<li data-outbox="${esc(w.id)}"><b>${esc(w.title || w.action)}</b> · ${esc(w.job != null ? "job " + w.job : "a job")}
      · from a notification, ${esc(ago(Date.now() - Date.parse(w.device_time)))} <span class="how">waiting for a signal</span></li>`;
  const list = queued ? `<h2>Waiting to send (${queued})</h2><ul>${waiting.map(([id, p]) => line(id, p)).join("")}${workerQueue.map(fromWorker).join("")}</ul>` : "";
  const no = refused.map((r) => `<div class="refused" role="alert" data-refused="${esc(r.key)}">
      <p><b>${esc(upper(r.detail))}.</b> Tapped at ${esc(localTime(r.at))}: “${esc(ACTION_LABEL[r.action] || r.action)}” for ${esc(jobName(r.job))}${r.label ? " (" + esc(r.label) + ")" : ""}.</p>
      <button type="button" data-dismiss="${esc(r.key)}">Dismiss</button></div>`).join("");
  const ok = sent.map((x) => `<li class="sent" data-sent="${esc(x.key)}">✓ ${esc(ACTION_LABEL[x.action] || x.action)} · ${esc(jobName(x.job))}: sent, tapped ${esc(localTime(x.at))}${x.waited > 5000 ? `, received ${esc(localTime(new Date(x.done).toISOString()))}` : ""}</li>`).join("");
  box.innerHTML = list + no + (ok ? `<ul class="sent-list">${ok}</ul>` : "");
  box.hidden = false;
}
const upper = (t) => { const s = String(t || "refused by the server"); return s[0].toUpperCase() + s.slice(1); };
document.getElementById("outbox").addEventListener("click", (e) => {
  const b = e.target.closest("[data-dismiss]");
  if (!b) return;
  refused = refused.filter((r) => r.key !== b.dataset.dismiss); saveRefused(); paintOutbox();
});

/* ---- actions: one Idempotency-Key per tap, reused by every retry, with the phone's time ---- */
const BACKOFF = [1000, 2000, 4000, 8000, 15000];  // then every 15 s while the phone says it is online
// the server's answers that mean the job moved on while the tap waited: kept until dismissed
const REFUSALS = new Set([403, 404, 409]);
async function send(jobId) {
  const p = pending[jobId];
  if (!p || p.inflight) return;
  if (!navigator.onLine) { p.status = "waiting"; savePending(); render(); return; }  // the "online" event sends it
  p.inflight = true; p.status = "sending"; p.attempt = (p.attempt || 0) + 1; savePending(); render();
  try {
    const isPlanned = String(jobId).startsWith("p");
    const path = isPlanned ? `/api/v1/proactive-jobs/${String(jobId).slice(1)}/${p.action}` : `/api/v1/jobs/${jobId}/${p.action}`;
    const job = await api(path, {method: "POST", key: p.key, body: p.body, headers: {"Hourglass-Device-Time": p.at}});
    delete pending[jobId]; savePending(); online = true;
    sent.push({key: p.key, job: jobId, action: p.action, at: p.at, done: Date.now(), waited: Date.now() - Date.parse(p.at)});
    savedNote[jobId] = {text: DONE_LABEL[p.action], at: Date.now()};
    setTimeout(render, 4100);
    if (isPlanned) {
      if (planned) planned = planned.map((j) => (j.id === job.id ? job : j)).filter((j) => j.state in PNEXT);
    } else if (jobs) {
      jobs = jobs.map((j) => (j.id === job.id ? job : j))
                 .filter((j) => ["dispatched", "acknowledged", "on_site", "replaced"].includes(j.state));
    }
    render(); refresh();
  } catch (e) {
    p.inflight = false;
    if (e.status === 401) { p.status = "waiting"; savePending(); signedOut(e); return; }  // kept for after the sign-in
    const retryable = e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
    if (retryable) {  // an outbox does not give up: the tap waits for the signal
      if (e.status === 0) online = false;
      p.status = "waiting"; p.error = e.message; savePending(); render();
      if (navigator.onLine) setTimeout(() => send(jobId), BACKOFF[Math.min(p.attempt, BACKOFF.length) - 1]);
      return;
    }
    if (REFUSALS.has(e.status)) {  // the job moved on meanwhile: say so until dismissed, never apply
      delete pending[jobId]; savePending();
      refused.push({key: p.key, job: jobId, action: p.action, at: p.at, label: p.label, status: e.status, detail: e.message});
      saveRefused(); render(); refresh();
      return;
    }
    p.status = "failed"; p.error = e.message; savePending(); render();  // e.g. a bad serial: fix, then retry
    setTimeout(() => { if (pending[jobId] === p && p.status === "failed") { delete pending[jobId]; savePending(); refresh(); render(); } }, 6000);
  }
}

function retryFailed() {  // the signal is back: resend every waiting tap, with its first key
  for (const [id, p] of Object.entries(pending)) if (p.status !== "failed" && !p.inflight) send(id);
}

function tap(jobId, action, body) {
  const id = String(jobId), j = id.startsWith("p") ? (planned || []).find((x) => "p" + x.id === id)
    : (jobs || []).find((x) => String(x.id) === id);
  const label = j ? (j.incident ? j.incident.host : j.prediction && j.prediction.host) : null;
  pending[jobId] = {action, body, key: newKey(), at: new Date().toISOString(), label, status: "sending", attempt: 0};
  savePending(); send(jobId);
}

/* ---- the bottom sheet for the serial number and the decline reason ---- */
let sheetSubmit = null;
function openSheet({title, text, field, chips = [], ok, onSubmit}) {
  document.getElementById("sheet-title").textContent = title;
  document.getElementById("sheet-text").textContent = text;
  document.getElementById("sheet-field").innerHTML = field;
  document.getElementById("sheet-err").textContent = "";
  document.getElementById("sheet-ok").textContent = ok;
  const chipBox = document.getElementById("sheet-chips");
  chipBox.innerHTML = chips.map((c) => `<button type="button">${esc(c)}</button>`).join("");
  chipBox.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
    document.querySelector("#sheet-field textarea, #sheet-field input").value = b.textContent;
  }));
  sheetSubmit = onSubmit;
  document.getElementById("sheet").hidden = false;
  const input = document.querySelector("#sheet-field input, #sheet-field textarea");
  if (input) input.focus();
}
const closeSheet = () => { stopScan(); document.getElementById("sheet").hidden = true; sheetSubmit = null; };
document.getElementById("sheet-cancel").addEventListener("click", closeSheet);
document.getElementById("sheet").addEventListener("click", (e) => { if (e.target.id === "sheet") closeSheet(); });
document.getElementById("sheet-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const ok = document.getElementById("sheet-ok");
  if (ok.disabled) return;
  const field = document.querySelector("#sheet-field textarea, #sheet-field input:not([type=file]):not([type=radio])");
  const value = field ? field.value.trim() : "";
  ok.disabled = true;
  let problem = null;
  try { problem = sheetSubmit && await sheetSubmit(value); } finally { ok.disabled = false; }
  if (problem) document.getElementById("sheet-err").textContent = problem; else closeSheet();
});

/* ---- the new part's serial: the shape the server gives per part kind, checked here first ---- */
function serialProblem(v, job) {  // what is wrong, said so the technician can fix it; null if fine
  const shape = (job && job.card && job.card.serial_shape) || {pattern: "[A-Z0-9][A-Z0-9._/:-]{2,62}[A-Z0-9]", expected: "4 to 64 letters and digits", example: "ABC12345"};
  const i = job ? job.incident : {}, spare = job && job.card && job.card.spare;
  const want = `${shape.expected}, e.g. ${shape.example}`;
  if (!v) return `Scan or type the new part's serial: ${want}.`;
  if (spare && v.toLowerCase() === spare.part.toLowerCase()) return `${v} is the spare's part number (the model), not its serial: use the label marked S/N (${want}).`;
  if (i.serial && v.toLowerCase() === i.serial.toLowerCase()) return `${v} is the failed part's serial; scan the new part's label.`;
  if (!new RegExp(`^(?:${shape.pattern})$`, "i").test(v) || !/[0-9]/.test(v)) return `${v} does not look like a ${i.kind || "part"} serial: expected ${want}. Check the label and try again.`;
  return null;
}
const SCAN_FORMATS = ["code_128", "code_39", "qr_code", "data_matrix"];
function canScan(w = window) {  // "scan" with the camera, else "type" (no BarcodeDetector or no camera API)
  return ("BarcodeDetector" in w) && w.navigator.mediaDevices && w.navigator.mediaDevices.getUserMedia ? "scan" : "type";
}
function pickScanned(values, job) {  // a label carries several codes (part number, serial): the first that fits
  const found = values.map((v) => String(v).trim()).filter(Boolean);
  const fits = found.find((v) => !serialProblem(v, job));
  return fits ? {value: fits, problem: null} : {value: found[0] || "", problem: found.length ? serialProblem(found[0], job) : "No code found."};
}
let scanning = null;
async function scanSerial(job) {  // the rear camera in a full-width video until a code that fits is seen
  const box = document.getElementById("scan"), video = document.getElementById("scan-video"), err = document.getElementById("sheet-err");
  try {
    const formats = (await BarcodeDetector.getSupportedFormats()).filter((f) => SCAN_FORMATS.includes(f));
    const detector = new BarcodeDetector({formats: formats.length ? formats : SCAN_FORMATS});
    const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: {ideal: "environment"}}, audio: false});
    scanning = stream; box.hidden = false; video.srcObject = stream; await video.play();
    while (scanning === stream) {
      const codes = await detector.detect(video);
      if (codes.length) {
        const got = pickScanned(codes.map((c) => c.rawValue), job);
        document.getElementById("serial").value = got.value;
        err.textContent = got.problem || "";
        if (!got.problem) break;
      }
      await new Promise((r) => setTimeout(r, 250));  // about four looks a second: enough, and cool
    }
  } catch (e) {
    err.textContent = "The camera is not available here (" + (e.message || e.name) + "): type the serial.";
  } finally { stopScan(); }
}
function stopScan() {
  if (scanning) scanning.getTracks().forEach((t) => t.stop());
  scanning = null;
  const box = document.getElementById("scan");
  if (box) box.hidden = true;
}

async function uploadPhoto(id, file) {  // needs the connection: a photo is not queued
  if (!navigator.onLine) return "No connection: photos need the signal (notes are kept and sent later).";
  if (file.size > 8 * 1024 * 1024) return `The photo is ${(file.size / 1e6).toFixed(1)} MB; the limit is 8 MB.`;
  let r;
  try {
    r = await fetch(`/api/v1/jobs/${id}/photos`, {method: "POST", body: file, cache: "no-store",
      headers: {"Content-Type": "application/octet-stream", "Idempotency-Key": newKey(), "Accept": "application/json"}});
  } catch (e) { return "No connection: the photo was not sent; try again when the signal is back."; }
  let data = null;
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) return (data && data.detail) || "HTTP " + r.status;
  savedNote[id] = {text: "Photo added", at: Date.now()}; render(); setTimeout(render, 4100);
  return null;
}

document.getElementById("list").addEventListener("click", (e) => {
  const retry = e.target.closest("[data-retry]");
  if (retry) {
    const p = pending[retry.dataset.retry];
    if (p && p.status === "failed") { p.attempt = 0; send(retry.dataset.retry); }  // same key as the first tap
    return;
  }
  const b = e.target.closest("[data-act]");
  if (!b) return;
  const id = b.dataset.jobId, job = (jobs || []).find((j) => String(j.id) === id);
  if (!id.startsWith("p") && pending[id] && ["notes", "pause-request", "replaced"].includes(b.dataset.act)) {
    return;  // one waiting action per job: the queue keeps the first until it is sent
  }
  if (b.dataset.act === "replaced") {
    const scan = canScan() === "scan";
    const c = job && job.card, shape = c && c.serial_shape;
    openSheet({title: "New part's serial", text: `${scan ? "Scan" : "Type"} the serial (S/N) from the label of the new part you put into ${job ? job.incident.host + " slot " + (job.incident.slot || "?") : "the server"}${shape ? ": " + shape.expected : ""}.`,
      field: `${scan ? '<button type="button" class="scan-btn" id="scan-btn">Scan the label</button>' : '<p class="hint" id="scan-hint">This browser cannot scan barcodes: type the serial.</p>'}
              <div class="scan" id="scan" hidden><video id="scan-video" playsinline muted></video></div>
              <input id="serial" name="serial" inputmode="text" autocapitalize="characters" spellcheck="false" placeholder="e.g. ${esc(shape ? shape.example : "ZA1B2C3D")}">`,
      ok: "Save serial", onSubmit: (v) => {
        const wrong = serialProblem(v, job);
        if (wrong) return wrong;
        stopScan(); tap(id, "replaced", {serial: v}); return null;
      }});
    const sb = document.getElementById("scan-btn");
    if (sb) sb.addEventListener("click", () => scanSerial(job));
  } else if (b.dataset.act === "note") {
    openSheet({title: "Add a note", text: "What you found or did; the site manager sees it on the incident. Kept and sent when the signal is back.",
      field: `<textarea id="note-text" name="note" maxlength="2000" placeholder="e.g. Caddy latch broken, used the spare caddy"></textarea>`,
      ok: "Save note", onSubmit: (v) => {
        if (!v) return "Write the note first.";
        if (v.length > 2000) return `The note is ${v.length} characters; keep it to 2,000.`;
        tap(id, "notes", {text: v}); return null;
      }});
  } else if (b.dataset.act === "photo") {
    const offline = !navigator.onLine;
    openSheet({title: "Add a photo", text: offline ? "No connection: a photo needs the signal (it is not kept for later). Notes are." : "Take a photo with the camera or pick one (at most 8 MB). Its location and camera data are removed before it is kept.",
      field: `<input id="photo-file" name="photo" type="file" accept="image/*">`,
      ok: "Send photo", onSubmit: async () => {
        const f = document.getElementById("photo-file").files[0];
        if (!f) return "Take or pick a photo first.";
        return uploadPhoto(id, f);
      }});
  } else if (b.dataset.act === "pause-request") {
    openSheet({title: "Ask for a clock pause", text: "The site manager decides; the clock keeps running until they pause it. Pick the cause and add a word.",
      chips: [],
      field: `<div class="choice" id="pause-reason">
                <label><input type="radio" name="reason" value="customer_denied_access" checked> Customer denied access</label>
                <label><input type="radio" name="reason" value="customer_maintenance_window"> Customer's maintenance window</label></div>
              <textarea id="pause-note" name="note" maxlength="1000" placeholder="e.g. Security desk will not open the cage"></textarea>`,
      ok: "Ask the manager", onSubmit: (v) => {
        const reason = document.querySelector("#pause-reason input:checked").value;
        if (v.length > 1000) return "Keep the note to 1,000 characters.";
        tap(id, "pause-request", v ? {reason, note: v} : {reason}); return null;
      }});
  } else if (id.startsWith("p") && b.dataset.act === "done") {
    const pj = (planned || []).find((j) => "p" + j.id === id);
    openSheet({title: "Planned work done", text: `What you did on ${pj ? pj.prediction.host + " " + (pj.prediction.slot || pj.prediction.component) : "the server"}. The serial only if a part went in.`,
      field: `<input id="pserial" name="serial" inputmode="text" autocapitalize="characters" spellcheck="false" placeholder="New part's serial (optional)">
              <textarea id="pnote" name="note" maxlength="1000" placeholder="What was done"></textarea>`,
      ok: "Save done", onSubmit: () => {
        const serial = document.getElementById("pserial").value.trim(), note = document.getElementById("pnote").value.trim();
        if (serial && !/^\S+$/.test(serial)) return "Enter the serial without spaces.";
        if (!note) return "Say in a few words what was done.";
        tap(id, "done", serial ? {serial, note} : {note}); return null;
      }});
  } else if (id.startsWith("p") && b.dataset.act === "dismiss") {
    openSheet({title: "False alarm", text: "Say why the prediction is wrong; it is closed and any reserved spare goes back to the shelf.",
      chips: ["Counter reset after firmware update", "Sensor glitch", "Part already replaced"],
      field: `<textarea id="preason" name="reason" maxlength="500" placeholder="Reason"></textarea>`,
      ok: "Dismiss", onSubmit: (v) => {
        if (v.length < 3) return "Give a reason (at least 3 characters).";
        tap(id, "dismiss", {reason: v}); return null;
      }});
  } else if (b.dataset.act === "decline") {
    openSheet({title: "Decline this job", text: "Say why, so the dispatcher can send someone else. A job is transferred only once.",
      chips: ["At another job", "Not on shift", "No spare part on site", "Not my site"],
      field: `<textarea id="reason" name="reason" maxlength="500" placeholder="Reason"></textarea>`,
      ok: "Decline job", onSubmit: (v) => {
        if (v.length < 3) return "Give a reason (at least 3 characters).";
        tap(id, "decline", {reason: v}); return null;
      }});
  } else {
    tap(id, b.dataset.act, undefined);
  }
});
document.getElementById("refresh").addEventListener("click", () => refresh());
document.getElementById("signout").addEventListener("click", () => { store.del(CACHE_KEY); store.del(PLANNED_CACHE_KEY); store.del(PENDING_KEY); store.del(REFUSED_KEY); auth.signOut(); });

if (!auth.signedIn()) {
  showHelp("This phone is not signed in yet.");
} else {
  document.getElementById("signout").hidden = false;
  auth.check().catch((e) => { if (e.status === 401) signedOut(e); });  // who: keys the caches
  render();
  for (const id of Object.keys(pending)) {  // taps left from a reload (or a phone that ran out of signal)
    pending[id].inflight = false; pending[id].attempt = 0;
    if (!pending[id].at) pending[id].at = new Date().toISOString();  // a tap queued before device times
    send(id);
  }
  live(refresh);
  setInterval(tick, 1000);
}

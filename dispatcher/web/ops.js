/* The ops page's script (/ops); shared helpers come from common.js, loaded first. */
"use strict";

function showHelp(reason) {
  stop = true;
  if (es) es.close();
  document.getElementById("app").innerHTML = `<section class="help" id="help">
    <h2>Sign in</h2>
    <p>${esc(reason)}</p>
    ${SIGNIN_HELP}
    <p>An admin makes a link with <code>hourglass signin-link --person YOUR-ID</code>.</p></section>`;
}

let es = null, stop = false, online = true, updatedAt = 0;
function live(refresh) {
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => { await refresh(); schedule(); }, es && es.readyState === 1 ? 60000 : 10000);
  };
  const connect = () => {
    if (!("EventSource" in window) || stop) return;
    es = new EventSource(auth.streamUrl("/api/v1/stream"));
    es.addEventListener("change", () => refresh());
    es.onopen = () => { schedule(); paintStatus(); };
    es.onerror = () => { paintStatus(); schedule(); if (es.readyState === 2) setTimeout(connect, 15000); };
  };
  connect(); schedule(); refresh();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
}
function paintStatus() {
  if (stop) return;
  const streaming = es && es.readyState === 1;
  const age = updatedAt ? ago(Date.now() - updatedAt) : "not yet";
  document.getElementById("status").innerHTML = (!online ? `<span class="dot off"></span>Offline · last updated ${age}`
    : `<span class="dot ${streaming ? "live" : ""}"></span>${streaming ? "Live" : "Polling every 10 s"} · updated ${age}`)
    + ` · local time · <a class="linkbtn" href="/passkeys">passkeys</a> · <button class="linkbtn" id="forget">sign out</button>`;
}

/* ---- open incidents: one request per state, so an old open incident is never cut off by paging ---- */
const STATES = ["detected", "dispatched", "acknowledged", "on_site", "replaced", "paused", "verified"];
const LABEL = {detected: "unassigned", dispatched: "dispatched", acknowledged: "acknowledged", on_site: "on site",
  replaced: "replaced", paused: "paused", verified: "verified, awaiting customer"};
const PER_STATE = 200;  // the API's page limit
let byState = null, more = {}, loading = null, again = false;
let aftercare = {claims: null, claimsMore: false, reviews: null};  // open claims, overdue breach reviews
let planned = null, plannedMore = false, facilities = null, facilitiesMore = false;  // null: not for this person
let ingest = null;  // the collectors' own word on their input (/api/v1/ingest); null: not for this person
let foreseen = null;  // breaches foreseen at dispatch (/api/v1/foreseen-breaches); null: not for this person
let claimsList = [], reviewsList = [];  // the queues behind the counts
let me = null;  // who is signed in (/api/v1/me): the board's actions are a manager's

async function refresh() {
  if (stop) return;
  if (loading) { again = true; return loading; }
  loading = (async () => {
    try {
      const pages = await Promise.all(STATES.map((s) => api(`/api/v1/incidents?state=${s}&limit=${PER_STATE}`)));
      byState = {}; more = {};
      STATES.forEach((s, n) => { byState[s] = pages[n].items; more[s] = pages[n].next !== null; });
      const [claims, reviews] = await Promise.all([  // null when this person may not see them
        api(`/api/v1/claims?state=open&limit=${PER_STATE}`).catch(() => null),
        api("/api/v1/reviews/overdue").catch(() => null)]);
      aftercare = {claims: claims && claims.items.length, claimsMore: !!(claims && claims.next !== null),
        reviews: reviews && reviews.items.length};
      claimsList = (claims && claims.items) || []; reviewsList = (reviews && reviews.items) || [];
      foreseen = await api("/api/v1/foreseen-breaches").then((r) => r.items).catch(() => null);
      const [pjobs, racks] = await Promise.all([  // planned work (no clock) and open rack outages
        api(`/api/v1/proactive-jobs?limit=${PER_STATE}`).catch(() => null),
        api(`/api/v1/facility-incidents?state=open&limit=${PER_STATE}`).catch(() => null)]);
      ingest = await api("/api/v1/ingest").catch(() => null);
      planned = pjobs && pjobs.items; plannedMore = !!(pjobs && pjobs.next !== null);
      facilities = racks && racks.items; facilitiesMore = !!(racks && racks.next !== null);
      updatedAt = Date.now(); online = true;
      render();
    } catch (e) {
      if (e.status === 401) { auth.forget(); showHelp(e.message + "."); return; }
      if (e.status === 403) { showHelp(e.message); return; }
      if (e.status === 0) online = false;
      paintStatus();
    } finally {
      loading = null;
      if (again && !stop) { again = false; refresh(); }
    }
  })();
  return loading;
}

function render() {
  if (stop || !byState) return;
  const siteSel = document.getElementById("site"), site = siteSel.value;
  const all = STATES.flatMap((s) => byState[s]);
  const sites = [...new Set(all.map((i) => i.site).concat((planned || []).map((j) => j.site),
    (facilities || []).map((f) => f.site)))].sort();
  siteSel.innerHTML = `<option value="">all sites</option>` + sites.map((s) => `<option ${s === site ? "selected" : ""}>${esc(s)}</option>`).join("");
  const shown = all.filter((i) => !site || i.site === site);
  const running = shown.filter((i) => i.state !== "verified").sort((a, b) => a.deadline.localeCompare(b.deadline));
  const t = now();
  const racksShown = (facilities || []).filter((f) => !site || f.site === site).sort((a, b) => a.deadline.localeCompare(b.deadline));
  const plannedShown = (planned || []).filter((j) => !site || j.site === site).sort((a, b) => a.planned_at.localeCompare(b.planned_at));
  const overdue = running.filter((i) => Date.parse(i.deadline) < t).length;
  const risk = running.filter((i) => { const l = Date.parse(i.deadline) - t; return l >= 0 && l < 15 * 60000; }).length;
  const count = (label, n, cls = "", plus = false) => `<div class="count ${cls}" data-count="${esc(label)}"><b>${n}${plus ? "+" : ""}</b><span>${esc(label)}</span></div>`;
  const counts = [count("open", running.length), count("overdue", overdue, overdue ? "red" : ""),
    count("under 15 min", risk, risk ? "amber" : "")]
    .concat(aftercare.claims === null ? [] : [count("open claims", aftercare.claims, aftercare.claims ? "amber" : "", aftercare.claimsMore)])
    .concat(aftercare.reviews === null ? [] : [count("reviews overdue", aftercare.reviews, aftercare.reviews ? "red" : "")])
    .concat(facilities === null ? [] : [count("facility incidents", racksShown.length, racksShown.length ? "red" : "", facilitiesMore)])
    .concat(planned === null ? [] : [count("planned work", plannedShown.length, "", plannedMore)])
    .concat(STATES.map((s) => count(LABEL[s], shown.filter((i) => i.state === s).length, "", more[s]))).join("");
  const rows = running.map((i) => `<tr data-incident="${i.id}" data-deadline="${esc(i.deadline)}">
      <td class="cd"><span data-cd></span><small>due ${esc(localTime(i.deadline))}</small></td>
      <td><span class="st ${esc(i.state)}">${esc(LABEL[i.state] || i.state)}</span></td>
      <td><b>${esc(i.host)}</b> <small>${esc(what(i))}</small></td>
      <td>${esc(i.site)}<small>${esc([i.location && i.location.room, i.location && i.location.rack, i.location && i.location.unit != null ? "U" + i.location.unit : null].filter(Boolean).join(" · "))}</small></td>
      <td>${i.assignee_name ? esc(i.assignee_name) : `<span class="none">nobody yet</span>`}</td>
      <td>${esc(i.customer)}<small>#${i.id} · detected ${esc(localTime(i.detected_at))}</small></td>
      <td class="acts">${actions(i)}</td></tr>`).join("");
  document.getElementById("app").innerHTML = ingestAlert() + foreseenSection(site) + `<div class="counts">${counts}</div>` + (running.length
    ? `<div class="wrap" tabindex="0" role="region" aria-label="Open incidents"><table><thead><tr><th>Time left</th><th>State</th><th>Host · what failed</th><th>Site</th><th>Assignee</th><th>Customer</th><th>Actions</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<div class="wrap"><p class="empty">No open incidents${site ? " at " + esc(site) : ""}.</p></div>`)
    + queuesSection() + facilitySection(racksShown, site) + plannedSection(plannedShown, site);
  tick();
}

/* ---- our own outage: the collectors' input, an operator's alert, never a customer's incident ---- */
function ingestAlert() {
  return ingestDown() + gapAlert() + coverageAlert();
}
function coverageAlert() {
  const short = (ingest && ingest.coverage) || [];
  return short.map((c) => `<div class="alert" role="alert" data-coverage="${esc(c.probe)}">${esc(c.sentence)}`
    + `<small>${esc(c.sample.join(", "))}${c.hosts > c.sample.length ? " …" : ""} · their disk or BMC failures cannot open an incident until fixed</small></div>`).join("");
}
function gapAlert() {
  const g = ingest && ingest.gaps;
  if (!g || !g.unfilled) return "";
  const each = g.unfilled_gaps.slice(0, 3).map((u) =>
    `<small>${esc(u.host)} · seq ${u.first_seq}${u.last_seq > u.first_seq ? "–" + u.last_seq : ""} · ${esc(u.reason)}</small>`).join("");
  return `<div class="alert" role="alert" data-gaps>${g.unfilled} message gap${g.unfilled > 1 ? "s" : ""} not filled (${g.missing_seqs} messages the broker acknowledged that no collector stored; their agents are still asked to resend them)${each}</div>`;
}
function ingestDown() {
  if (!ingest || ingest.ok) return "";
  const each = ingest.collectors.filter((c) => c.state !== "ready" || c.held_sites.length).map((c) =>
    `<small>${esc(c.id)}: ${esc({silent: "silent", not_ready: "not ready", ready: "ready"}[c.state] || c.state)}${c.reasons.length ? " · " + esc(c.reasons.join("; ")) : ""}`
    + `${c.held_sites.length ? " · sites held: " + esc(c.held_sites.join(", ")) : ""}</small>`).join("");
  return `<div class="alert" role="alert" data-ingest>${esc(ingest.summary)}${each}</div>`;
}

/* ---- rack outages (power or network): each with its own clock ---- */
const SCOPE = {rack: "rack", pdu: "PDU", switch: "switch"};
const scopeName = (f) => `${SCOPE[f.scope || "rack"] || f.scope} ${f.scope_id || f.rack}`;
const down = (f) => f.hosts.filter((h) => !h.back_at);  // linked hosts not yet back
function facilitySection(racks, site) {
  if (facilities === null) return "";
  const rows = racks.map((f) => `<tr data-facility="${f.id}" data-deadline="${esc(f.deadline)}">
      <td class="cd"><span data-cd></span><small>due ${esc(localTime(f.deadline))}</small></td>
      <td>${esc(f.site_name || f.site)}<small>${esc(f.site)}</small></td>
      <td><b>${esc(scopeName(f))}</b><small>${esc([f.room ? "room " + f.room : "", (f.scope || "rack") !== "rack" && f.rack ? "rack " + f.rack : ""].filter(Boolean).join(" · "))}</small></td>
      <td><span class="st ${esc(f.cause)}">${esc(f.cause === "power" ? "power lost" : f.cause === "network" ? "network lost" : f.cause)}</span></td>
      <td data-hosts><b>${down(f).length}</b> down<small>of ${esc(f.rack_hosts ?? "?")} on the ${esc(SCOPE[f.scope || "rack"] || f.scope)} · ${esc(down(f).slice(0, 4).map((h) => h.host).join(", "))}${down(f).length > 4 ? " …" : ""}</small></td>
      <td><small>#${f.id} · since ${esc(localTime(f.detected_at))}</small></td></tr>`).join("");
  return `<h2 class="sec" id="facility-title">Facility incidents</h2>` + (racks.length
    ? `<div class="wrap" id="facility" tabindex="0" role="region" aria-labelledby="facility-title"><table><thead><tr><th>Time left</th><th>Site</th><th>Rack</th><th>Cause</th><th>Hosts affected</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<div class="wrap" id="facility"><p class="empty">No rack outages${site ? " at " + esc(site) : ""}.</p></div>`);
}

/* ---- planned work from predictions: no clock, so an age instead of a countdown ---- */
function plannedSection(jobs, site) {
  if (planned === null) return "";
  const t = now();
  const rows = jobs.map((j) => `<tr data-pjob="${j.id}">
      <td>${esc(j.site)}</td>
      <td><b>${esc(j.prediction.host)}</b><small>${esc([j.prediction.location && j.prediction.location.room, j.prediction.location && j.prediction.location.rack].filter(Boolean).join(" · "))}</small></td>
      <td>${esc(String(j.prediction.prediction).replace(/_/g, " "))}<small>${esc(j.prediction.component)}${j.spare_part ? " · spare " + esc(j.spare_part) : j.part_note ? " · " + esc(j.part_note) : ""}</small></td>
      <td>${esc(j.technician_name || j.technician)}</td>
      <td><span class="st ${esc(j.state)}">${esc(j.state)}</span></td>
      <td data-age>${esc(ago(t - Date.parse(j.planned_at)))}<small>planned ${esc(localTime(j.planned_at))}</small></td></tr>`).join("");
  return `<h2 class="sec" id="planned-title">Planned work (no clock)</h2>` + (jobs.length
    ? `<div class="wrap" id="planned" tabindex="0" role="region" aria-labelledby="planned-title"><table><thead><tr><th>Site</th><th>Host</th><th>Prediction</th><th>Technician</th><th>State</th><th>Age</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<div class="wrap" id="planned"><p class="empty">No planned work${site ? " at " + esc(site) : ""}.</p></div>`);
}

/* ---- the board's actions: a manager reassigns a job not yet at the rack, pauses and resumes ---- */
const REASSIGNABLE = new Set(["dispatched", "acknowledged"]);
const PAUSE_REASONS = {customer_denied_access: "The customer denies access",
  customer_maintenance_window: "The customer's maintenance window"};
const isManager = () => !!me && me.role === "manager";
const isStaff = () => !!me && (me.role === "manager" || me.role === "admin");
function actions(i) {
  if (!isStaff()) return "";
  const b = (act, label) => `<button type="button" data-act="${act}" data-incident="${i.id}">${label}</button>`;
  return (REASSIGNABLE.has(i.state) ? b("reassign", "Reassign") : "")
    + (isManager() && i.state === "paused" ? b("resume", "Resume") : "")
    + (isManager() && i.state !== "paused" && i.state !== "verified" ? b("pause", "Pause") : "");
}
const minutesLate = (m) => m > 0 ? `${m} min late` : "in time";

/* ---- breaches the dispatch already foresaw: at the top, with the options ---- */
function foreseenSection(site) {
  if (foreseen === null) return "";
  const shown = foreseen.filter((f) => !site || f.site === site);
  const items = shown.map((f) => `<div class="alert warn" role="alert" data-foreseen="${f.id}">
      #${f.id} ${esc(f.host)} · ${esc(f.technician || "?")}'s fix is predicted at ${esc(localTime(f.predicted_fix))},
      ${esc(f.late_minutes)} min past the deadline ${esc(localTime(f.deadline))}
      <small>${f.options.length ? "Options: " + f.options.map((o) => `${esc(o.name)} (${esc(o.how)}): fix ${esc(localTime(o.predicted_fix))}, ${esc(minutesLate(o.late_minutes))}`).join("; ")
        : "No other technician or spare would be sooner: call someone in, or agree a pause with the customer."}</small>
      ${isStaff() && REASSIGNABLE.has(f.state) ? `<div class="acts"><button type="button" data-act="reassign" data-incident="${f.id}">Reassign</button></div>` : ""}</div>`).join("");
  return `<section id="foreseen" aria-labelledby="foreseen-title"><h2 class="sec" id="foreseen-title">Foreseen breaches</h2>`
    + (items || `<p class="calm">None: every live job's predicted fix is within its deadline${site ? " at " + esc(site) : ""}.</p>`) + `</section>`;
}

/* ---- the queues: open claims (take one over) and breached incidents waiting for their review ---- */
function queuesSection() {
  let out = "";
  if (aftercare.claims !== null) {
    const rows = claimsList.map((c) => `<tr data-claim="${c.id}"><td>#${c.id}</td><td>${esc(c.customer)}<small>${c.incident ? "incident #" + c.incident : "no incident"}</small></td>
        <td>${esc(c.text)}</td><td><span class="st">${esc(String(c.state).replace(/_/g, " "))}</span></td>
        <td>${c.manager ? esc(c.manager) : `<span class="none">nobody yet</span>`}<small>opened ${esc(localTime(c.opened_at))}</small></td>
        <td class="acts">${isManager() && c.manager !== me.person ? `<button type="button" data-act="take" data-claim="${c.id}">Take over</button>` : ""}</td></tr>`).join("");
    out += `<h2 class="sec" id="claims-title">Claims queue</h2><div class="wrap" id="claims" tabindex="0" role="region" aria-labelledby="claims-title">` + (rows
      ? `<table><thead><tr><th>Claim</th><th>Customer</th><th>What they say</th><th>State</th><th>Owner</th><th>Actions</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="empty">No open claims.</p>`) + `</div>`;
  }
  if (aftercare.reviews !== null) {
    const rows = reviewsList.map((r) => `<tr data-review="${r.incident}"><td>#${r.incident}</td><td>${esc(r.site)}</td><td>${esc(r.customer)}</td>
        <td><small>due ${esc(localTime(r.deadline))} · fixed ${esc(localTime(r.verified_at))}</small></td>
        <td class="acts">${isStaff() ? `<button type="button" data-act="review" data-incident="${r.incident}">Write the review</button>` : ""}</td></tr>`).join("");
    out += `<h2 class="sec" id="reviews-title">Reviews queue (breached, review overdue)</h2><div class="wrap" id="reviews" tabindex="0" role="region" aria-labelledby="reviews-title">` + (rows
      ? `<table><thead><tr><th>Incident</th><th>Site</th><th>Customer</th><th>Times</th><th>Actions</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="empty">No review overdue.</p>`) + `</div>`;
  }
  return out;
}

/* ---- one dialog for every action: it lives outside #app, so a live redraw never closes it ---- */
const dlg = document.getElementById("act");
let pending = null;  // {title, body, ok, run}: what the open dialog submits
const said = (text) => { document.getElementById("act-said").textContent = text; };
function openAction(p) {
  pending = p;
  document.getElementById("act-title").textContent = p.title;
  document.getElementById("act-body").innerHTML = p.body;
  document.getElementById("act-ok").textContent = p.ok;
  document.getElementById("act-ok").disabled = !!p.wait;
  said(p.wait || "");
  if (!dlg.open) dlg.showModal();
  if (p.load) p.load();
}
const byId = (id) => document.getElementById(id);
function startReassign(id) {
  openAction({title: `Reassign incident #${id}`, ok: "Reassign", wait: "Working out who could fix it soonest…",
    body: `<label>Technician <select id="act-tech" disabled><option>Loading…</option></select></label>
      <label>Why (on the timeline) <input id="act-reason" value="reassigned from the operations board" maxlength="500"></label>`,
    load: async () => {
      try {
        const c = await api(`/api/v1/incidents/${id}/candidates`);
        const sel = byId("act-tech");
        if (!sel) return;
        if (!c.items.length) { sel.innerHTML = "<option>nobody</option>"; said("Nobody else on shift at this site has the skill: call someone in, or pause the clock with the customer's agreement."); return; }
        sel.innerHTML = c.items.map((t) => `<option value="${esc(t.technician)}">${esc(t.name || t.technician)}: fix ${esc(localTime(t.predicted_fix))}, ${esc(minutesLate(t.late_minutes))}</option>`).join("");
        sel.disabled = false; byId("act-ok").disabled = false;
        said(c.current ? `Now with ${c.current}. Soonest predicted fix first.` : "Soonest predicted fix first.");
      } catch (e) { said(e.message); }
    },
    run: () => api(`/api/v1/incidents/${id}/reassign`, {method: "POST",
      body: {technician: byId("act-tech").value, reason: byId("act-reason").value.trim() || "reassigned from the operations board"}})});
}
function startPause(id) {
  openAction({title: `Pause the clock of incident #${id}`, ok: "Pause the clock",
    body: `<label>Why (only these causes stop the clock) <select id="act-pause">${Object.entries(PAUSE_REASONS).map(([k, v]) => `<option value="${k}">${esc(v)}</option>`).join("")}</select></label>`,
    run: () => api(`/api/v1/incidents/${id}/pause`, {method: "POST", body: {reason: byId("act-pause").value}})});
}
function startResume(id) {
  openAction({title: `Resume the clock of incident #${id}`, ok: "Resume the clock",
    body: `<p>The clock runs again; the deadline moves by exactly the paused time.</p>`,
    run: () => api(`/api/v1/incidents/${id}/resume`, {method: "POST"})});
}
function startTake(id) {
  openAction({title: `Take over claim #${id}`, ok: "Take it over",
    body: `<p>You become the claim's owner; the previous owner is told.</p>`,
    run: () => api(`/api/v1/claims/${id}/assign`, {method: "POST", body: {manager: me.person}})});
}
function startReview(id) {
  const due = new Date(now() + 7 * 86400000).toISOString().slice(0, 10);
  openAction({title: `Review of incident #${id}`, ok: "Save the review",
    body: `<label>What went wrong <textarea id="act-cause" rows="3" maxlength="5000"></textarea></label>
      <label>First action item <input id="act-item" maxlength="1000"></label>
      <label>Owner <input id="act-owner" value="${esc((me && me.person) || "")}" maxlength="100"></label>
      <label>Due <input id="act-due" type="date" value="${due}"></label>`,
    run: () => api(`/api/v1/incidents/${id}/review`, {method: "POST", body: {cause: byId("act-cause").value.trim(),
      items: byId("act-item").value.trim() ? [{text: byId("act-item").value.trim(), owner: byId("act-owner").value.trim(),
        due_at: new Date(byId("act-due").value + "T17:00:00").toISOString()}] : []}})});
}
const STARTS = {reassign: startReassign, pause: startPause, resume: startResume, take: startTake, review: startReview};
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-act]");
  if (!b || !STARTS[b.dataset.act]) return;
  STARTS[b.dataset.act](b.dataset.incident || b.dataset.claim);
});
document.getElementById("act-cancel").addEventListener("click", () => dlg.close());
document.getElementById("act-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!pending) return;
  const ok = byId("act-ok");
  ok.disabled = true; said("Sending…");
  try {
    await pending.run();
    dlg.close(); pending = null;
    refresh(); loadFigures();
  } catch (err) {
    said(err.status === 0 ? "No connection: nothing was changed. Try again when you are back online." : err.message);
    ok.disabled = false;
  }
});

/* ---- the figures: charts where people would rather look, each with its table ---- */
let figuresLoading = false;
async function loadFigures() {
  if (!isStaff() || figuresLoading) return;
  const box = byId("figures"), body = byId("figures-body"), site = byId("site").value;
  box.hidden = false; figuresLoading = true;
  if (!body.querySelector("svg")) body.innerHTML = "<p>Loading the figures…</p>";
  try {
    paintFigures(await api(`/api/v1/figures${site ? "?site=" + encodeURIComponent(site) : ""}`, {timeout: 30000}), site);
  } catch (e) {
    body.innerHTML = `<p class="none">The figures could not be loaded: ${esc(e.message)}. They load again in 5 minutes, or when you pick a site.</p>`;
  } finally { figuresLoading = false; }
}
const pct = (x) => x === null ? "–" : `${Math.round(x * 1000) / 10} %`;
function paintFigures(doc, site) {
  const row = (scope, key, days) => doc.rows.find((r) => r.scope === scope && r.key === key && r.period_days === days);
  const all7 = row("overall", null, 7), all30 = row("overall", null, 30);
  const amounts = Object.entries(all30.credit_amounts).map(([c, a]) => `${a} ${c}`).join(", ");
  const card = (label, value) => `<div class="count" data-figure="${esc(label)}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
  const cards = [card("promises kept, 7 days", pct(all7.kept_share)), card("promises kept, 30 days", pct(all30.kept_share)),
    card("median to acknowledge (7 d)", charts.minutes(all7.acknowledge.p50_seconds)),
    card("median to arrive (7 d)", charts.minutes(all7.arrive.p50_seconds)),
    card("median to fix (7 d)", charts.minutes(all7.fix.p50_seconds)),
    card("credits this month", `${all30.credits_this_month}${amounts ? " · " + amounts : ""}`)].join("");
  const of = (scope) => doc.rows.filter((r) => r.scope === scope && r.period_days === 30 && (r.fix.n || r.acknowledge.n || r.arrive.n));
  const sites = of("site"), techs = of("technician");
  const table = (rows, head) => `<details><summary>As a table</summary><div class="wrap" tabindex="0" role="region" aria-label="Figures per ${head.toLowerCase()}"><table><thead><tr><th>${head}</th><th>kept (7 d / 30 d)</th>`
    + `<th>acknowledge p50 / p90</th><th>arrive p50 / p90</th><th>fix p50 / p90</th><th>credits this month</th></tr></thead><tbody>`
    + rows.map((r) => { const w = row(r.scope, r.key, 7); return `<tr><td>${esc(r.key)}</td><td>${pct(w.kept_share)} / ${pct(r.kept_share)}</td>`
      + ["acknowledge", "arrive", "fix"].map((m) => `<td>${charts.minutes(r[m].p50_seconds)} / ${charts.minutes(r[m].p90_seconds)}</td>`).join("")
      + `<td>${r.credits_this_month}</td></tr>`; }).join("") + `</tbody></table></div></details>`;
  const spreadOf = (rows) => rows.map((r) => ({label: r.key, p50: r.fix.p50_seconds, p90: r.fix.p90_seconds}));
  const csv = `/api/v1/figures.csv${site ? "?site=" + encodeURIComponent(site) : ""}`;
  byId("figures-body").innerHTML = `<div class="counts">${cards}</div>`
    + `<div class="chartbox"><h3>Promises kept per day</h3>${charts.daily("chart-daily", doc.daily)}`
    + `<details><summary>As a table</summary><div class="wrap" tabindex="0" role="region" aria-label="Promises kept per day"><table><thead><tr><th>Day</th><th>Fixed</th><th>Kept</th></tr></thead><tbody>`
    + doc.daily.filter((d) => d.fixed).map((d) => `<tr><td>${esc(d.day)}</td><td>${d.fixed}</td><td>${d.kept}</td></tr>`).join("")
    + `</tbody></table></div></details></div>`
    + `<div class="chartbox"><h3>Time to fix per site, last 30 days</h3>${charts.spread("chart-sites", "Time to fix per site: median and p90, last 30 days", spreadOf(sites))}${table(sites, "Site")}</div>`
    + `<div class="chartbox"><h3>Time to fix per technician, last 30 days</h3>${charts.spread("chart-techs", "Time to fix per technician: median and p90, last 30 days", spreadOf(techs))}${table(techs, "Technician")}</div>`
    + `<p><a href="${esc(csv)}" download id="csv">Download these figures (CSV)</a> · ${doc.sites ? "sites " + esc(doc.sites.join(", ")) : "every site"} · as of ${esc(localTime(doc.generated_at))}</p>`;
}

function tick() {
  for (const tr of document.querySelectorAll("tr[data-deadline]")) {
    const left = Date.parse(tr.dataset.deadline) - now();
    tr.querySelector("[data-cd]").textContent = left >= 0 ? clock(left) : "−" + clock(left);
    tr.classList.toggle("red", left < 0);
    tr.classList.toggle("amber", left >= 0 && left < 15 * 60000);  // under 15 minutes
  }
  paintStatus();
}

document.getElementById("site").addEventListener("change", () => { render(); loadFigures(); });
// paintStatus redraws the footer every second: one listener on it, not one per redraw
document.getElementById("status").addEventListener("click", (e) => {
  if (e.target.closest("#forget")) auth.signOut();
});
/* ---- a sign-in link for someone, sent by email (the link itself is never shown here) ---- */
document.getElementById("invite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const val = (id) => document.getElementById(id).value.trim();
  const said = document.getElementById("invite-said");
  const body = val("invite-person") ? {person: val("invite-person")}
    : {customer: val("invite-customer"), email: val("invite-email")};
  said.textContent = "Sending…";
  try {
    const r = await api("/api/v1/signin-links", {method: "POST", body});
    said.textContent = `Sent to ${r.to}; it works once, until ${localTime(r.expires_at)}.`;
  } catch (err) { said.textContent = err.message; }
});
auth.check().then((who) => {
  me = who;
  if (me.role === "manager" || me.role === "admin") {
    document.getElementById("invite").hidden = false;
    loadFigures();
    setInterval(loadFigures, 5 * 60000);  // the figures move slowly: every 5 minutes, not per change
  }
  render();
}).catch(() => { /* refresh() shows the sign-in help on a 401 */ });
if (!auth.signedIn()) {
  showHelp("This browser is not signed in yet.");
} else {
  live(refresh);
  setInterval(tick, 1000);
}

/* ---- from the racks (the job card): photos and waiting pause requests under their incident.
   Self-contained: it reads its own two lists and adds one row after each incident's row
   (tr[data-incident]) whenever the board is drawn again. ---- */
function cardExtras() {
  let photos = [], asks = [], drawing = false;
  const app = document.getElementById("app");
  const WHY = {customer_denied_access: "customer denied access", customer_maintenance_window: "customer's maintenance window"};
  const draw = () => {
    drawing = true;
    app.querySelectorAll("tr.extras").forEach((tr) => tr.remove());
    for (const tr of app.querySelectorAll("tr[data-incident]")) {
      const id = Number(tr.dataset.incident);
      const mine = photos.filter((p) => p.incident === id), ask = asks.find((a) => a.incident === id);
      if (!mine.length && !ask) continue;
      const row = document.createElement("tr");
      row.className = "extras"; row.dataset.extrasFor = String(id);
      row.innerHTML = `<td colspan="${tr.children.length || 1}">${ask ? `<div class="ask" data-ask="${ask.id}">
          <b>Pause asked</b> by ${esc(ask.technician)}: ${esc(WHY[ask.reason] || ask.reason)}${ask.note ? " — " + esc(ask.note) : ""}
          <button type="button" data-grant="${id}" data-reason="${esc(ask.reason)}">Pause the clock</button>
          <button type="button" data-refuse="${ask.id}">Refuse…</button></div>` : ""}
        ${mine.map((p) => `<a href="${esc(p.url)}" target="_blank" rel="noopener"><img class="thumb" data-photo="${p.id}" src="${esc(p.thumb_url)}" alt="photo ${p.id} by ${esc(p.author)}" width="80" height="60"></a>`).join("")}</td>`;
      tr.after(row);
    }
    drawing = false;
  };
  const load = async () => {
    const [p, a] = await Promise.all([api("/api/v1/photos").catch(() => null), api("/api/v1/pause-requests").catch(() => null)]);
    if (!p && !a) return;  // not a manager's session: nothing to add
    photos = p ? p.items : []; asks = a ? a.items : [];
    draw();
  };
  new MutationObserver(() => { if (!drawing) draw(); }).observe(app, {childList: true, subtree: false});
  app.addEventListener("click", async (e) => {
    const grant = e.target.closest("[data-grant]"), refuse = e.target.closest("[data-refuse]");
    try {
      if (grant) await api(`/api/v1/incidents/${grant.dataset.grant}/pause`, {method: "POST", body: {reason: grant.dataset.reason}});
      if (refuse) {
        const answer = prompt("Why not? The technician sees this.");
        if (!answer) return;
        await api(`/api/v1/pause-requests/${refuse.dataset.refuse}/refuse`, {method: "POST", body: {answer}});
      }
      if (grant || refuse) { await load(); refresh(); }
    } catch (err) { alert(err.message); }
  });
  load();
  setInterval(load, 15000);  // photos and requests are few; the board's own stream redraws the rest
}
if (auth.signedIn()) cardExtras();

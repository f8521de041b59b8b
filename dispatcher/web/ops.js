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
      <td>${esc(i.customer)}<small>#${i.id} · detected ${esc(localTime(i.detected_at))}</small></td></tr>`).join("");
  document.getElementById("app").innerHTML = ingestAlert() + `<div class="counts">${counts}</div>` + (running.length
    ? `<div class="wrap" tabindex="0" role="region" aria-label="Open incidents"><table><thead><tr><th>Time left</th><th>State</th><th>Host · what failed</th><th>Site</th><th>Assignee</th><th>Customer</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<div class="wrap"><p class="empty">No open incidents${site ? " at " + esc(site) : ""}.</p></div>`)
    + facilitySection(racksShown, site) + plannedSection(plannedShown, site);
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

function tick() {
  for (const tr of document.querySelectorAll("tr[data-deadline]")) {
    const left = Date.parse(tr.dataset.deadline) - now();
    tr.querySelector("[data-cd]").textContent = left >= 0 ? clock(left) : "−" + clock(left);
    tr.classList.toggle("red", left < 0);
    tr.classList.toggle("amber", left >= 0 && left < 15 * 60000);  // under 15 minutes
  }
  paintStatus();
}

document.getElementById("site").addEventListener("change", render);
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
auth.check().then((me) => {
  if (me.role === "manager" || me.role === "admin") document.getElementById("invite").hidden = false;
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

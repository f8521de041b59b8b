/* The status page's script (/status); shared helpers come from common.js, loaded first. */
"use strict";
function minutes(ms) {
  const m = Math.round(Math.abs(ms) / 60000);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
const localDate = (iso) => new Date(iso).toLocaleDateString([], {month: "short", day: "numeric"});

function showHelp(reason) {
  stop = true;
  if (es) es.close();
  document.getElementById("status").textContent = "";
  document.getElementById("app").innerHTML = `<section class="help" id="help">
    <h2>Sign in to see your servers</h2>
    <p>${esc(reason)}</p>
    <p>This page shows the live status of your servers' hardware.</p>
    ${SIGNIN_HELP}
    <p>Your address is not known yet? Ask your account manager to send you a link.</p></section>`;
}

let es = null, stop = false, online = true, updatedAt = 0;
function live(refresh) {
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    const streaming = es && es.readyState === 1;
    timer = setTimeout(async () => { await refresh(); schedule(); }, streaming ? 60000 : 10000);
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
  window.addEventListener("online", () => refresh());
}

function paintStatus() {
  if (stop) return;
  const streaming = es && es.readyState === 1;
  const age = updatedAt ? ago(Date.now() - updatedAt) : "not yet";
  document.getElementById("status").innerHTML = (!online
    ? `<span class="dot off"></span>Offline · last updated ${age}`
    : `<span class="dot ${streaming ? "live" : ""}"></span>${streaming ? "Live" : "Updating every 10 s"} · updated ${age}`)
    + ` · times in your local time · <button class="linkbtn" id="forget">forget this link</button>`;
}

/* ---- the customer's incidents ---- */
const STEPS = ["detected", "dispatched", "acknowledged", "on_site", "replaced", "verified", "closed"];
const STEP_LABEL = {detected: "detected", dispatched: "dispatched", acknowledged: "acknowledged",
  on_site: "on site", replaced: "replaced", verified: "verified", closed: "closed"};
const STATE_TEXT = {detected: "Failure detected — assigning a technician", dispatched: "A technician is assigned",
  acknowledged: "The technician has taken the job", on_site: "The technician is at your server",
  replaced: "Part replaced — monitoring is checking it", verified: "Monitoring confirms the fix — please confirm",
  closed: "Closed", paused: "The clock is paused"};
const OPEN = ["detected", "dispatched", "acknowledged", "on_site", "replaced", "paused"];
const RECENT_DAYS = 14;  // resolved incidents stay on the page this long
let incidents = null, details = {}, opened = new Set(), loading = null, again = false;
let lastHtml = "";  // what render() last put on the page
let facilities = [];  // open facility incidents (a rack's power or network) with our hosts in them
const survey = {};  // incident id -> {score, comment, sent, error}

async function refresh() {
  if (stop) return;
  if (loading) { again = true; return loading; }
  loading = (async () => {
    try {
      const [data, fac] = await Promise.all([api("/api/v1/incidents?limit=100"),
        api("/api/v1/facility-incidents?state=open&limit=20").catch(() => null)]);
      incidents = data.items; updatedAt = Date.now(); online = true;
      if (fac) facilities = fac.items;
      const want = incidents.filter((i) => opened.has(i.id) || (i.state === "closed" && recent(i))
        || (late(i) && (i.state !== "closed" || recent(i))));  // a late one may carry a review
      const got = await Promise.all(want.map((i) => api(`/api/v1/incidents/${i.id}`).catch(() => null)));
      got.forEach((d) => { if (d) details[d.id] = d; });
      render();
    } catch (e) {
      if (e.status === 401) { auth.forget(); showHelp(e.message + "."); return; }
      if (e.status === 0) online = false;
      paintStatus();
    } finally {
      loading = null;
      if (again && !stop) { again = false; refresh(); }
    }
  })();
  return loading;
}
const late = (i) => (i.verified_at ? Date.parse(i.verified_at) : now()) > Date.parse(i.deadline);
const recent = (i) => now() - Date.parse(i.closed_at || i.verified_at || i.detected_at) < RECENT_DAYS * 86400000;

function render() {
  if (stop || incidents === null) return;
  const open = incidents.filter((i) => OPEN.includes(i.state)).sort((a, b) => a.deadline.localeCompare(b.deadline));
  const verified = incidents.filter((i) => i.state === "verified");
  const closed = incidents.filter((i) => i.state === "closed" && recent(i));
  const parts = facilities.map(facilityBanner);
  if (!open.length && !verified.length && !facilities.length) parts.push(`<p class="summary good">All hardware healthy — no open incidents.</p>`);
  else parts.push(`<h2 class="summary">${open.length} open incident${open.length === 1 ? "" : "s"}${verified.length ? ` · ${verified.length} fixed, waiting for your confirmation` : ""}</h2>`);
  if (open.length) parts.push(open.map(card).join(""));
  if (verified.length) parts.push(`<h2 class="section">Fixed — please confirm</h2>` + verified.map(card).join(""));
  if (closed.length) parts.push(`<h2 class="section">Resolved in the last ${RECENT_DAYS} days</h2>` + closed.map(card).join(""));
  if (!incidents.length) parts.push(`<p class="empty">No incidents on record yet. If a part fails, it shows up here within seconds.</p>`);
  // The same page again is left alone: replacing identical nodes would drop a selection and
  // detach what a reader (or a test) is holding, for nothing.
  const html = parts.join("");
  if (html === lastHtml && document.getElementById("app").dataset.rendered) { tick(); return; }
  lastHtml = html;
  document.getElementById("app").dataset.rendered = "1";
  const focused = document.activeElement && document.activeElement.id;
  const typed = {};
  document.querySelectorAll("textarea[data-comment]").forEach((t) => { typed[t.dataset.comment] = t.value; });
  document.getElementById("app").innerHTML = html;
  document.querySelectorAll("textarea[data-comment]").forEach((t) => {
    if (typed[t.dataset.comment] !== undefined) t.value = typed[t.dataset.comment];
  });
  if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
  tick();
}

/* A rack, PDU or switch that went down: one banner for all the customer's hosts on it. */
const SCOPE_NAME = {rack: "Rack", pdu: "PDU", switch: "Switch"};
function facilityBanner(f) {
  const scope = f.scope || "rack";
  const lost = f.cause === "power" ? "lost power"
    : scope === "rack" ? "lost its network connection" : "lost network";
  const what = `${SCOPE_NAME[scope] || "Rack"} ${scope === "rack" ? f.rack : f.scope_id}`;
  const n = f.hosts.length, back = f.hosts.filter((h) => h.back_at).length;
  const where = f.site_name || f.site;
  return `<section class="facility" data-facility="${f.id}" role="alert">
    <b>${esc(what)} in ${esc(where)} ${lost} at ${esc(localTime(f.detected_at))}</b>
    ${n} of your servers ${n === 1 ? "is" : "are"} affected — we are on it, deadline ${esc(localTime(f.deadline))}
    <small>${back ? `${back} of ${n} back online · ` : ""}<span data-fleft="${esc(f.deadline)}"></span></small>
  </section>`;
}

function card(i) {
  const d = details[i.id];
  const fixedAt = i.verified_at || i.closed_at;
  const name = i.assignee_name ? `<b>${esc(i.assignee_name)}</b>` : null;
  const who = OPEN.includes(i.state)
    ? (name ? `${name} is on it` : "Finding the right technician…")
    : (name ? `Fixed by ${name}` : "Fixed");
  return `<article class="card" data-incident="${i.id}">
    <div class="top"><span><b>${esc(i.host)}</b> · ${esc(i.site)}</span><span>#${i.id} · ${esc(localDate(i.detected_at))} ${esc(localTime(i.detected_at))}</span></div>
    <h3>${esc(what(i))}</h3>
    <p class="who">${who}</p>
    ${fixedAt && !OPEN.includes(i.state) ? fixedLine(i, fixedAt) : `<div class="clock" data-deadline="${esc(i.deadline)}" data-paused="${i.state === "paused"}"><span class="big" data-cd></span><span class="sub" data-sub></span></div>`}
    ${progress(i.state)}
    ${d && d.review ? reviewBlock(i, d.review) : ""}
    ${i.state === "verified" ? `<button class="confirm" data-confirm="${i.id}">Confirm it's fixed</button><div class="err" data-err="${i.id}"></div>` : ""}
    ${i.state === "closed" ? surveyBlock(i, d) : ""}
    <details data-details="${i.id}" ${opened.has(i.id) ? "open" : ""}><summary>Timeline and evidence</summary>${timeline(i, d)}</details>
  </article>`;
}

function fixedLine(i, fixedAt) {
  const took = Date.parse(fixedAt) - Date.parse(i.detected_at), late = Date.parse(fixedAt) - Date.parse(i.deadline);
  if (late <= 0) return `<p class="fixed ok">Fixed in ${minutes(took)} — within our promise</p>`;
  const credit = i.credit ? `credit ${esc(i.credit.amount)} ${esc(i.credit.currency)} issued` : "credit being issued";
  return `<p class="fixed late">Fixed ${minutes(late)} late — ${credit}</p>`
    + (i.credit ? `<div class="credit">We missed our one-hour promise on this one. ${esc(i.credit.percent)} % of this server's monthly fee (${esc(i.credit.amount)} ${esc(i.credit.currency)}) is credited to your account automatically.</div>` : "");
}

function reviewBlock(i, r) {  /* the breach review: the cause, then who does what by when */
  const items = r.items.map((x) => x.done_at
    ? `<li class="done">✓ ${esc(x.text)} <small>done ${esc(localDate(x.done_at))}</small></li>`
    : `<li>${esc(x.text)} <small>by ${esc(localDate(x.due_at))}</small></li>`).join("");
  return `<section class="review" data-review="${i.id}"><h4>What went wrong and what we are doing</h4>
    <p>${esc(r.cause)}</p>${items ? `<ul>${items}</ul>` : ""}</section>`;
}

function progress(state) {
  const at = STEPS.indexOf(state);
  const bars = STEPS.map((s, n) => `<i class="${n < at ? "done" : n === at ? "now" : ""}" title="${STEP_LABEL[s]}"></i>`).join("");
  const labels = STEPS.map((s, n) => `<span class="${n === at ? "now" : ""}">${STEP_LABEL[s]}</span>`).join("");
  const step = at >= 0 ? `step ${at + 1} of ${STEPS.length}` : "paused";
  return `<div class="steps" role="img" aria-label="${esc(STATE_TEXT[state] || state)}">${bars}</div><div class="labels">${labels}</div>
    <p class="stepnow"><b>${esc(STATE_TEXT[state] || state)}</b> · ${step}</p>`;
}

function eventText(e) {
  const x = e.detail || {};
  switch (e.kind) {
    case "detected": return ["Failure detected by monitoring", x.rule ? `rule ${x.rule}` : ""];
    case "dispatched": return [x.transfer ? "Handed to another technician" : "Technician assigned", ""];
    case "acknowledged": return ["The technician took the job", ""];
    case "on_site": return ["The technician arrived at your server", ""];
    case "replaced": return ["Part replaced", x.serial ? `new serial ${x.serial}` : ""];
    case "declined": return ["Reassigning to another technician", ""];
    case "escalated": return ["Escalated to the site manager", x.reason || ""];
    case "verified": return ["Monitoring confirmed the fix", x.serial ? `serial ${x.serial} healthy` : ""];
    case "credit_issued": return [`Credit of ${x.amount} ${x.currency} issued`, x.percent ? `${x.percent} % of the monthly fee` : ""];
    case "closed": return [e.actor.startsWith("customer:") ? "You confirmed the fix" : "Closed automatically", ""];
    case "survey": return [`You rated us ${x.score}/10`, ""];
    case "paused": return ["Clock paused", x.reason || ""];
    case "resumed": return ["Clock resumed", ""];
    case "pause_requested": return ["The technician asked to pause the clock", x.reason ? x.reason.replace(/_/g, " ") : ""];
    case "review_published": return ["We published what went wrong and what we are doing", ""];
    case "review_updated": return ["We updated what we are doing about it", ""];
    default: return [e.kind.replace(/_/g, " "), ""];
  }
}

function timeline(i, d) {
  if (!d) return `<p class="who">Loading…</p>`;
  const items = d.timeline.map((e) => {
    const [text, sub] = eventText(e);
    return `<li><time datetime="${esc(e.at)}">${esc(localTime(e.at))}</time><span>${esc(text)}${sub ? `<small>${esc(sub)}</small>` : ""}</span></li>`;
  }).join("");
  const ev = Object.entries(i.evidence || {}).filter(([, v]) => v !== null && v !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</dd>`).join("");
  return `<ol class="timeline">${items}</ol>
    <dl class="evidence"><dt>component</dt><dd>${esc(i.component)}</dd>${i.serial ? `<dt>failed serial</dt><dd>${esc(i.serial)}</dd>` : ""}${ev}</dl>`;
}

function surveyBlock(i, d) {
  const answered = d && d.timeline.find((e) => e.kind === "survey");
  const s = survey[i.id] || {};
  if (answered || s.sent) return `<p class="thanks">Thank you — you rated us ${esc((answered && answered.detail.score) ?? s.score)}/10.</p>`;
  if (!d) return "";
  const scores = Array.from({length: 11}, (_, n) => `<button type="button" data-score="${n}" data-for="${i.id}" class="${s.score === n ? "picked" : ""}" aria-label="${n} out of 10">${n}</button>`).join("");
  return `<div class="survey" data-survey="${i.id}"><p>How likely are you to recommend us to a colleague?</p>
    <div class="scores">${scores}</div><div class="scale"><span>0 · not at all</span><span>10 · extremely</span></div>
    <textarea data-comment="${i.id}" id="comment-${i.id}" maxlength="2000" placeholder="What could we do better? (optional)"></textarea>
    <button class="send" data-send="${i.id}" ${s.score === undefined ? "disabled" : ""}>Send rating</button>
    <div class="err">${esc(s.error || "")}</div></div>`;
}

function tick() {
  for (const el of document.querySelectorAll("[data-fleft]")) {
    const left = Date.parse(el.dataset.fleft) - now();
    el.textContent = left >= 0 ? `${minutes(left)} left`
      : `${minutes(left)} past the deadline — affected servers are credited automatically`;
  }
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const left = Date.parse(el.dataset.deadline) - now();
    const big = el.querySelector("[data-cd]"), sub = el.querySelector("[data-sub]");
    el.classList.toggle("red", left < 0);
    el.classList.toggle("amber", left >= 0 && left < 15 * 60000);  // under 15 minutes to the promise
    if (el.dataset.paused === "true") {
      big.textContent = "Paused"; sub.textContent = "the clock is stopped for now"; continue;
    }
    big.textContent = left >= 0 ? clock(left) : "+" + clock(left);
    sub.textContent = left >= 0 ? `left to fix it · promised by ${localTime(el.dataset.deadline)}`
      : `past our promise (${localTime(el.dataset.deadline)}) — you will be credited automatically`;
  }
  paintStatus();
}

document.getElementById("app").addEventListener("toggle", async (e) => {
  const el = e.target;
  if (!el.dataset || !el.dataset.details) return;
  const id = Number(el.dataset.details);
  if (el.open) {
    opened.add(id);
    if (!details[id]) {
      try { details[id] = await api(`/api/v1/incidents/${id}`); render(); } catch (err) { /* next refresh retries */ }
    }
  } else opened.delete(id);
}, true);

document.getElementById("app").addEventListener("click", async (e) => {
  const c = e.target.closest("[data-confirm]");
  if (c) {
    c.disabled = true; c.textContent = "Confirming…";
    try {
      const i = await api(`/api/v1/incidents/${c.dataset.confirm}/confirm`, {method: "POST"});
      incidents = incidents.map((x) => (x.id === i.id ? i : x));
      details[i.id] = await api(`/api/v1/incidents/${i.id}`);
      render();
    } catch (err) {
      c.disabled = false; c.textContent = "Confirm it's fixed";
      const box = document.querySelector(`[data-err="${c.dataset.confirm}"]`);
      if (box) box.textContent = err.status === 0 ? "No connection — tap again." : err.message;
    }
    return;
  }
  const s = e.target.closest("[data-score]");
  if (s) { survey[s.dataset.for] = {...(survey[s.dataset.for] || {}), score: Number(s.dataset.score)}; render(); return; }
  const send = e.target.closest("[data-send]");
  if (send) {
    const id = send.dataset.send, st = survey[id];
    const comment = (document.getElementById("comment-" + id) || {}).value || null;
    send.disabled = true; send.textContent = "Sending…";
    try {
      await api(`/api/v1/incidents/${id}/survey`, {method: "POST", body: {score: st.score, comment: comment && comment.trim() ? comment.trim() : null}});
      st.sent = true; st.error = "";
    } catch (err) {
      if (err.status === 409) st.sent = true;  // answered already (another tab): nothing left to do
      else st.error = err.status === 0 ? "No connection — tap Send again." : err.message;
    }
    render();
  }
});

// paintStatus redraws the footer every second: one listener on it, not one per redraw
document.getElementById("status").addEventListener("click", (e) => {
  if (e.target.closest("#forget")) auth.signOut();
});
if (!auth.signedIn()) {
  showHelp("This browser has no status link yet.");
} else {
  live(refresh);
  setInterval(tick, 1000);
}

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
const readings = {};  // incident id -> the evidence's readings (GET .../readings)
const CHART_HOURS = 6;  // how far before detection the chart starts: a rising counter's story

async function refresh() {
  if (stop) return;
  if (loading) { again = true; return loading; }
  loading = (async () => {
    try {
      const [data, fac] = await Promise.all([api("/api/v1/incidents?limit=100"),
        api("/api/v1/facility-incidents?state=open&limit=20").catch(() => null)]);
      incidents = data.items; updatedAt = Date.now(); online = true;
      if (fac) facilities = fac.items;
      // open and fixed ones: their progress needs the job's times; a late one may carry a review
      const want = incidents.filter((i) => opened.has(i.id) || OPEN.includes(i.state) || i.state === "verified"
        || (i.state === "closed" && recent(i)) || (late(i) && (i.state !== "closed" || recent(i))));
      // the chart's readings change slowly (one per interval): fetched again at most once a minute
      const charted = incidents.filter((i) => (OPEN.includes(i.state) || i.state === "verified" || opened.has(i.id))
        && !(readings[i.id] && Date.now() - readings[i.id].fetched < 60000));
      const [got, curves] = await Promise.all([
        Promise.all(want.map((i) => api(`/api/v1/incidents/${i.id}`).catch(() => null))),
        Promise.all(charted.map((i) => api(`/api/v1/incidents/${i.id}/readings?hours=${CHART_HOURS}`).catch(() => null)))]);
      got.forEach((d) => { if (d) details[d.id] = d; });
      curves.forEach((r) => { if (r) readings[r.incident] = {...r, fetched: Date.now()}; });
      render();
      if (contactList === null) loadContacts();
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
  const first = i.assignee_name ? i.assignee_name.trim().split(/\s+/)[0] : null;  // "Ana", as on a call
  const name = first ? `<b>${esc(first)}</b>` : null;
  const who = OPEN.includes(i.state)
    ? (name ? `${name} is on it` : "Finding the right technician…")
    : (name ? `Fixed by ${name}` : "Fixed");
  return `<article class="card" data-incident="${i.id}">
    <div class="top"><span><b>${esc(i.host)}</b> · ${esc(i.site)}</span><span>#${i.id} · ${esc(localDate(i.detected_at))} ${esc(localTime(i.detected_at))}</span></div>
    <h3>${esc(what(i))}</h3>
    <p class="who">${who}</p>
    ${fixedAt && !OPEN.includes(i.state) ? fixedLine(i, fixedAt) : `<div class="clock" data-deadline="${esc(i.deadline)}" data-paused="${i.state === "paused"}"><span class="big" data-cd></span><span class="sub" data-sub></span></div>`}
    ${progress(i, d)}
    ${cageBlock(i)}
    ${chartBlock(i)}
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

/* The technician's progress: each step with its time (the job's stamps, then the fix's). */
const PROGRESS = [["dispatched", "dispatched"], ["acknowledged", "acknowledged"], ["on_site", "on site"],
  ["replaced", "replaced"], ["verified", "verified"]];
function stepTimes(i, d) {
  const job = d && d.job;
  const times = {dispatched: job && job.dispatched_at, acknowledged: job && job.acknowledged_at,
    on_site: job && job.on_site_at, replaced: job && job.replaced_at, verified: i.verified_at};
  if (i.state === "closed" && !times.verified) times.verified = i.closed_at;
  return times;
}
function progress(i, d) {
  const times = stepTimes(i, d);
  const byState = PROGRESS.findIndex(([s]) => s === i.state);
  const stamped = PROGRESS.reduce((n, [s], k) => (times[s] ? k : n), -1);
  const reached = i.state === "closed" ? PROGRESS.length - 1 : Math.max(byState, stamped);
  const items = PROGRESS.map(([s, label], k) => {
    const cls = k < reached ? "done" : k === reached ? "now" : "";
    const t = times[s] ? `<time datetime="${esc(times[s])}">${esc(localTime(times[s]))}</time>` : `<time>–</time>`;
    return `<li class="${cls}" data-step="${s}"${k === reached ? ' aria-current="step"' : ""}><i></i><span>${label}</span>${t}</li>`;
  }).join("");
  const text = STATE_TEXT[i.state] || i.state;
  return `<ol class="progress" aria-label="Progress">${items}</ol>
    <p class="stepnow"><b>${esc(text)}</b>${i.state === "paused" ? "" : reached >= 0 ? ` · step ${reached + 1} of ${PROGRESS.length}` : ""}</p>`;
}

/* Cage access, where the contract asks for it: the question, or what was decided. */
function cageBlock(i) {
  if (!OPEN.includes(i.state)) return "";
  const d = i.cage_decision;
  const when = d && d.at ? localTime(d.at) : "";
  if (i.cage_access === "asked") {
    return `<section class="cage" data-cage="${i.id}" aria-label="Cage access: ${esc(what(i))} (#${i.id})">
      <p class="q" id="cage-q-${i.id}">Allow our technician into your cage?</p>
      <p class="small">Your contract asks us to get your permission first. If you deny it, the one-hour clock
        is paused until you allow it, so the time we wait is not counted against our promise.</p>
      <div class="two"><button class="grant" data-cage-decide="grant" data-for="${i.id}">Grant</button>
        <button class="deny" data-cage-decide="deny" data-for="${i.id}">Deny</button></div>
      <div class="err" data-cage-err="${i.id}"></div></section>`;
  }
  if (i.cage_access === "denied") {
    return `<section class="cage denied" data-cage="${i.id}">
      <p class="q">You denied our technician access to your cage${when ? ` at ${esc(when)}` : ""}.</p>
      <p class="small">The clock is paused while access is denied: this time does not count against our
        one-hour promise. Our site manager has been told and will contact you to agree a time.</p>
      <div class="two"><button class="grant" data-cage-decide="grant" data-for="${i.id}">Grant access now</button></div>
      <div class="err" data-cage-err="${i.id}"></div></section>`;
  }
  if (i.cage_access === "granted") {
    return `<p class="cage-ok" data-cage="${i.id}">✓ You allowed our technician into your cage${when ? ` at ${esc(when)}` : ""}.</p>`;
  }
  return "";
}

/* The evidence as a small chart: the reading the rule acted on, its threshold, the detection. */
function fmt(v) { return Number.isInteger(v) ? String(v) : v.toFixed(1); }
function chartSummary(r) {
  const det = Date.parse(r.detected_at);
  const before = r.points.filter((p) => Date.parse(p.at) <= det), after = r.points.filter((p) => Date.parse(p.at) > det);
  const unit = r.unit ? ` ${r.unit}` : "";
  const first = (before[0] || r.points[0]).value, last = (before[before.length - 1] || r.points[0]).value;
  const move = last > first ? `rose from ${fmt(first)} to ${fmt(last)}` : last < first ? `fell from ${fmt(first)} to ${fmt(last)}` : `stayed at ${fmt(last)}`;
  const line = r.threshold === null ? "" : `; the line at ${fmt(r.threshold)}${unit} is where the rule acts`;
  const now = after.length ? `, now ${fmt(after[after.length - 1].value)}${unit}` : "";
  return `${r.label} ${move}${unit} in the hours before we detected the failure at ${localTime(r.detected_at)}${now}${line}.`;
}
function chartBlock(i) {
  const r = readings[i.id];
  if (!r || !r.metric) return "";
  if (!r.points.length) return `<p class="nochart">No readings of ${esc(r.label.toLowerCase())} were stored for this part before it failed.</p>`;
  const W = 320, H = 132, L = 36, R = 10, T = 12, B = 22;
  const t0 = Date.parse(r.start), t1 = Math.max(Date.parse(r.end), t0 + 1), det = Date.parse(r.detected_at);
  const vals = r.points.map((p) => p.value).concat(r.threshold === null ? [] : [r.threshold]);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => H - B - (v - lo) / (hi - lo) * (H - T - B);
  const pts = r.points.map((p) => [x(Date.parse(p.at)), y(p.value)]);
  const line = pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ");
  const dots = pts.map(([a, b]) => `<circle data-point cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="2.6"/>`).join("");
  const thr = r.threshold === null ? "" : `<g class="thr" data-threshold="${r.threshold}"><line x1="${L}" x2="${W - R}" y1="${y(r.threshold).toFixed(1)}" y2="${y(r.threshold).toFixed(1)}"/>
      <text x="${W - R}" y="${(y(r.threshold) - 4).toFixed(1)}" text-anchor="end">threshold ${esc(fmt(r.threshold))}</text></g>`;
  const dx = x(det).toFixed(1), anchor = x(det) > W * 0.7 ? "end" : x(det) < W * 0.3 ? "start" : "middle";
  const cap = `chart-cap-${i.id}`;
  return `<figure class="chart" data-chart="${i.id}">
    <figcaption><b>Why we opened this:</b> <span id="${cap}">${esc(chartSummary(r))}</span></figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${cap}" preserveAspectRatio="xMidYMid meet">
      <text class="ax" x="${L - 4}" y="${T + 4}" text-anchor="end">${esc(fmt(hi))}</text>
      <text class="ax" x="${L - 4}" y="${H - B}" text-anchor="end">${esc(fmt(lo))}</text>
      <line class="base" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>
      ${thr}
      <g class="det" data-detected><line x1="${dx}" x2="${dx}" y1="${T}" y2="${H - B}"/>
        <text x="${dx}" y="${H - 6}" text-anchor="${anchor}">detected ${esc(localTime(r.detected_at))}</text></g>
      <text class="ax" x="${L}" y="${H - 6}">${esc(localTime(r.start))}</text>
      <polyline points="${line}"/>${dots}
    </svg>
    <p class="unit">${esc(r.label)}${r.unit ? ` (${esc(r.unit)})` : ""}</p></figure>`;
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
    case "cage_access": return [x.decision === "granted" ? "Cage access granted" : "Cage access denied — the clock is paused",
      x.by ? `by ${x.by.replace(/^customer:\S+\s*\((.*)\)$/, "$1").replace(/^customer:\S+$/, "you")}` : ""];
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
  const g = e.target.closest("[data-cage-decide]");
  if (g) {
    const id = Number(g.dataset.for), box = document.querySelector(`[data-cage-err="${id}"]`);
    document.querySelectorAll(`[data-for="${id}"][data-cage-decide]`).forEach((b) => { b.disabled = true; });
    try {
      const i = await api(`/api/v1/incidents/${id}/cage-access`, {method: "POST", body: {decision: g.dataset.cageDecide}});
      incidents = incidents.map((x) => (x.id === i.id ? i : x));
      details[i.id] = await api(`/api/v1/incidents/${i.id}`);
      render();
    } catch (err) {
      document.querySelectorAll(`[data-for="${id}"][data-cage-decide]`).forEach((b) => { b.disabled = false; });
      if (box) box.textContent = err.status === 0 ? "No connection — tap again." : err.message;
    }
    return;
  }
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

/* ---- Who we tell: the customer's own email addresses and webhook, each with a Test ---- */
let contactList = null, contactError = "", polling = null;
async function loadContacts() {
  try { contactList = (await api("/api/v1/contacts")).items; } catch (e) {
    if (e.status === 401) return;
    contactError = e.status === 0 ? "No connection — your contacts will show when it is back." : e.message;
  }
  renderContacts();
}
function testText(t) {
  if (!t) return "";
  const code = t.status_code ? ` (HTTP ${t.status_code})` : "";
  if (t.state === "sent") return `✓ delivered${code} at ${localTime(t.done_at || t.at)}`;
  if (t.state === "failed") return `✗ failed${code}: ${t.error || "no answer"}`;
  if (t.outcome === "retry") return `✗ not delivered${code}: ${t.error || "no answer"} — we keep trying`;
  return "sending…";
}
function renderContacts() {
  const box = document.getElementById("contacts");
  if (stop || (contactList === null && !contactError)) return;
  box.hidden = false;
  const items = (contactList || []).map((c) => `<li data-contact="${c.id}">
      <span class="addr">${c.channel === "webhook" ? "Webhook" : "Email"} <b>${esc(c.address)}</b></span>
      <span class="outcome ${c.last_test && c.last_test.state === "sent" ? "ok" : ""}" data-outcome="${c.id}">${esc(testText(c.last_test))}</span>
      <span class="acts"><button type="button" class="small-btn" data-test="${c.id}">Test</button>
      <button type="button" class="small-btn quiet" data-remove="${c.id}" aria-label="Remove ${esc(c.address)}">Remove</button></span></li>`).join("");
  const hook = (contactList || []).some((c) => c.channel === "webhook");
  box.innerHTML = `<h2 class="section" id="contacts-h">Who we tell</h2><div class="card">
    <p class="who">We tell these addresses when a part fails on one of your servers, when it is fixed and when you are credited.</p>
    ${items ? `<ul class="contacts">${items}</ul>` : `<p class="who">No one yet: add an address below.</p>`}
    <form id="add-email" class="addform"><label for="new-email">Add an email address</label>
      <span class="row"><input id="new-email" type="email" autocomplete="email" maxlength="254" required placeholder="ops@example.com">
      <button class="small-btn">Add</button></span></form>
    <form id="add-hook" class="addform"><label for="new-hook">${hook ? "Replace the webhook" : "Webhook"} (https URL; we post JSON)</label>
      <span class="row"><input id="new-hook" type="url" maxlength="2000" required placeholder="https://hooks.example.com/…">
      <button class="small-btn">Save</button></span></form>
    <div class="err" id="contact-err" role="status">${esc(contactError)}</div></div>`;
}
async function addContact(channel, input) {
  contactError = "";
  try {
    await api("/api/v1/contacts", {method: "POST", body: {channel, address: input.value}});
    input.value = "";
  } catch (err) { contactError = err.status === 0 ? "No connection — try again." : err.message; }
  await loadContacts();
}
function pollTests() {  // until every test sent has an outcome, for up to a minute
  clearInterval(polling);
  let left = 60;
  polling = setInterval(async () => {
    await loadContacts();
    const waiting = (contactList || []).some((c) => c.last_test && c.last_test.state === "pending" && !c.last_test.outcome);
    if (!waiting || --left <= 0) clearInterval(polling);
  }, 1000);
}
const contactsBox = document.getElementById("contacts");
contactsBox.addEventListener("submit", (e) => {
  e.preventDefault();
  if (e.target.id === "add-email") addContact("email", document.getElementById("new-email"));
  if (e.target.id === "add-hook") addContact("webhook", document.getElementById("new-hook"));
});
contactsBox.addEventListener("click", async (e) => {
  const t = e.target.closest("[data-test]"), r = e.target.closest("[data-remove]");
  if (!t && !r) return;
  (t || r).disabled = true;
  try {
    if (t) {
      await api(`/api/v1/contacts/${t.dataset.test}/test`, {method: "POST"});
      pollTests();
    } else await api(`/api/v1/contacts/${r.dataset.remove}/remove`, {method: "POST"});
    contactError = "";
  } catch (err) { contactError = err.status === 0 ? "No connection — try again." : err.message; }
  await loadContacts();
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

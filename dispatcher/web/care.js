/* The status page's planned work, maintenance windows and claims (/status), after status.js.
   Shared helpers (api, esc, auth) come from common.js. Every answer goes to the API, which
   validates it; a refusal's detail is shown as it came. */
"use strict";
const care = {plans: null, windows: null, claims: null, shown: {}, err: {}, busy: false};
const DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const whenLocal = (iso) => iso ? new Date(iso).toLocaleString([], {weekday: "short", month: "short",
  day: "numeric", hour: "2-digit", minute: "2-digit"}) : "";
const dateLocal = (iso) => iso ? new Date(iso).toLocaleDateString([], {year: "numeric", month: "long",
  day: "numeric"}) : "";
const PLAN_WORDS = {proposed: "Waiting for your answer", accepted: "Accepted", declined: "Declined"};
const CLAIM_WORDS = {investigating: "We are investigating", plan_presented: "Our plan awaits your answer",
  plan_accepted: "Plan accepted: we are carrying it out", plan_rejected: "You rejected the plan",
  resolved: "Resolved: every item of the plan is done", notice_given: "Notice given",
  exited: "Closed: notice given and survey answered"};
const STEP_WORDS = {predicted: "Failure predicted", planned: "Replacement planned", told: "Told",
  plan_accepted: "Plan accepted", plan_moved: "Moved to another slot", plan_declined: "Plan declined",
  acknowledged: "Technician acknowledged", done: "Done", dismissed: "Dismissed",
  replanned: "Moved to another technician", spare_taken: "Spare taken for a failure"};

function windowText(w) {
  return `${w.days.map((d) => d[0].toUpperCase() + d.slice(1)).join(", ")} ${esc(w.start)}–${esc(w.end)} (${esc(w.timezone)})`;
}

function planCard(p) {
  const live = ["planned", "acknowledged"].includes(p.state) && p.plan_state !== "declined";
  const slot = p.slot_start
    ? `<p class="slot"><b>${esc(whenLocal(p.slot_start))}</b> – ${esc(new Date(p.slot_end).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}))}, inside your maintenance window</p>`
    : `<p class="slot nowin">You have no maintenance window: a technician does it when the site has someone free. Add a window below to choose when.</p>`;
  const moves = live && p.choices.length ? `<label class="move">Move to
      <select data-move-for="${p.id}">${p.choices.filter((c) => c.start !== p.slot_start)
        .map((c) => `<option value="${esc(c.start)}">${esc(whenLocal(c.start))}</option>`).join("")}</select></label>
      <button class="alt" data-plan="move" data-id="${p.id}">Move</button>` : "";
  const actions = live ? `<div class="acts">
      ${p.plan_state !== "accepted" ? `<button class="send" data-plan="accept" data-id="${p.id}">Accept</button>` : ""}
      ${moves}
      <details class="decline"><summary>Decline</summary>
        <input data-decline-for="${p.id}" maxlength="1000" placeholder="Why (optional)">
        <button class="alt danger" data-plan="decline" data-id="${p.id}">Decline the replacement</button></details>
    </div>` : "";
  return `<article class="card plan" data-plan-id="${p.id}">
    <div class="top"><span>Planned replacement · <b>${esc(p.host)}</b></span><span class="state">${esc(live ? PLAN_WORDS[p.plan_state] : p.state)}</span></div>
    <h3>${esc(p.kind)} ${esc(p.component)} is likely to fail</h3>
    <ul class="evidence">${p.evidence.map((e) => `<li>${esc(e)}</li>`).join("")}</ul>
    ${slot}
    <p class="spare">${esc(p.spare_part ? `Spare ${p.spare_part} is reserved for it.` : (p.part_note || ""))}</p>
    ${actions}
    <p class="err" id="plan-err-${p.id}">${esc(care.err["plan" + p.id] || "")}</p>
    <details><summary>Timeline</summary><ol class="timeline">${p.timeline.map((e) => `<li>
      <time>${esc(whenLocal(e.at))}</time><span>${esc(STEP_WORDS[e.kind] || e.kind)}
      <small>${esc(e.actor)}${e.detail && e.detail.to ? ": " + esc(e.detail.to.length ? e.detail.to.join(", ") : "nobody reachable") : ""}</small></span></li>`).join("")}</ol></details>
  </article>`;
}

function windowsHtml() {
  const ws = (care.windows && care.windows.windows) || [];
  const zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  return `<div class="card" id="windows">
    <h3>Maintenance windows</h3>
    <p class="who">Planned replacements are booked inside these times.</p>
    <ul class="wins">${ws.length ? ws.map((w, i) => `<li>${windowText(w)} <button class="linkbtn dark" data-win-remove="${i}">Remove</button></li>`).join("")
      : "<li>None yet.</li>"}</ul>
    <fieldset class="days">${DAY_NAMES.map((d) => `<label><input type="checkbox" value="${d}" name="win-day">${d}</label>`).join("")}</fieldset>
    <div class="row"><label>From <input id="win-start" type="time" value="02:00"></label>
      <label>to <input id="win-end" type="time" value="05:00"></label></div>
    <label>Time zone <input id="win-zone" value="${esc(zone)}"></label>
    <button class="send" id="win-add">Add window</button>
    <p class="err" id="win-err">${esc(care.err.win || "")}</p></div>`;
}

function claimCard(c) {
  const plan = c.plan.length ? `<ol class="items">${c.plan.map((i) => `<li class="${i.done_at ? "done" : ""}">${esc(i.text)}
      <small>${esc(i.owner)}, due ${esc(whenLocal(i.due_at))}${i.done_at ? " · done" : ""}</small></li>`).join("")}</ol>` : "";
  const missed = c.plan.some((i) => !i.done_at && Date.parse(i.due_at) <= now());
  const acts = [];
  if (c.state === "plan_presented") {
    acts.push(`<button class="send" data-claim="accept" data-id="${c.id}">Accept the plan</button>`);
    acts.push(`<button class="alt" data-claim="reject" data-id="${c.id}">Reject the plan</button>`);
  }
  if (c.state === "plan_rejected" || (["plan_presented", "plan_accepted"].includes(c.state) && missed)) {
    acts.push(`<button class="alt danger" data-claim="notice" data-id="${c.id}">Give 30 days' notice</button>`);
  }
  const notice = c.notice ? `<p class="notice">Notice given ${esc(dateLocal(c.notice.given_at))}; it ends on
      <b class="notice-end">${esc(dateLocal(c.notice.effective_at))}</b>${c.notice.ended_at ? " (ended)" : ""}.</p>` : "";
  const survey = c.state === "notice_given" ? `<div class="exit"><label>How likely are you to recommend us (0–10)?
      <select id="exit-score-${c.id}">${[...Array(11).keys()].map((n) => `<option>${n}</option>`).join("")}</select></label>
      <textarea id="exit-comment-${c.id}" maxlength="2000" placeholder="Why (optional)"></textarea>
      <button class="send" data-claim="exit-survey" data-id="${c.id}">Send</button></div>`
    : (c.exit_survey ? `<p class="thanks">Thank you: you answered ${esc(c.exit_survey.score)}.</p>` : "");
  return `<article class="card claim" data-claim-id="${c.id}">
    <div class="top"><span>Claim #${c.id}</span><span class="state">${esc(CLAIM_WORDS[c.state] || c.state)}</span></div>
    <p>${esc(c.text)}</p>
    <p class="who">${c.manager ? `Owned by <b>${esc(c.manager)}</b>` : "Not yet assigned to a manager"}</p>
    ${plan}${notice}<div class="acts">${acts.join("")}</div>${survey}
    <p class="err" id="claim-err-${c.id}">${esc(care.err["claim" + c.id] || "")}</p>
  </article>`;
}

function careRender() {
  const plans = document.getElementById("care-plans");
  const claims = document.getElementById("care-claims");
  if (care.plans === null) return;
  const planHtml = `<h2 class="section">Planned replacements</h2>${care.plans.length ? care.plans.map(planCard).join("")
    : `<p class="card empty">No part of yours is expected to fail.</p>`}${windowsHtml()}`;
  if (care.shown.plans !== planHtml) { plans.innerHTML = planHtml; care.shown.plans = planHtml; plans.hidden = false; }
  const claimHtml = `<h2 class="section">Claims</h2>${(care.claims || []).map(claimCard).join("")}
    <details class="card" id="claim-new"><summary>Open a claim</summary>
      <p>Tell us where our support failed you; a manager investigates and presents a plan.</p>
      <textarea id="claim-text" maxlength="5000" placeholder="What went wrong"></textarea>
      <button class="send" id="claim-open">Open the claim</button>
      <p class="err" id="claim-err">${esc(care.err.claim || "")}</p></details>`;
  if (care.shown.claims !== claimHtml) {
    const typed = document.getElementById("claim-text");
    const keep = typed ? typed.value : "", open = typed ? typed.closest("details").open : false;
    claims.innerHTML = claimHtml; care.shown.claims = claimHtml; claims.hidden = false;
    document.getElementById("claim-text").value = keep;
    document.getElementById("claim-new").open = open;
  }
}

async function careRefresh() {
  if (care.busy) return;
  try {
    const [plans, ws, claims] = await Promise.all([api("/api/v1/planned-work?limit=20"),
      api("/api/v1/maintenance-windows"), api("/api/v1/claims?limit=20")]);
    const full = await Promise.all(claims.items.map((c) => api(`/api/v1/claims/${c.id}`)));
    care.plans = plans.items.filter((p) => p.state !== "dismissed" || p.plan_state === "declined");
    care.windows = ws; care.claims = full;
    careRender();
  } catch (e) {
    if (e.status === 401 || e.status === 403) {  // signed out, or not a customer: status.js says so
      for (const id of ["care-plans", "care-claims"]) document.getElementById(id).hidden = true;
    }
  }
}

async function careAct(key, fn) {
  care.busy = true; care.err[key] = "";
  try { await fn(); } catch (e) { care.err[key] = e.message; }
  care.busy = false; care.shown = {};
  await careRefresh();
  careRender();
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b || !b.closest("#care-plans, #care-claims")) return;
  const id = b.dataset.id;
  if (b.dataset.plan) {
    const body = b.dataset.plan === "move"
      ? {start: document.querySelector(`[data-move-for="${id}"]`).value}
      : b.dataset.plan === "decline" ? {reason: document.querySelector(`[data-decline-for="${id}"]`).value || null} : undefined;
    careAct("plan" + id, () => api(`/api/v1/planned-work/${id}/${b.dataset.plan}`, {method: "POST", body}));
  } else if (b.dataset.claim) {
    const body = b.dataset.claim === "exit-survey" ? {score: Number(document.getElementById(`exit-score-${id}`).value),
      comment: document.getElementById(`exit-comment-${id}`).value || null} : undefined;
    careAct("claim" + id, () => api(`/api/v1/claims/${id}/${b.dataset.claim}`, {method: "POST", body}));
  } else if (b.id === "claim-open") {
    const text = document.getElementById("claim-text").value.trim();
    careAct("claim", async () => {
      await api("/api/v1/claims", {method: "POST", body: {text}, key: crypto.randomUUID ? crypto.randomUUID() : String(Date.now())});
      document.getElementById("claim-text").value = "";
    });
  } else if (b.id === "win-add" || b.dataset.winRemove !== undefined) {
    const ws = [...((care.windows && care.windows.windows) || [])];
    if (b.id === "win-add") {
      ws.push({days: [...document.querySelectorAll("input[name=win-day]:checked")].map((x) => x.value),
        start: document.getElementById("win-start").value, end: document.getElementById("win-end").value,
        timezone: document.getElementById("win-zone").value.trim()});
    } else ws.splice(Number(b.dataset.winRemove), 1);
    careAct("win", () => api("/api/v1/maintenance-windows", {method: "PUT", body: {windows: ws}}));
  }
});

careRefresh();
setInterval(() => { if (!document.hidden) careRefresh(); }, 8000);  // plans and claims change rarely
document.addEventListener("visibilitychange", () => { if (!document.hidden) careRefresh(); });

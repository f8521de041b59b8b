/* /tech as an installed app (loaded after tech.js): registers the service worker (/sw.js,
   scope /tech), offers a reload when a new version took over, keeps the worker's outbox in
   the page's "Waiting to send" list, and turns push notifications on for this phone, with the
   list of this person's devices (Web Push: GET /api/v1/push/key, /api/v1/push/subscriptions). */
"use strict";
const PUSH_MISSING = "Push notifications are not available on this server yet; new jobs still reach you here and by email.";

async function startWorker() {
  if (!("serviceWorker" in navigator)) return;  // no https, or an old browser: the page works without
  const sw = navigator.serviceWorker, had = Boolean(sw.controller);
  sw.addEventListener("controllerchange", () => {  // a new version took over (not the first install)
    if (had) document.getElementById("update").hidden = false;
  });
  sw.addEventListener("message", (e) => {
    if (!e.data || e.data.type !== "sw-outbox") return;
    workerQueue = Array.isArray(e.data.items) ? e.data.items : [];
    const last = e.data.last;
    if (last && last.outcome === "sent") {
      sent.push({key: last.key, job: last.job, action: last.action, at: last.device_time, done: Date.now(),
                 waited: Date.now() - Date.parse(last.device_time)});
      refresh();
    } else if (last && last.outcome === "refused") {
      refused.push({key: last.key, job: last.job, action: last.action, at: last.device_time, label: null,
                    status: last.status, detail: last.detail});
      saveRefused(); refresh();
    }
    paintOutbox();
  });
  try {
    await sw.register("/sw.js", {scope: "/tech"});
  } catch (e) {
    document.getElementById("push-state").textContent = "This browser would not install the app's worker: " + e.message;
    return;
  }
  await sw.ready;
  flushWorker();
  window.addEventListener("online", flushWorker);
  // The "online" event can come a moment before the worker's own requests get through (seen in
  // Chromium): while the worker holds something and the phone says it is online, ask again.
  setInterval(() => { if (navigator.onLine && workerQueue.length) flushWorker(); }, 3000);
}

function flushWorker() {  // the worker sends what it holds (notification actions taken offline)
  const c = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (c) c.postMessage({type: "flush"});
}

/* ---- push notifications on this phone ---- */
const pushSay = (t) => { document.getElementById("push-state").textContent = t; };

function pushBlocker() {  // why this browser cannot receive push, in words; null when it can
  if (!window.isSecureContext) return "Notifications need this page over https: open it by its https address.";
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return "This browser cannot receive push notifications (on an iPhone, add this page to the Home Screen first).";
  }
  if (Notification.permission === "denied") {
    return "Notifications are blocked for this site: allow them in the browser's site settings, then reload.";
  }
  return null;
}

function keyBytes(b64) {  // a VAPID public key, base64url without padding, as applicationServerKey
  const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function deviceName() {
  const ua = navigator.userAgent;
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iPhone" : (navigator.platform || "this device");
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom/.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "browser";
  return `${os} · ${browser}`;
}

async function turnOn() {
  const button = document.getElementById("push-on");
  button.disabled = true;
  try {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      pushSay(permission === "denied" ? "You turned notifications down: allow them in the browser's site settings to have jobs ring this phone."
        : "Notifications were not allowed; tap again to be asked again.");
      return;
    }
    let key;
    try { key = (await api("/api/v1/push/key")).public_key; } catch (e) {
      pushSay(e.status === 404 ? PUSH_MISSING : "The server did not answer (" + e.message + "); try again with a signal.");
      return;
    }
    const reg = await navigator.serviceWorker.ready;
    let sub;
    try { sub = await reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(key)}); } catch (e) {
      pushSay("This browser could not subscribe to push (" + e.message + ").");
      return;
    }
    try {
      await api("/api/v1/push/subscriptions", {method: "POST", body: {...sub.toJSON(), device: deviceName()}});
      pushSay("Notifications are on for this phone: new jobs ring it, with Acknowledge and Decline.");
    } catch (e) {
      pushSay(e.status === 404 ? PUSH_MISSING : "The server refused this phone's subscription: " + e.message + ".");
    }
  } finally {
    button.disabled = false;
    listDevices();
  }
}

async function listDevices() {
  const ul = document.getElementById("push-devices");
  let data;
  try { data = await api("/api/v1/push/subscriptions"); } catch (e) {
    if (e.status === 401 || e.status === 403) { document.getElementById("push").hidden = true; return; }
    ul.innerHTML = "";
    if (e.status === 404) { pushSay(PUSH_MISSING); document.getElementById("push-on").hidden = true; }
    return;
  }
  let mine = null;
  try { const reg = await navigator.serviceWorker.ready; const s = await reg.pushManager.getSubscription(); mine = s && s.endpoint; } catch (e) { /* none */ }
  ul.innerHTML = data.items.map((d) => `<li data-device="${esc(d.id)}"><span><b>${esc(d.device || "a device")}</b>${d.endpoint === mine ? " (this phone)" : ""}
    <br><small>added ${esc(new Date(d.created_at).toLocaleDateString())}${d.last_failure ? " · last failure: " + esc(d.last_failure) : d.last_success_at ? " · last rang " + esc(ago(Date.now() - Date.parse(d.last_success_at))) : ""}</small></span>
    <button type="button" data-remove="${esc(d.id)}" data-endpoint="${esc(d.endpoint)}">Remove</button></li>`).join("");
}

document.getElementById("push-devices").addEventListener("click", async (e) => {
  const b = e.target.closest("[data-remove]");
  if (!b) return;
  b.disabled = true;
  try {
    await api(`/api/v1/push/subscriptions/${encodeURIComponent(b.dataset.remove)}`, {method: "DELETE"});
    const reg = await navigator.serviceWorker.ready, s = await reg.pushManager.getSubscription();
    if (s && s.endpoint === b.dataset.endpoint) await s.unsubscribe();  // this phone: the browser forgets it too
  } catch (err) {
    pushSay("Could not remove it: " + err.message + ".");
  }
  listDevices();
});

function startPush() {
  const box = document.getElementById("push");
  box.hidden = false;
  const why = pushBlocker();
  document.getElementById("push-on").hidden = Boolean(why);
  if (why) pushSay(why);
  else if (Notification.permission === "granted") pushSay("Notifications are allowed; if this phone is not listed below, turn them on again.");
  listDevices();
}

document.getElementById("push-on").addEventListener("click", turnOn);
document.getElementById("signout").addEventListener("click", () => {  // the worker's outbox goes with the page's
  const c = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (c) c.postMessage({type: "signout"});
});
document.getElementById("reload").addEventListener("click", () => location.reload());
startWorker();
if (!stop) startPush();

/* The service worker of /tech: served at /sw.js, registered by pwa.js with the scope /tech
   (dispatcher/http/routes/pwa.py fills in BUILD). It does three things:
   - the app shell (the page, its versioned scripts, the manifest, the icons) is precached and
     served when there is no signal; the API is never cached here (the page keeps its last job
     list in localStorage, keyed by who signed in);
   - a push shows a notification with the actions it carries (Acknowledge, Decline); an action
     tapped on the notification is POSTed with the session cookie, and kept in IndexedDB when
     there is no signal, to be sent on the next event (a push, a page load, the signal back);
   - a new version takes over at once (skipWaiting, clients.claim); the page offers a reload. */
"use strict";
const BUILD = {"version": "dev", "shell": ["/tech"]};  // filled in when served: the shell's URLs
const PREFIX = "hg-tech-";
const CACHE = PREFIX + BUILD.version;
const SHELL = new Set(BUILD.shell);
const PAGE_TIMEOUT = 4000;  // a navigation on a weak signal falls back to the shell after 4 s
const OUTBOX_TAG = "hg-outbox";  // the Background Sync tag, where the browser has it

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(BUILD.shell)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);  // old versions
    }
    await self.clients.claim();
    await flush();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate" && url.pathname === "/tech") event.respondWith(page(req));
  else if (SHELL.has(url.pathname + url.search)) event.respondWith(shell(req));
  // everything else (the API, the stream, sign-in) goes to the network untouched
});

async function page(req) {  // the network's page when it answers in time, else the shell's
  const timeout = new Promise((resolve) => setTimeout(resolve, PAGE_TIMEOUT, null));
  try {
    const fresh = await Promise.race([fetch(req), timeout]);
    if (fresh) return fresh;
  } catch (e) { /* no signal */ }
  return (await caches.match("/tech", {cacheName: CACHE})) || Response.error();
}

async function shell(req) {  // a versioned file never changes: the cached copy is the file
  return (await caches.match(req, {cacheName: CACHE})) || fetch(req);
}

/* ---- push: the payload is the CONTRACT's (kind, title, body, tag, url, job, key, actions) ---- */
self.addEventListener("push", (event) => {
  let msg;
  try { msg = event.data ? event.data.json() : {}; } catch (e) { msg = {body: event.data.text()}; }
  event.waitUntil(Promise.all([notify(msg || {}), flush()]));
});

function notify(msg) {
  const actions = (Array.isArray(msg.actions) ? msg.actions : []).filter(allowed);
  return self.registration.showNotification(msg.title || "Hourglass", {
    body: msg.body || "", tag: msg.tag || "", renotify: Boolean(msg.tag), requireInteraction: true,
    icon: "/web/icons/icon-192.png", badge: "/web/icons/maskable-192.png",
    timestamp: Date.parse(msg.sent_at) || Date.now(), data: msg,
    actions: actions.map((a) => ({action: a.action, title: a.title || a.action})),
  });
}

function allowed(a) {  // only a POST to this site's own API: never another origin, never a page
  if (!a || typeof a.action !== "string" || typeof a.path !== "string") return false;
  if ((a.method || "POST").toUpperCase() !== "POST" || !a.path.startsWith("/api/v1/")) return false;
  const url = new URL(a.path, self.location.origin);
  return url.origin === self.location.origin && url.pathname.startsWith("/api/v1/");
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(clicked(event.notification.data || {}, event.action));
});

/* The one path a notification's action takes: the system's click above, or the /tech page's
   own "notificationclick" message below (the page holds the same session and could post the
   action itself, so the message grants nothing new; headless browsers cannot click). */
async function clicked(msg, action) {
  const a = action ? (msg.actions || []).find((x) => x && x.action === action) : null;
  if (!a || !allowed(a)) return openPage(msg.url);
  const base = msg.key || msg.tag || `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  return post({id: `${base}:${a.action}`, key: `${base}:${a.action}`, path: a.path, body: a.body ?? null,
               action: a.action, title: a.title || a.action, job: msg.job ?? null,
               device_time: new Date().toISOString(), queued_at: Date.now()}, false);
}

async function openPage(url) {
  let target = new URL(url || "/tech", self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/tech", self.location.origin);
  for (const w of await self.clients.matchAll({type: "window", includeUncontrolled: true})) {
    if (new URL(w.url).pathname === target.pathname && "focus" in w) return w.focus();
  }
  return self.clients.openWindow(target.href);
}

self.addEventListener("message", (event) => {
  const src = event.source, data = event.data || {};
  if (!src || src.type !== "window") return;
  event.waitUntil((async () => {
    const mine = await self.clients.matchAll({type: "window"});  // the windows this worker controls
    if (!mine.some((c) => c.id === src.id)) return;
    if (data.type === "flush") await flush();
    else if (data.type === "signout") {  // what waits was someone else's: never send it with the next session
      for (const item of await outbox("all")) await outbox("delete", item.id);
    }
    else if (data.type === "notificationclick" && typeof data.tag === "string") {
      const [n] = await self.registration.getNotifications({tag: data.tag});
      if (!n) return;
      n.close();
      await clicked(n.data || {}, String(data.action || ""));
    }
  })());
});

self.addEventListener("sync", (event) => { if (event.tag === OUTBOX_TAG) event.waitUntil(flush()); });

/* ---- the worker's outbox: notification actions waiting for a signal ---- */
async function post(item, stored) {
  let r;
  try {
    const headers = {"Accept": "application/json", "Idempotency-Key": item.key,
                     "Hourglass-Device-Time": item.device_time};
    const init = {method: "POST", credentials: "same-origin", cache: "no-store", headers};
    if (item.body !== null) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(item.body); }
    r = await fetch(item.path, init);
  } catch (e) {
    r = null;  // no signal
  }
  if (!r || r.status >= 500 || r.status === 408 || r.status === 429) {  // worth another try later
    if (!stored) {
      await outbox("put", item);
      try { await self.registration.sync.register(OUTBOX_TAG); } catch (e) { /* no Background Sync */ }
    }
    return report({...item, outcome: "waiting"});
  }
  await outbox("delete", item.id);
  let detail = "";
  if (!r.ok) {
    try { detail = (await r.json()).detail || ""; } catch (e) { /* not JSON */ }
    detail = detail || `HTTP ${r.status}`;
    await self.registration.showNotification(`“${item.title}” was not applied`, {
      body: detail, tag: `refused:${item.key}`, data: {url: "/tech"}, icon: "/web/icons/icon-192.png"});
  }
  return report({...item, outcome: r.ok ? "sent" : "refused", status: r.status, detail});
}

let flushing = null;
function flush() {  // send what waits, oldest first; one pass at a time
  if (!flushing) {
    flushing = (async () => {
      try {
        const items = (await outbox("all")).sort((x, y) => x.queued_at - y.queued_at);
        for (const item of items) await post(item, true);
        if (!items.length) await report(null);
      } finally { flushing = null; }
    })();
  }
  return flushing;
}

async function report(last) {  // tell the open /tech pages what waits and what just happened
  const items = await outbox("all");
  for (const c of await self.clients.matchAll({type: "window"})) c.postMessage({type: "sw-outbox", items, last});
}

function outbox(op, arg) {  // IndexedDB "hourglass-sw", store "outbox" keyed by id
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("hourglass-sw", 1);
    open.addEventListener("upgradeneeded", () => open.result.createObjectStore("outbox", {keyPath: "id"}));
    open.addEventListener("error", () => reject(open.error));
    open.addEventListener("success", () => {
      const db = open.result, tx = db.transaction("outbox", op === "all" ? "readonly" : "readwrite");
      const store = tx.objectStore("outbox");
      const req = op === "all" ? store.getAll() : op === "put" ? store.put(arg) : store.delete(arg);
      tx.addEventListener("complete", () => { db.close(); resolve(req.result); });
      tx.addEventListener("error", () => { db.close(); reject(tx.error); });
    });
  });
}

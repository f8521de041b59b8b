/* Passkeys (WebAuthn): signing in with one on /signin, adding and removing them on /passkeys.
   The server's options come as JSON with binary fields in base64url; the browser's answer goes
   back the same way. Self-contained: the sign-in page loads this script alone. */
"use strict";
(() => {
  const b64url = {
    encode(buf) {
      let s = "";
      for (const byte of new Uint8Array(buf)) s += String.fromCharCode(byte);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    decode(text) {
      const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
      return Uint8Array.from(s, (c) => c.charCodeAt(0));
    },
  };
  const supported = () => !!(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
  const errorBox = () => document.getElementById("passkey-error");
  const say = (text) => { const e = errorBox(); if (e) e.textContent = text || ""; };

  async function post(path, body) {  // JSON in and out; a refusal throws with the server's words
    const r = await fetch(path, {method: "POST", credentials: "same-origin", cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body || {})});
    let data = null;
    try { data = await r.clone().json(); } catch (e) { /* a page after the sign-in's 303 */ }
    if (!r.ok) throw new Error((data && data.detail) || `HTTP ${r.status}`);
    return {r, data};
  }

  const descriptors = (list) => (list || []).map((c) => ({...c, id: b64url.decode(c.id)}));

  function creationOptions(o) {
    return {...o, challenge: b64url.decode(o.challenge), user: {...o.user, id: b64url.decode(o.user.id)},
            excludeCredentials: descriptors(o.excludeCredentials)};
  }

  function requestOptions(o) {
    return {...o, challenge: b64url.decode(o.challenge), allowCredentials: descriptors(o.allowCredentials)};
  }

  function common(cred) {
    return {id: cred.id, rawId: b64url.encode(cred.rawId), type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || null,
            clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}};
  }

  function registrationJSON(cred) {
    const r = cred.response;
    return {...common(cred), response: {clientDataJSON: b64url.encode(r.clientDataJSON),
      attestationObject: b64url.encode(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : []}};
  }

  function assertionJSON(cred) {
    const r = cred.response;
    return {...common(cred), response: {clientDataJSON: b64url.encode(r.clientDataJSON),
      authenticatorData: b64url.encode(r.authenticatorData), signature: b64url.encode(r.signature),
      userHandle: r.userHandle ? b64url.encode(r.userHandle) : null}};
  }

  const cancelled = (e) => e && (e.name === "NotAllowedError" || e.name === "AbortError");

  /* ---- /signin: "Sign in with a passkey" ---- */
  async function signIn(button) {
    say("");
    button.disabled = true;
    try {
      const {data} = await post("/signin/passkey/options");
      const cred = await navigator.credentials.get({publicKey: requestOptions(data.options)});
      const {r} = await post("/signin/passkey", {credential: assertionJSON(cred)});
      location.assign(r.redirected ? r.url : "/");  // the 303 to the person's page, followed
    } catch (e) {
      say(cancelled(e) ? "No passkey was used. Try again, or sign in with a link above." : e.message);
      button.disabled = false;
    }
  }

  /* ---- /passkeys: the list, "Add a passkey", "Remove" ---- */
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const day = (iso) => iso ? new Date(iso).toLocaleDateString([], {year: "numeric", month: "short", day: "numeric"}) : "never";

  async function showList() {
    const list = document.getElementById("passkeys");
    const r = await fetch("/api/v1/passkeys", {credentials: "same-origin", cache: "no-store",
                                                 headers: {"Accept": "application/json"}});
    const data = await r.json().catch(() => null);
    if (r.status === 401) {
      list.innerHTML = `<li><span class="what">Not signed in: open a sign-in link first, or
        <a href="/signin">sign in</a>.</span></li>`;
      document.getElementById("passkey-form").hidden = true;
      return;
    }
    if (!r.ok) { say((data && data.detail) || `HTTP ${r.status}`); document.getElementById("passkey-form").hidden = true; return; }
    list.innerHTML = data.items.length ? data.items.map((p) => `<li data-id="${p.id}">
      <span class="what">${esc(p.name)}<small>added ${esc(day(p.created_at))} · last used ${esc(day(p.last_used_at))}</small></span>
      <button class="remove" type="button" data-remove="${p.id}">Remove</button></li>`).join("")
      : `<li><span class="what">No passkeys yet.</span></li>`;
  }

  async function add(form) {
    say("");
    const button = document.getElementById("passkey-add");
    button.disabled = true;
    try {
      const {data} = await post("/api/v1/passkeys/register/options");
      const cred = await navigator.credentials.create({publicKey: creationOptions(data.options)});
      const name = document.getElementById("passkey-name").value.trim() || "passkey";
      await post("/api/v1/passkeys/register", {credential: registrationJSON(cred), name});
      form.reset();
      await showList();
    } catch (e) {
      say(e && e.name === "InvalidStateError" ? "This device holds a passkey for you already: sign in with it."
        : cancelled(e) ? "No passkey was added (cancelled, or this device has one for you already)." : e.message);
    } finally { button.disabled = false; }
  }

  async function remove(id) {
    say("");
    try { await post(`/api/v1/passkeys/${encodeURIComponent(id)}/remove`); await showList(); } catch (e) { say(e.message); }
  }

  const signinButton = document.getElementById("passkey-signin");
  if (signinButton && supported()) {
    document.getElementById("passkey").hidden = false;
    signinButton.addEventListener("click", () => signIn(signinButton));
  }
  const form = document.getElementById("passkey-form");
  if (form) {
    if (!supported()) { document.getElementById("unsupported").hidden = false; form.hidden = true; }
    form.addEventListener("submit", (e) => { e.preventDefault(); add(form); });
    document.getElementById("passkeys").addEventListener("click", (e) => {
      const b = e.target.closest("[data-remove]");
      if (b) remove(b.dataset.remove);
    });
    if (document.referrer.endsWith("/ops")) document.getElementById("back").href = "/ops";
    showList().catch((e) => say(e.message));
  }
})();

// The contacts example SPA: OpenID Connect implicit flow
// (response_type=id_token token, OIDC Core 1.0 section 3.2) against any
// provider, then calls to the contacts API with `Authorization: Bearer`
// (RFC 6750 section 2.1).
//
// Security notes for reviewers:
// * state and nonce are 256-bit values from crypto.getRandomValues, kept in
//   sessionStorage (this tab only) and used once. A response whose state does
//   not match is discarded before any API call (RFC 6749 section 10.12, CSRF).
// * The fragment with the tokens is removed from the address bar and the
//   history entry (history.replaceState) before anything else happens, and
//   the page sends no Referer (meta referrer no-referrer).
// * Tokens live in memory only: a reload means signing in again.
// * The id_token is verified by the API (POST /session/handoff: signature,
//   iss, aud, exp, nonce, at_hash); the page trusts nothing about the user
//   until the API said so. The local nonce comparison only fails fast.
// * Everything shown comes from textContent; no innerHTML, no inline handlers
//   (works under a strict Content-Security-Policy).
"use strict";

(function () {
  // The settings live in one place: config.js (or the one demo.py serves).
  const cfg = Object.assign({ authorizeUrl: null, extraAuthParams: {} }, window.CONTACTS_SPA_CONFIG || {});
  const MISSING = ["issuer", "apiUrl", "clientId", "scope"].filter((name) => !cfg[name]);
  const PENDING_KEY = "contacts-spa.pending";
  const PENDING_MAX_AGE_MS = 10 * 60 * 1000;

  // In-memory session: never written to storage.
  const session = { accessToken: null, idToken: null, expiresAt: null, scopes: [] };
  let expiryTimer = null;

  function $(id) {
    return document.getElementById(id);
  }

  function setPhase(phase) {
    // For humans (status line) and for the browser tests (data-phase).
    document.body.dataset.phase = phase;
  }

  // --- random values, encoding ------------------------------------------------
  function base64url(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomValue() {
    const bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    return base64url(bytes);
  }

  // Reads a JWT payload WITHOUT verifying it: only for display and fail-fast
  // checks. The API is the one that verifies.
  function unverifiedJwtPayload(jwt) {
    try {
      const part = String(jwt).split(".")[1];
      if (!part) return null;
      let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
      while (b64.length % 4) b64 += "=";
      const binary = atob(b64);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      return payload && typeof payload === "object" ? payload : null;
    } catch (e) {
      return null;
    }
  }

  function scopesFrom(value) {
    if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
    if (Array.isArray(value)) return value.filter((s) => typeof s === "string");
    return [];
  }

  // --- showing things (textContent only) -------------------------------------
  function clearChildren(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showError(message, detail) {
    $("error").textContent = message;
    const pre = $("error-detail");
    if (detail !== undefined && detail !== null) {
      pre.textContent = typeof detail === "string" ? detail : JSON.stringify(detail, null, 2);
      pre.hidden = false;
    } else {
      pre.textContent = "";
      pre.hidden = true;
    }
    $("error-box").hidden = false;
  }

  function clearError() {
    $("error-box").hidden = true;
    $("error").textContent = "";
    $("error-detail").textContent = "";
  }

  function setStatus(text, state) {
    const status = $("status");
    status.textContent = text;
    status.dataset.state = state;
  }

  function logCall(method, path, status, body, challenge) {
    const item = document.createElement("li");
    const ok = typeof status === "number" && status >= 200 && status < 300;
    item.className = ok ? "ok" : "fail";
    const line = document.createElement("span");
    line.textContent = method + " " + path + " \u2192 " + status;
    item.appendChild(line);
    if (!ok) {
      if (challenge) {
        const hdr = document.createElement("pre");
        hdr.textContent = "WWW-Authenticate: " + challenge;
        item.appendChild(hdr);
      }
      if (body !== null && body !== undefined && body !== "") {
        const pre = document.createElement("pre");
        pre.textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
        item.appendChild(pre);
      }
    }
    $("api-log").appendChild(item);
  }

  function renderScopes(scopes) {
    const list = $("scopes");
    clearChildren(list);
    scopes.forEach((scope) => {
      const li = document.createElement("li");
      li.textContent = scope;
      list.appendChild(li);
    });
  }

  function renderExpiry() {
    const node = $("expiry");
    if (!session.expiresAt) {
      node.textContent = "unknown";
      return;
    }
    const left = Math.round((session.expiresAt - Date.now()) / 1000);
    const when = new Date(Math.floor(session.expiresAt / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    if (left <= 0) {
      node.textContent = when + " (expired: sign in again)";
      node.dataset.expired = "true";
    } else {
      const minutes = Math.floor(left / 60);
      node.textContent = when + " (in " + minutes + " min " + (left % 60) + " s)";
      node.dataset.expired = "false";
    }
  }

  function renderContacts(data) {
    const list = $("contacts-list");
    clearChildren(list);
    const contacts = Array.isArray(data && data.contacts) ? data.contacts : [];
    contacts.forEach((contact) => {
      const li = document.createElement("li");
      li.textContent = String(contact.email);
      list.appendChild(li);
    });
    $("contacts-count").textContent =
      contacts.length === 0 ? "No contacts yet." : contacts.length + (contacts.length === 1 ? " contact" : " contacts");
  }

  // --- the API ---------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body, challenge) {
      super("API answered " + status);
      this.status = status;
      this.body = body;
      this.challenge = challenge;
    }
  }

  async function api(method, path, body) {
    if (!session.accessToken) throw new Error("not signed in");
    const headers = { Authorization: "Bearer " + session.accessToken };
    const init = { method: method, headers: headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(cfg.apiUrl.replace(/\/+$/, "") + path, init);
    } catch (e) {
      logCall(method, path, "network error");
      throw new ApiError(0, "The API at " + cfg.apiUrl + " could not be reached (" + e.message + ")", null);
    }
    const text = await response.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      /* not JSON: keep the text */
    }
    const challenge = response.headers.get("WWW-Authenticate");
    logCall(method, path, response.status, data, challenge);
    if (!response.ok) throw new ApiError(response.status, data, challenge);
    return data;
  }

  function describeApiError(what, err) {
    if (err instanceof ApiError) {
      const detail = { status: err.status, body: err.body };
      if (err.challenge) detail["WWW-Authenticate"] = err.challenge;
      const desc = err.body && typeof err.body === "object" && err.body.error_description;
      // RFC 6750 3.1: 401 means this token is no good (expired, revoked...):
      // only a new sign-in helps. 403 means it lacks a scope.
      const hint = err.status === 401 ? " \u2013 sign in again." : "";
      showError(what + " failed: " + (desc || "HTTP " + err.status) + hint, detail);
      if (err.status === 401) $("signin").hidden = false;
    } else {
      showError(what + " failed: " + err.message);
    }
  }

  async function loadContacts() {
    try {
      renderContacts(await api("GET", "/contacts"));
    } catch (err) {
      describeApiError("Loading contacts", err);
    }
  }

  async function importContacts(event) {
    event.preventDefault();
    const result = $("import-result");
    const emails = $("emails").value.split(/[\s,;]+/).filter(Boolean);
    if (emails.length === 0) {
      result.textContent = "Enter at least one e-mail address.";
      result.dataset.ok = "false";
      return;
    }
    try {
      const answer = await api("POST", "/contacts/import", { emails: emails });
      result.textContent =
        "Imported " + answer.added + " new, " + answer.duplicates + " already known; " + answer.total + " in total.";
      result.dataset.ok = "true";
      $("emails").value = "";
      await loadContacts();
    } catch (err) {
      result.dataset.ok = "false";
      if (err instanceof ApiError && err.status === 400 && err.body && Array.isArray(err.body.invalid)) {
        result.textContent =
          err.body.error_description +
          ": " +
          err.body.invalid.map((p) => JSON.stringify(p.value) + " " + p.reason).join("; ");
      } else {
        result.textContent = "Import failed.";
        describeApiError("Import", err);
      }
    }
  }

  async function callCoordinate() {
    try {
      $("coordinate-result").textContent = JSON.stringify(await api("GET", "/coordinate"), null, 2);
    } catch (err) {
      $("coordinate-result").textContent = "";
      describeApiError("GET /coordinate", err);
    }
  }

  // --- signing in ------------------------------------------------------------
  async function authorizationEndpoint() {
    if (cfg.authorizeUrl) return cfg.authorizeUrl;
    // OpenID Connect Discovery 1.0 section 4; the issuer must match exactly (4.3).
    const issuer = cfg.issuer.replace(/\/+$/, "");
    const response = await fetch(issuer + "/.well-known/openid-configuration", { credentials: "omit" });
    if (!response.ok) throw new Error("discovery answered HTTP " + response.status);
    const doc = await response.json();
    if (doc.issuer !== cfg.issuer) throw new Error("discovery names issuer " + doc.issuer + ", expected " + cfg.issuer);
    return doc.authorization_endpoint;
  }

  function redirectUri() {
    return location.origin + location.pathname;
  }

  async function signIn() {
    clearError();
    let endpoint;
    try {
      endpoint = await authorizationEndpoint();
    } catch (err) {
      showError("Cannot find the provider's authorization endpoint: " + err.message);
      return;
    }
    const pending = { state: randomValue(), nonce: randomValue(), redirectUri: redirectUri(), createdAt: Date.now() };
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    const url = new URL(endpoint);
    const params = url.searchParams;
    Object.keys(cfg.extraAuthParams || {}).forEach((name) => params.set(name, cfg.extraAuthParams[name]));
    params.set("response_type", "id_token token");
    params.set("client_id", cfg.clientId);
    params.set("redirect_uri", pending.redirectUri);
    params.set("scope", cfg.scope);
    params.set("state", pending.state);
    params.set("nonce", pending.nonce);
    setStatus("Redirecting to the provider\u2026", "redirecting");
    location.assign(url.toString());
  }

  function signOut() {
    session.accessToken = null;
    session.idToken = null;
    session.expiresAt = null;
    session.scopes = [];
    if (expiryTimer) clearInterval(expiryTimer);
    expiryTimer = null;
    ["session", "contacts-section", "extras"].forEach((id) => ($(id).hidden = true));
    clearChildren($("contacts-list"));
    $("handoff-result").textContent = "";
    $("signin").hidden = false;
    $("signout").hidden = true;
    setStatus("Not signed in", "signed-out");
    setPhase("signed-out");
  }

  // Reads the authentication response from the fragment (OIDC Core 3.2.2.5)
  // and removes it from the address bar at once, whatever it contains.
  function takeAuthResponse() {
    if (!location.hash || location.hash.length < 2) return null;
    const params = new URLSearchParams(location.hash.slice(1));
    history.replaceState(null, "", location.pathname + location.search);
    const known = ["access_token", "id_token", "error", "state"];
    return known.some((name) => params.has(name)) ? params : null;
  }

  function takePending() {
    const raw = sessionStorage.getItem(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY); // one use only
    if (!raw) return null;
    try {
      const pending = JSON.parse(raw);
      if (!pending || typeof pending.state !== "string" || typeof pending.nonce !== "string") return null;
      if (Date.now() - pending.createdAt > PENDING_MAX_AGE_MS) return null;
      return pending;
    } catch (e) {
      return null;
    }
  }

  function rejectResponse(message) {
    showError(message);
    setStatus("Sign-in failed", "error");
    setPhase("error");
  }

  async function completeSignIn(params) {
    const pending = takePending();
    if (!pending) {
      rejectResponse(
        "Sign-in response ignored: this tab did not start a sign-in (no saved state, or it is older than 10 minutes). No API call was made."
      );
      return;
    }
    // RFC 6749 section 10.12 / OIDC Core 3.2.2.5: state must be the one we sent.
    if (params.get("state") !== pending.state) {
      rejectResponse(
        "State mismatch: the sign-in response does not belong to the request this tab sent (possible CSRF or a stale tab). It was discarded; no API call was made."
      );
      return;
    }
    if (params.has("error")) {
      rejectResponse(
        "The provider refused the sign-in: " + params.get("error") + (params.get("error_description") ? " \u2013 " + params.get("error_description") : "")
      );
      return;
    }
    const accessToken = params.get("access_token");
    const idToken = params.get("id_token");
    const tokenType = (params.get("token_type") || "").toLowerCase();
    if (!accessToken || !idToken || tokenType !== "bearer") {
      rejectResponse("The sign-in response lacks an access token, an id_token, or token_type=Bearer.");
      return;
    }
    const idPayload = unverifiedJwtPayload(idToken);
    if (!idPayload || idPayload.nonce !== pending.nonce) {
      rejectResponse("Nonce mismatch: the id_token was not issued for this sign-in. It was discarded; no API call was made.");
      return;
    }

    session.accessToken = accessToken;
    session.idToken = idToken;
    const atPayload = unverifiedJwtPayload(accessToken);
    const expiresIn = parseInt(params.get("expires_in") || "", 10);
    if (Number.isFinite(expiresIn) && expiresIn > 0) {
      session.expiresAt = Date.now() + expiresIn * 1000;
    } else if (atPayload && typeof atPayload.exp === "number") {
      session.expiresAt = atPayload.exp * 1000;
    }
    // Granted scopes: the response's `scope` (RFC 6749 4.2.2), else the
    // token's own claim; replaced by what the API verified after the handoff.
    session.scopes = params.has("scope") ? scopesFrom(params.get("scope")) : scopesFrom(atPayload && atPayload.scope);

    setStatus("Checking the sign-in with the API\u2026", "checking");
    let answer;
    try {
      answer = await api("POST", "/session/handoff", { id_token: idToken, nonce: pending.nonce });
    } catch (err) {
      describeApiError("The id_token handoff", err);
      session.accessToken = null;
      session.idToken = null;
      setStatus("Sign-in failed", "error");
      setPhase("error");
      return;
    }
    if (Array.isArray(answer.scopes)) session.scopes = answer.scopes;
    showSession(answer);
    await loadContacts();
    setPhase("signed-in");
  }

  function showSession(answer) {
    const user = answer.user || {};
    const name = user.name || user.preferred_username || user.email;
    $("user").textContent = name ? name + " (sub " + user.sub + ")" : "sub " + user.sub;
    $("issuer").textContent = String(answer.issuer || cfg.issuer);
    renderScopes(session.scopes);
    renderExpiry();
    if (expiryTimer) clearInterval(expiryTimer);
    expiryTimer = setInterval(renderExpiry, 1000);
    $("handoff-result").textContent = JSON.stringify(answer, null, 2);
    ["session", "contacts-section", "extras"].forEach((id) => ($(id).hidden = false));
    $("signin").hidden = true;
    $("signout").hidden = false;
    setStatus("Signed in as " + (name || user.sub), "signed-in");
  }

  // --- start -------------------------------------------------------------------
  function start() {
    if (MISSING.length) {
      setPhase("error");
      showError("config.js is missing or lacks " + MISSING.join(", ") + "; see examples/spa/config.js");
      return;
    }
    $("signin").addEventListener("click", signIn);
    $("signout").addEventListener("click", signOut);
    $("import-form").addEventListener("submit", importContacts);
    $("coordinate").addEventListener("click", callCoordinate);
    const params = takeAuthResponse();
    if (params) {
      setPhase("completing");
      completeSignIn(params).catch((err) => rejectResponse("Sign-in failed: " + err.message));
    } else {
      setPhase("signed-out");
    }
  }

  start();
})();

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
// * The session (tokens, expiry, the API's handoff answer) is kept in
//   sessionStorage, so a reload keeps the user signed in for the life of the
//   tab. sessionStorage belongs to this tab and this origin only: other tabs
//   do not see it and it is gone when the tab closes. It is removed on sign-out,
//   when the access token expires and when the API refuses it (401).
//   A sign-in whose handoff (below) was held up by an outage is kept there
//   too (the tokens, the nonce, the error shown), so that a reload does not
//   lose it: the page shows the same error and Retry again. It is removed
//   when the handoff succeeds or fails for good, on a new sign-in, on
//   sign-out and when its access token has expired.
//   localStorage is never used (it would outlive the tab and be shared by
//   every tab). Any script of this origin could read sessionStorage, which is
//   why the page runs under a strict Content-Security-Policy (scripts from
//   this origin only, no inline script) and writes only through textContent.
// * The id_token is verified by the API (POST /session/handoff: signature,
//   iss, aud, exp, nonce, at_hash); the page trusts nothing about the user
//   until the API said so. The local nonce comparison only fails fast.
// * Everything shown comes from textContent; no innerHTML, no inline handlers
//   (works under a strict Content-Security-Policy).
//
// The page's state is one object (`state`) and what the page shows of it is
// one function (`render`): the header, the buttons and the sections can never
// disagree about whether the user is signed in.
"use strict";

(function () {
  // The settings live in one place: config.js (or the one demo.py serves).
  const cfg = Object.assign({ authorizeUrl: null, extraAuthParams: {} }, window.CONTACTS_SPA_CONFIG || {});
  const MISSING = ["issuer", "apiUrl", "clientId", "scope"].filter((name) => !cfg[name]);
  const PENDING_KEY = "contacts-spa.pending";
  const SESSION_KEY = "contacts-spa.session";
  const HANDOFF_KEY = "contacts-spa.handoff";
  const STEP_UP_ERROR = "insufficient_user_authentication";
  const PENDING_MAX_AGE_MS = 10 * 60 * 1000;

  // What each scope lets this page do, in plain words. Scopes the page does
  // not know are shown as such.
  const SCOPE_INFO = {
    openid: "Sign in with OpenID Connect: the provider issues an id_token that says who you are.",
    profile: "Your name and user name in the id_token, so the page can greet you.",
    email: "Your e-mail address in the id_token.",
    contacts: "Import and list your contacts (POST /contacts/import, GET /contacts).",
    wte: "Queue back-end jobs in your name (POST /wte/jobs), the route the wte worker also uses.",
    coordinate: "Call the entry point of the coordinate app (GET /coordinate).",
    offline_access: "Refresh tokens, to stay signed in without the provider's login page (not used here).",
  };
  const UNKNOWN_SCOPE = "Granted by the provider; this page does not use it.";

  // phase: "signed-out" | "redirecting" | "completing" | "signed-in" | "expired" | "error"
  // session: null, or {accessToken, idToken, expiresAt (ms), scopes, answer}
  const state = { phase: "signed-out", session: null, notice: null };
  // The error box: message, optional retry action and Retry-After deadline.
  const failure = { retry: null, retryAt: null, message: "" };

  function $(id) {
    return document.getElementById(id);
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

  // RFC 6749 section 3.3: scopes are separated by single spaces.
  function scopesFrom(value) {
    if (typeof value === "string") return value.split(" ").filter(Boolean);
    if (Array.isArray(value)) return value.filter((s) => typeof s === "string");
    return [];
  }

  function originOf(url) {
    try {
      return new URL(url).origin;
    } catch (e) {
      return String(url);
    }
  }

  // --- time -------------------------------------------------------------------
  function localTime(ms) {
    const when = new Date(ms);
    const sameDay = when.toDateString() === new Date().toDateString();
    const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" };
    if (!sameDay) Object.assign(options, { weekday: "short", day: "numeric", month: "short" });
    return new Intl.DateTimeFormat(undefined, options).format(when);
  }

  function inWords(seconds) {
    if (seconds >= 90) return "in " + Math.round(seconds / 60) + " min";
    return "in " + Math.max(0, seconds) + " s";
  }

  function secondsUntil(ms) {
    return Math.ceil((ms - Date.now()) / 1000);
  }

  // RFC 9110 section 10.2.3: Retry-After is delay-seconds or an HTTP-date.
  function retryAfterMs(value) {
    if (!value) return null;
    const text = value.trim();
    if (/^\d+$/.test(text)) return Date.now() + parseInt(text, 10) * 1000;
    const date = Date.parse(text);
    return Number.isFinite(date) ? date : null;
  }

  // --- storage of the session (this tab only) ----------------------------------
  function saveSession() {
    const s = state.session;
    sessionStorage.setItem(
      SESSION_KEY,
      JSON.stringify({ accessToken: s.accessToken, idToken: s.idToken, expiresAt: s.expiresAt, scopes: s.scopes, answer: s.answer })
    );
  }

  function loadStoredSession() {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw);
      const ok =
        s &&
        typeof s.accessToken === "string" &&
        typeof s.idToken === "string" &&
        (s.expiresAt === null || typeof s.expiresAt === "number") &&
        Array.isArray(s.scopes) &&
        s.answer &&
        typeof s.answer === "object";
      if (ok) return s;
    } catch (e) {
      /* unreadable: forget it below */
    }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  // A handoff held up by an outage (API unreachable, or its identity
  // provider answering 503): what Retry needs, and the error shown.
  function savePendingHandoff(tokens, nonce) {
    sessionStorage.setItem(
      HANDOFF_KEY,
      JSON.stringify({
        accessToken: tokens.accessToken,
        idToken: tokens.idToken,
        expiresAt: tokens.expiresAt,
        scopes: tokens.scopes,
        nonce: nonce,
        message: failure.message,
        retryAt: failure.retryAt,
        savedAt: Date.now(),
      })
    );
  }

  function loadPendingHandoff() {
    const raw = sessionStorage.getItem(HANDOFF_KEY);
    if (!raw) return null;
    try {
      const h = JSON.parse(raw);
      const ok =
        h &&
        typeof h.accessToken === "string" &&
        typeof h.idToken === "string" &&
        typeof h.nonce === "string" &&
        (h.expiresAt === null || typeof h.expiresAt === "number") &&
        Array.isArray(h.scopes) &&
        typeof h.message === "string" &&
        (h.retryAt === null || typeof h.retryAt === "number") &&
        typeof h.savedAt === "number";
      if (ok) return h;
    } catch (e) {
      /* unreadable: forget it below */
    }
    sessionStorage.removeItem(HANDOFF_KEY);
    return null;
  }

  function forgetSession() {
    state.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(HANDOFF_KEY);
    clearChildren($("contacts-list"));
    $("contacts-count").textContent = "";
    ["import-result", "coordinate-result", "wte-result", "wte-summary", "handoff-result", "token-claims"].forEach((id) => ($(id).textContent = ""));
  }

  // --- showing things (textContent only) -------------------------------------
  function clearChildren(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function userName(answer) {
    const user = (answer && answer.user) || {};
    return user.name || user.preferred_username || user.email || "sub " + user.sub;
  }

  // The one place that decides what the page shows for the current state.
  function render() {
    const phase = state.phase;
    const s = state.session;
    const signedIn = phase === "signed-in" && s !== null;
    document.body.dataset.phase = phase; // for the browser tests
    $("signin").hidden = !(phase === "signed-out" || phase === "expired" || phase === "error");
    $("signin").textContent = phase === "signed-out" ? "Sign in" : "Sign in again";
    $("signout").hidden = !signedIn;
    ["session", "contacts-section", "extras"].forEach((id) => ($(id).hidden = !signedIn));
    $("welcome").hidden = !(phase === "signed-out" || phase === "expired");
    const status = $("status");
    const words = {
      "signed-out": "Not signed in",
      redirecting: "Redirecting to the provider\u2026",
      completing: "Checking the sign-in with the API\u2026",
      expired: "Session ended",
      error: "Sign-in failed",
    };
    // A sign-in held up by an outage is not finished yet, not failed.
    if (phase === "error" && failure.retry) words.error = "Sign-in not finished";
    status.textContent = signedIn ? "Signed in as " + userName(s.answer) : words[phase] || "";
    status.dataset.state = signedIn ? "signed-in" : phase;
    const notice = $("notice");
    notice.hidden = !state.notice || !$("error-box").hidden;
    $("notice-text").textContent = state.notice || "";
    if (signedIn) renderSession(s);
  }

  function renderSession(s) {
    const user = s.answer.user || {};
    $("user").textContent = userName(s.answer) + (userName(s.answer) === "sub " + user.sub ? "" : " (sub " + user.sub + ")");
    $("issuer").textContent = String(s.answer.issuer || cfg.issuer);
    renderScopes(s.scopes, Array.isArray(s.answer.scopes) ? s.answer.scopes : s.scopes);
    renderExpiry();
    $("handoff-result").textContent = JSON.stringify(s.answer, null, 2);
    $("token-claims").textContent = JSON.stringify(unverifiedJwtPayload(s.accessToken), null, 2);
  }

  function scopeItem(scope, note) {
    const li = el("li");
    li.dataset.scope = scope;
    li.appendChild(el("code", "scope-name", scope));
    li.appendChild(el("span", "scope-what", note || SCOPE_INFO[scope] || UNKNOWN_SCOPE));
    return li;
  }

  // granted: every scope of this sign-in; inToken: those the API found in
  // the access token, which decide its 403s.
  function renderScopes(granted, inToken) {
    const list = $("scopes");
    clearChildren(list);
    granted.forEach((scope) => list.appendChild(scopeItem(scope)));
    // RFC 6749 section 3.3: the provider may grant fewer scopes than asked for.
    const missing = scopesFrom(cfg.scope).filter((scope) => granted.indexOf(scope) < 0);
    const missingList = $("scopes-missing");
    clearChildren(missingList);
    missing.forEach((scope) => missingList.appendChild(scopeItem(scope)));
    $("scopes-missing-block").hidden = missing.length === 0;
    document.querySelectorAll("[data-needs-scope]").forEach((node) => {
      const lacking = inToken.indexOf(node.dataset.needsScope) < 0;
      node.dataset.granted = lacking ? "false" : "true";
      const hint = node.querySelector(".needs");
      if (hint) {
        hint.textContent = lacking
          ? "Needs scope " + node.dataset.needsScope + ", which was not granted: expect a 403."
          : "Needs scope " + node.dataset.needsScope + " (granted).";
      }
    });
  }

  function renderExpiry() {
    const s = state.session;
    const node = $("expiry");
    const time = $("expiry-time");
    const left = $("expiry-left");
    if (!s || !s.expiresAt) {
      time.textContent = "unknown";
      time.removeAttribute("datetime");
      left.textContent = "";
      node.dataset.expired = "false";
      return;
    }
    const iso = new Date(Math.floor(s.expiresAt / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    time.dateTime = iso;
    time.title = iso;
    time.textContent = localTime(s.expiresAt);
    left.textContent = inWords(secondsUntil(s.expiresAt));
    node.dataset.expired = "false";
  }

  // Called every second: the expiry countdown, the switch to "expired", the
  // Retry-After countdown of the error box.
  function tick() {
    const s = state.session;
    if (state.phase === "signed-in" && s && s.expiresAt) {
      if (Date.now() >= s.expiresAt) {
        endSession("The access token expired at " + localTime(s.expiresAt) + ". Sign in again to go on.");
      } else {
        renderExpiry();
      }
    }
    renderFailure();
  }

  // The session is over (token expired, or the API refused it): drop the
  // tokens, say why, offer to sign in again. `why` goes to the notice; with
  // no `why` the error box that is showing already says it (one event, one
  // message: never the notice and the error box at once).
  function endSession(why) {
    forgetSession();
    state.phase = "expired";
    if (why) clearError();
    state.notice = why || null;
    render();
  }

  function showError(message, detail, retry, retryAt) {
    // The error box replaces the notice: the page says one thing at a time.
    state.notice = null;
    $("notice").hidden = true;
    $("notice-text").textContent = "";
    failure.message = message;
    failure.retry = retry || null;
    failure.retryAt = retryAt || null;
    const pre = $("error-detail");
    if (detail !== undefined && detail !== null) {
      pre.textContent = typeof detail === "string" ? detail : JSON.stringify(detail, null, 2);
      $("error-more").hidden = false;
    } else {
      pre.textContent = "";
      $("error-more").hidden = true;
    }
    $("error-box").hidden = false;
    renderFailure();
  }

  function renderFailure() {
    if ($("error-box").hidden) return;
    let text = failure.message;
    const retry = $("retry");
    let wait = 0;
    if (failure.retryAt !== null) {
      wait = secondsUntil(failure.retryAt);
      text = text.replace("{retry}", wait > 0 ? "retry in " + wait + " s" : "you can retry now");
    }
    $("error").textContent = text;
    retry.hidden = !failure.retry;
    retry.disabled = wait > 0;
    retry.textContent = wait > 0 ? "Retry (in " + wait + " s)" : "Retry";
  }

  function clearError() {
    failure.message = "";
    failure.retry = null;
    failure.retryAt = null;
    $("error-box").hidden = true;
    $("error").textContent = "";
    $("error-detail").textContent = "";
    $("retry").hidden = true;
  }

  function logCall(method, path, outcome, body, challenge) {
    const item = el("li");
    item.className = outcome.ok ? "ok" : "fail";
    item.appendChild(el("span", "call", method + " " + path + " \u2192 " + outcome.label));
    if (!outcome.ok) {
      if (challenge) item.appendChild(el("pre", "", "WWW-Authenticate: " + challenge));
      if (body !== null && body !== undefined && body !== "") {
        item.appendChild(el("pre", "", typeof body === "string" ? body : JSON.stringify(body, null, 2)));
      }
    }
    const log = $("api-log");
    log.appendChild(item);
    while (log.children.length > 50) log.removeChild(log.firstChild);
  }

  function renderContacts(data) {
    const list = $("contacts-list");
    clearChildren(list);
    const contacts = Array.isArray(data && data.contacts) ? data.contacts : [];
    contacts.forEach((contact) => list.appendChild(el("li", "", String(contact.email))));
    $("contacts-count").textContent =
      contacts.length === 0 ? "No contacts yet." : contacts.length + (contacts.length === 1 ? " contact" : " contacts");
  }

  // --- the API ---------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body, challenge, retryAt) {
      super("API answered " + status);
      this.status = status;
      this.body = body;
      this.challenge = challenge;
      this.retryAt = retryAt;
    }
  }

  // fetch() rejected: nothing came back (server down, wrong address, CORS
  // refusal, TLS...). The browser does not tell the page which.
  class UnreachableError extends Error {
    constructor(what, where) {
      super(what + " at " + where + " could not be reached");
      this.where = where;
    }
  }

  async function api(method, path, body, token) {
    const accessToken = token || (state.session && state.session.accessToken);
    if (!accessToken) throw new Error("not signed in");
    const headers = { Authorization: "Bearer " + accessToken };
    const init = { method: method, headers: headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const where = originOf(cfg.apiUrl);
    let response;
    try {
      response = await fetch(cfg.apiUrl.replace(/\/+$/, "") + path, init);
    } catch (e) {
      logCall(method, path, { ok: false, label: "not reached (" + where + ")" });
      throw new UnreachableError("the contacts API", where);
    }
    const text = await response.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      /* not JSON: keep the text */
    }
    const challenge = response.headers.get("WWW-Authenticate");
    if (response.status === 503) {
      // The API's identity provider (or its cache) is down: a server-side
      // outage. Its body is not for end users; Retry-After says when to retry.
      const retryAfter = response.headers.get("Retry-After");
      logCall(method, path, { ok: false, label: "503" + (retryAfter ? ", Retry-After: " + retryAfter : "") });
      throw new ApiError(503, null, null, retryAfterMs(retryAfter));
    }
    logCall(method, path, { ok: response.ok, label: String(response.status) }, data, challenge);
    if (!response.ok) throw new ApiError(response.status, data, challenge, null);
    return data;
  }

  // Shows what went wrong with `what` in words; `retry` re-runs the action
  // where retrying can help (outages). Returns true for a 401.
  function describeFailure(what, err, retry) {
    if (err instanceof UnreachableError) {
      showError(
        what +
          " failed: " +
          err.message +
          ". It may be down, or it does not allow this page's origin (" +
          location.origin +
          "); the browser does not say which.",
        null,
        retry
      );
      return false;
    }
    if (!(err instanceof ApiError)) {
      showError(what + " failed: " + err.message);
      return false;
    }
    if (err.status === 503) {
      const when = err.retryAt !== null ? "{retry}" : "retry in a moment";
      showError(
        what + " failed: the identity provider is temporarily unavailable, " + when + ".",
        { status: 503, "Retry-After": err.retryAt !== null ? Math.max(0, secondsUntil(err.retryAt)) + " s" : "not given" },
        retry,
        err.retryAt !== null ? err.retryAt : Date.now()
      );
      return false;
    }
    const detail = { status: err.status, body: err.body };
    if (err.challenge) detail["WWW-Authenticate"] = err.challenge;
    const desc = err.body && typeof err.body === "object" && err.body.error_description;
    // RFC 6750 3.1: 401 means this token is no good (expired, revoked...):
    // only a new sign-in helps. 403 means it lacks a scope.
    if (err.status === 401) {
      showError(what + " failed: " + (desc || "the API refused the access token") + " \u2013 sign in again.", detail);
      return true;
    }
    const reason = err.status >= 400 && err.status < 500 && desc ? desc : "the API answered HTTP " + err.status;
    showError(what + " failed: " + reason, detail);
    return false;
  }

  // A user action on the API: clears the last error first, so an error box
  // never outlives the action that caused it.
  async function apiAction(what, run) {
    clearError();
    try {
      await run();
    } catch (err) {
      if (describeFailure(what, err, () => apiAction(what, run))) {
        // The error box says why (the API's error_description) and to sign
        // in again: no second message in the notice.
        endSession(null);
      }
      throw err;
    }
  }

  function quietly(promise) {
    promise.catch(() => {
      /* shown in the error box already */
    });
  }

  async function loadContacts() {
    renderContacts(await api("GET", "/contacts"));
  }

  // --- step-up (RFC 9470) ------------------------------------------------------
  // The auth-params of a WWW-Authenticate field (RFC 9110 section 11.6.1):
  // name=token or name="quoted string". The challenge of the scheme the
  // request used comes first and carries `error`; a name seen twice keeps
  // its first value (the later challenges are bare ones of other schemes).
  function challengeParams(field) {
    const out = {};
    const param = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
    let match;
    while ((match = param.exec(field || "")) !== null) {
      const name = match[1].toLowerCase();
      const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3];
      if (!(name in out)) out[name] = value;
    }
    return out;
  }

  // What a new sign-in needs, when `err` is a step-up challenge: 401
  // error="insufficient_user_authentication" with acr_values and/or max_age
  // (RFC 9470 section 3), passed on to the authorization endpoint as they
  // are (OIDC Core 3.1.2.1). Else null.
  function stepUpNeeded(err) {
    if (!(err instanceof ApiError) || err.status !== 401 || !err.challenge) return null;
    const params = challengeParams(err.challenge);
    if (params.error !== STEP_UP_ERROR) return null;
    const extra = {};
    if (params.acr_values) extra.acr_values = params.acr_values;
    if (params.max_age && /^[0-9]+$/.test(params.max_age)) extra.max_age = params.max_age;
    return Object.keys(extra).length ? extra : null;
  }

  // DELETE /contacts/<email>: the API wants a stronger sign-in (acr level
  // 2). The first answer is the step-up challenge; the page signs the user
  // in again with its acr_values and, back from the provider, repeats the
  // call once with the new token (a second challenge is only shown).
  function deleteContact(event) {
    event.preventDefault();
    const email = $("delete-email").value.trim();
    const result = $("delete-result");
    clearError();
    result.dataset.ok = "false";
    if (!email) {
      result.textContent = "Enter the address to delete.";
      return;
    }
    result.textContent = "";
    quietly(runDelete(email, false));
  }

  async function runDelete(email, steppedUp) {
    const result = $("delete-result");
    const path = "/contacts/" + encodeURIComponent(email);
    try {
      const answer = await api("DELETE", path);
      result.textContent =
        "Deleted " + answer.deleted + (steppedUp ? " after signing in again (acr " + answer.acr + ")." : ".");
      result.dataset.ok = "true";
      $("delete-email").value = "";
      await loadContacts();
    } catch (err) {
      const extra = stepUpNeeded(err);
      if (extra && !steppedUp) {
        result.textContent = "A stronger sign-in is needed: signing in again\u2026";
        await signIn(extra, { action: "delete", email: email });
        return;
      }
      result.textContent = "Delete failed.";
      if (err instanceof ApiError && err.status === 404) {
        result.textContent = (err.body && err.body.error_description) || "Not found.";
        return;
      }
      if (extra) {
        // Signed in again and still not enough: say so, keep the session.
        showError("Delete failed: " + ((err.body && err.body.error_description) || STEP_UP_ERROR), {
          status: 401,
          "WWW-Authenticate": err.challenge,
        });
        return;
      }
      if (describeFailure("Delete", err, null)) endSession(null);
      throw err;
    }
  }

  async function importContacts(event) {
    event.preventDefault();
    const result = $("import-result");
    const emails = $("emails").value.split(/[\s,;]+/).filter(Boolean);
    clearError();
    if (emails.length === 0) {
      result.textContent = "Enter at least one e-mail address.";
      result.dataset.ok = "false";
      return;
    }
    result.textContent = "";
    quietly(
      apiAction("Import", async () => {
        let answer;
        try {
          answer = await api("POST", "/contacts/import", { emails: emails });
        } catch (err) {
          result.dataset.ok = "false";
          if (err instanceof ApiError && err.status === 400 && err.body && Array.isArray(err.body.invalid)) {
            result.textContent =
              err.body.error_description +
              ": " +
              err.body.invalid.map((p) => JSON.stringify(p.value) + " " + p.reason).join("; ");
            return;
          }
          result.textContent = "Import failed.";
          throw err;
        }
        result.textContent =
          "Imported " + answer.added + " new, " + answer.duplicates + " already known; " + answer.total + " in total.";
        result.dataset.ok = "true";
        $("emails").value = "";
        await loadContacts();
      })
    );
  }

  function callCoordinate() {
    const out = $("coordinate-result");
    out.textContent = "";
    quietly(
      apiAction("GET /coordinate", async () => {
        out.textContent = JSON.stringify(await api("GET", "/coordinate"), null, 2);
      })
    );
  }

  function startJob() {
    const out = $("wte-result");
    const summary = $("wte-summary");
    out.textContent = "";
    summary.textContent = "";
    quietly(
      apiAction("POST /wte/jobs", async () => {
        const answer = await api("POST", "/wte/jobs", { kind: "sync", payload: { source: "spa" } });
        const job = (answer && answer.job) || {};
        summary.textContent =
          "Job " + job.id + " (" + job.kind + ") queued at " + localTime((job.created_at || 0) * 1000) + ".";
        out.textContent = JSON.stringify(answer, null, 2);
      })
    );
  }

  // --- signing in ------------------------------------------------------------
  async function authorizationEndpoint() {
    if (cfg.authorizeUrl) return cfg.authorizeUrl;
    // OpenID Connect Discovery 1.0 section 4; the issuer must match exactly (4.3).
    const issuer = cfg.issuer.replace(/\/+$/, "");
    let response;
    try {
      response = await fetch(issuer + "/.well-known/openid-configuration", { credentials: "omit" });
    } catch (e) {
      throw new UnreachableError("the identity provider", originOf(issuer));
    }
    if (!response.ok) throw new Error("its discovery document answered HTTP " + response.status);
    const doc = await response.json();
    if (doc.issuer !== cfg.issuer) throw new Error("discovery names issuer " + doc.issuer + ", expected " + cfg.issuer);
    return doc.authorization_endpoint;
  }

  function redirectUri() {
    return location.origin + location.pathname;
  }

  // `extra`: authorization request parameters of a step-up (acr_values,
  // max_age); `then`: what to repeat once signed in again (kept with the
  // pending state: one use only).
  async function signIn(extra, then) {
    clearError();
    // A new sign-in abandons one an outage held up.
    sessionStorage.removeItem(HANDOFF_KEY);
    let endpoint;
    try {
      endpoint = await authorizationEndpoint();
    } catch (err) {
      showError("Cannot find the provider's authorization endpoint: " + err.message + ".", null, signIn);
      return;
    }
    const pending = { state: randomValue(), nonce: randomValue(), redirectUri: redirectUri(), createdAt: Date.now() };
    if (then && typeof then === "object") pending.then = then;
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
    if (extra && typeof extra === "object") {
      ["acr_values", "max_age"].forEach((name) => {
        if (typeof extra[name] === "string") params.set(name, extra[name]);
      });
    }
    state.phase = "redirecting";
    state.notice = null;
    render();
    location.assign(url.toString());
  }

  function signOut() {
    clearError();
    forgetSession();
    $("api-log").textContent = "";
    state.phase = "signed-out";
    state.notice = "You signed out: this tab no longer holds any token.";
    render();
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

  function rejectResponse(message, retry) {
    showError(message, null, retry);
    state.phase = "error";
    render();
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

    const atPayload = unverifiedJwtPayload(accessToken);
    const expiresIn = parseInt(params.get("expires_in") || "", 10);
    let expiresAt = null;
    if (Number.isFinite(expiresIn) && expiresIn > 0) {
      expiresAt = Date.now() + expiresIn * 1000;
    } else if (atPayload && typeof atPayload.exp === "number") {
      expiresAt = atPayload.exp * 1000;
    }
    // Granted scopes: the response's `scope`; RFC 6749 section 4.2.2 lets
    // the provider leave it out when it granted exactly what was requested.
    // Joined with what the API verified after the handoff.
    const scopes = scopesFrom(params.has("scope") ? params.get("scope") : cfg.scope);
    const signedIn = await handoff(
      { accessToken: accessToken, idToken: idToken, expiresAt: expiresAt, scopes: scopes },
      pending.nonce
    );
    // A step-up sign-in: repeat the call that asked for it, once.
    const then = pending.then;
    if (signedIn && then && then.action === "delete" && typeof then.email === "string") {
      $("delete-email").value = then.email;
      await runDelete(then.email, true);
    }
  }

  // The scopes granted to this sign-in: what the API verified in the access
  // token, plus what the provider said it granted (RFC 6749 4.2.2 `scope`),
  // plus the OpenID scopes the verified id_token proves: openid (there is an
  // id_token), profile / email (their claims were released, OIDC Core 5.4).
  // Providers that issue the access token for one API (RFC 8707, RFC 9068)
  // often leave those out of the access token and of `scope`.
  function grantedScopes(answer, fromResponse) {
    const out = Array.isArray(answer.scopes) ? answer.scopes.slice() : [];
    const user = answer.user || {};
    const proven = ["openid"];
    if (user.name || user.preferred_username) proven.push("profile");
    if (user.email) proven.push("email");
    fromResponse.concat(proven).forEach((scope) => {
      if (out.indexOf(scope) < 0) out.push(scope);
    });
    return out;
  }

  // POST /session/handoff: the API verifies the id_token and says who the
  // user is. Until it answered, the tokens stay in memory only, unless an
  // outage holds the handoff up: then they wait in sessionStorage for Retry
  // (HANDOFF_KEY), so that a reload of the tab does not lose the sign-in.
  async function handoff(tokens, nonce) {
    clearError();
    state.phase = "completing";
    render();
    let answer;
    try {
      answer = await api("POST", "/session/handoff", { id_token: tokens.idToken, nonce: nonce }, tokens.accessToken);
    } catch (err) {
      // Outages (API unreachable, identity provider down) can be retried
      // with the same tokens; anything else needs a new sign-in.
      const retryable = err instanceof UnreachableError || (err instanceof ApiError && err.status === 503);
      describeFailure("The id_token handoff", err, retryable ? () => handoff(tokens, nonce) : null);
      if (retryable) savePendingHandoff(tokens, nonce);
      else sessionStorage.removeItem(HANDOFF_KEY);
      state.phase = "error";
      render();
      return false;
    }
    sessionStorage.removeItem(HANDOFF_KEY);
    state.session = {
      accessToken: tokens.accessToken,
      idToken: tokens.idToken,
      expiresAt: tokens.expiresAt,
      scopes: grantedScopes(answer, tokens.scopes),
      answer: answer,
    };
    saveSession();
    state.phase = "signed-in";
    state.notice = null;
    render();
    quietly(apiAction("Loading contacts", loadContacts));
    return true;
  }

  // A reload while a handoff was held up by an outage: the same error and
  // Retry as before the reload (no API call until the user retries). True
  // when the page now shows that (or that the sign-in ran out).
  function resumePendingHandoff() {
    const h = loadPendingHandoff();
    if (!h) return false;
    const expired = h.expiresAt !== null ? Date.now() >= h.expiresAt : Date.now() - h.savedAt > PENDING_MAX_AGE_MS;
    if (expired) {
      endSession("The sign-in was not finished before its access token expired. Sign in again to go on.");
      return true;
    }
    const tokens = { accessToken: h.accessToken, idToken: h.idToken, expiresAt: h.expiresAt, scopes: h.scopes };
    state.phase = "error";
    showError(h.message, null, () => handoff(tokens, h.nonce), h.retryAt);
    render();
    return true;
  }

  // --- start -------------------------------------------------------------------
  function start() {
    if (MISSING.length) {
      state.phase = "error";
      render();
      showError("config.js is missing or lacks " + MISSING.join(", ") + "; see examples/spa/config.js");
      return;
    }
    $("welcome-issuer").textContent = originOf(cfg.issuer);
    $("welcome-api").textContent = originOf(cfg.apiUrl);
    scopesFrom(cfg.scope).forEach((scope) => $("scopes-requested").appendChild(scopeItem(scope)));
    $("signin").addEventListener("click", () => signIn());
    $("signout").addEventListener("click", signOut);
    $("retry").addEventListener("click", () => {
      const retry = failure.retry;
      clearError();
      if (retry) quietly(Promise.resolve().then(retry));
    });
    $("import-form").addEventListener("submit", importContacts);
    $("delete-form").addEventListener("submit", deleteContact);
    $("coordinate").addEventListener("click", callCoordinate);
    $("wte").addEventListener("click", startJob);
    setInterval(tick, 1000);
    const params = takeAuthResponse();
    if (params) {
      // A new sign-in replaces whatever this tab held before.
      forgetSession();
      state.phase = "completing";
      render();
      completeSignIn(params).catch((err) => rejectResponse("Sign-in failed: " + err.message));
      return;
    }
    if (resumePendingHandoff()) return;
    const stored = loadStoredSession();
    if (stored && stored.expiresAt !== null && Date.now() >= stored.expiresAt) {
      endSession("Your last session in this tab expired at " + localTime(stored.expiresAt) + ". Sign in again to go on.");
      return;
    }
    if (stored) {
      // A reload: the tab's session goes on; the API checks the token again.
      state.session = stored;
      state.phase = "signed-in";
      render();
      quietly(apiAction("Loading contacts", loadContacts));
      return;
    }
    state.phase = "signed-out";
    render();
  }

  start();
})();

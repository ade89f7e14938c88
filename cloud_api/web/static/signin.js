/* Sign-in shared by the FieldLine pages (/qa, /fleet, /label, /training): the login form, sign-out, who is signed
 * in, and the switch between the login view and the page.
 *
 * POST /api/v1/auth/session sets the server's HttpOnly session cookie, which every fetch and the WebSocket carry
 * (a one-time /signin/<code> link sets it too). An API without session sign-in (404 there) is signed in with
 * POST /auth/login instead: that token is kept in sessionStorage ("fieldline.token") and pages send it through
 * authHeaders() and wsUrl(). The markup (#login-view, #login-form, #login-user, #login-pass, #login-submit,
 * #login-error; #dashboard, #user-name, #logout) is the server's shared snippet (cloud_api/web/signin.py).
 *
 * A page calls FieldLineSignin.init({ onSignedIn(me), onSignedOut() }) once: onSignedIn runs after every sign-in
 * with the /auth/me answer, onSignedOut when the login view comes back (close sockets, stop timers).
 * FieldLineSignin.show(message, cause) brings the login view back, e.g. on a 401 or WebSocket close 4401.
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const TOKEN_KEY = "fieldline.token";
  const $ = (id) => document.getElementById(id);
  let hooks = { onSignedIn: async () => {}, onSignedOut: () => {} };
  let token = null;
  let me = null;

  function authHeaders() {
    return token ? { Authorization: "Bearer " + token } : {};
  }

  /* The WebSocket address of API path `path`: the cookie signs it in, or the bearer token as ?token=. */
  function wsUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    return `${scheme}//${location.host}${API}${path}${query}`;
  }

  function show(message, cause) {
    document.body.dataset.signedOutBy = cause || "";
    token = null;
    me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    try { hooks.onSignedOut(); } catch (error) { /* the login view comes back whatever the page did */ }
    $("dashboard").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
    $("login-user").focus();
  }

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    const post = (path) => fetch(API + path, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("login-user").value.trim(), password: $("login-pass").value }),
    }).catch(() => null);
    try {
      let response = await post("/auth/session");
      const cookie = !!response && response.status !== 404;
      if (!cookie) response = await post("/auth/login");
      if (!response || !response.ok) {
        $("login-error").textContent = response && response.status === 401 ? "Wrong user name or password."
          : response ? `Login failed (HTTP ${response.status}).` : "Cannot reach the server.";
        return;
      }
      if (!cookie) sessionStorage.setItem(TOKEN_KEY, (await response.json()).access_token);
      $("login-pass").value = "";
      await start();
    } finally {
      $("login-submit").disabled = false;
    }
  }

  async function logout() {
    try {
      await fetch(API + "/auth/logout", { method: "POST", credentials: "same-origin", headers: authHeaders() });
    } catch (error) {
      // signing out locally is enough when the server cannot be reached
    }
    show("");
  }

  /* Who is signed in (GET /auth/me); the page when someone is, else the login view. */
  async function start() {
    token = sessionStorage.getItem(TOKEN_KEY);
    let response;
    try {
      response = await fetch(API + "/auth/me", { credentials: "same-origin", headers: authHeaders() });
    } catch (error) {
      show("Cannot reach the server.");
      return;
    }
    if (!response.ok) {
      show(response.status === 401 ? "" : `Cannot sign in (HTTP ${response.status}).`);
      return;
    }
    me = await response.json();
    $("user-name").textContent = `${me.username} (${me.role})`;
    document.body.classList.toggle("viewer", me.role === "viewer");
    document.body.dataset.user = me.username;
    $("login-view").hidden = true;
    $("dashboard").hidden = false;
    await hooks.onSignedIn(me);
  }

  function init(options) {
    hooks = { ...hooks, ...(options || {}) };
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    return start();
  }

  window.FieldLineSignin = { init, show, start, authHeaders, wsUrl, user: () => me };
})();

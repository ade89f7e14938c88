/* FieldLine fleet pages: devices table, device page, models, rollouts; live over the API's WebSocket.
 *
 * Signs in through the shared sign-in (signin.js): the server's HttpOnly session cookie, which every fetch and
 * the WebSocket carry, or (an API without session sign-in) a bearer token from FieldLineSignin.authHeaders().
 * Pages are hash routes: #fleet, #device/{site}/{device}, #models, #deployments, #deployment/{id}, and
 * #deploy/{sha256}: the rollout form with that model chosen (the training page's "Roll out…" link).
 * Every value from the API is written with textContent (never as HTML).
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const POLL_MS = 5000; // stats have no live message: the open page is re-read this often too
  const LIVE_DEBOUNCE_MS = 400;
  const $ = (id) => document.getElementById(id);
  const state = { signedIn: false, role: "", sort: { key: "site", dir: 1 }, fleet: [], route: ["fleet"], ws: null,
    wsDelay: 1000, timer: null, liveTimer: null, loads: 0, snapshotUrl: null, models: [] };

  class AuthError extends Error {}

  const { el } = window.FieldLineDom;

  // ---------------------------------------------------------------- API and sign-in

  async function call(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: { ...FieldLineSignin.authHeaders(), ...(headers || {}) } };
    if (body !== undefined) {
      init.body = body instanceof Blob || body instanceof ArrayBuffer ? body : JSON.stringify(body);
      if (!(headers && headers["Content-Type"])) init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, init);
    if (response.status === 401) throw new AuthError(`${method} ${path}: session expired`);
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try { const j = await response.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* keep the status */ }
      throw new Error(detail);
    }
    return response;
  }
  const getJson = async (path) => (await call("GET", path)).json();

  /* The shared sign-in (signin.js) brings the login view back; this page closes its socket first. */
  function showLogin(message, cause) {
    FieldLineSignin.show(message, cause);
  }

  function signedOut() {
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    state.signedIn = false;
  }

  async function signedIn(me) {
    state.role = me.role;
    state.signedIn = true;
    connectLive();
    await route();
    if (!state.timer) state.timer = setInterval(() => load(), POLL_MS);
  }

  // ---------------------------------------------------------------- live updates

  function connectLive() {
    const ws = new WebSocket(FieldLineSignin.wsUrl("/ws")); // the session cookie, or the bearer token
    state.ws = ws;
    ws.onopen = () => { state.wsDelay = 1000; setLive(true); };
    ws.onmessage = (message) => {
      const { type } = JSON.parse(message.data);
      if (["device", "alert", "deployment", "count", "inspection"].includes(type)) {
        document.body.dataset.liveMessages = String(Number(document.body.dataset.liveMessages || 0) + 1);
        if (type !== "count" && type !== "inspection") scheduleLoad();
      }
    };
    ws.onclose = (event) => {
      setLive(false);
      if (event.code === 4401) { showLogin("Your session has ended, please sign in again.", "websocket 4401"); return; }
      setTimeout(() => state.signedIn && connectLive(), state.wsDelay);
      state.wsDelay = Math.min(state.wsDelay * 2, 30000);
    };
  }

  function setLive(online) {
    $("live-status").textContent = online ? "● live" : "● offline";
    $("live-status").className = "live-status " + (online ? "online" : "offline");
  }

  function scheduleLoad() {
    if (state.liveTimer) return;
    state.liveTimer = setTimeout(() => { state.liveTimer = null; load(); }, LIVE_DEBOUNCE_MS);
  }

  // ---------------------------------------------------------------- routing

  async function route() {
    const parts = decodeURIComponent(location.hash.slice(1) || "fleet").split("/");
    state.route = parts;
    if (parts[0] === "deploy") state.preselect = parts[1] || null;
    const page = parts[0] === "device" ? "device" : ["deployment", "deploy"].includes(parts[0]) ? "deployments" : parts[0];
    for (const name of ["fleet", "device", "models", "deployments"]) $("page-" + name).hidden = name !== page;
    document.querySelectorAll("nav [data-page]").forEach((a) => a.classList.toggle("active",
      a.dataset.page === page || (page === "device" && a.dataset.page === "fleet")));
    await load();
  }

  async function load() {
    if (!state.signedIn) return;
    try {
      const page = state.route[0];
      if (page === "fleet") await loadFleet();
      else if (page === "device") await loadDevice(state.route[1], state.route[2]);
      else if (page === "models") await loadModels();
      else await loadDeployments(page === "deployment" ? state.route[1] : null);
      state.loads += 1;
      document.body.dataset.loads = String(state.loads);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      if (error instanceof AuthError) { showLogin("Your session has ended, please sign in again.", error.message); return; }
      $("updated").textContent = "update failed: " + error.message;
    }
  }

  // ---------------------------------------------------------------- formatting

  const ago = (ms) => {
    if (!ms) return "–";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  };
  const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
  const short = (sha) => (sha ? sha.slice(0, 12) : "–");
  const badge = (text) => el("span", { class: "state " + text }, text);
  const modelName = (sha) => {
    const m = state.models.find((x) => x.sha256 === sha);
    const c = (state.configs || []).find((x) => x.sha256 === sha);
    return m ? `${m.name} ${m.version}` : c ? `config ${c.name} v${c.version}` : short(sha);
  };

  // ---------------------------------------------------------------- fleet table

  async function loadFleet() {
    state.fleet = await getJson("/fleet");
    renderFleet();
  }

  function renderFleet() {
    const words = $("fleet-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    const text = (d) => [d.site, d.device, d.model, d.version, d.online ? "online" : "offline", d.deployment,
      ...d.tags].join(" ").toLowerCase();
    const { key, dir } = state.sort;
    const value = (d) => (key === "tags" ? d.tags.join(",") : d[key] == null ? "" : d[key]);
    const rows = state.fleet.filter((d) => words.every((w) => text(d).includes(w)))
      .sort((a, b) => (value(a) > value(b) ? dir : value(a) < value(b) ? -dir : 0));
    $("fleet-count").textContent = `${rows.length} of ${state.fleet.length}`;
    const body = $("fleet-table").tBodies[0];
    body.replaceChildren(...rows.map((d) => el("tr", {
      class: "link", "data-key": `${d.site}/${d.device}`,
      onclick: () => { location.hash = `device/${d.site}/${d.device}`; },
    },
    el("td", {}, d.site), el("td", {}, d.device),
    el("td", {}, el("span", { class: "dot " + (d.online ? "on" : "off") }), d.online ? " online" : " " + d.state),
    el("td", {}, d.model || "–"), el("td", { title: d.sha256 || "" }, d.version || "–"),
    el("td", {}, d.fps == null ? "–" : d.fps.toFixed(1)), el("td", {}, d.spool_depth ?? "–"),
    el("td", {}, ago(d.last_seen_ms)), el("td", {}, String(d.open_alerts)),
    el("td", {}, d.tags.map((t) => el("span", { class: "tag" }, t))),
    el("td", {}, d.deployment ? badge(d.deployment) : "–"))));
    document.querySelectorAll("#fleet-table th").forEach((th) => {
      th.classList.toggle("sorted-asc", th.dataset.sort === key && dir === 1);
      th.classList.toggle("sorted-desc", th.dataset.sort === key && dir === -1);
    });
  }

  // ---------------------------------------------------------------- device page

  async function loadDevice(site, device) {
    const base = `/devices/${site}/${device}`;
    const [info, commands, events, alerts] = await Promise.all([
      getJson(base), getJson(base + "/commands?limit=20"),
      getJson(`/events?site=${site}&device=${device}&limit=10`), getJson(`/alerts?site=${site}&limit=50`)]);
    $("device-title").textContent = `${site} / ${device}`;
    const stats = info.stats || {};
    const facts = [["State", info.state], ["Model", info.model ? `${info.model.name} ${info.model.version}` : "–"],
      ["sha256", short(info.model && info.model.sha256)], ["FPS", stats.fps ?? "–"],
      ["Latency p50", stats.latency_ms ? stats.latency_ms.p50 + " ms" : "–"], ["Spool depth", stats.spool_depth ?? "–"],
      ["Dropped", stats.dropped ?? "–"], ["CPU", stats.cpu != null ? stats.cpu + " %" : "–"],
      ["Agent", info.agent_version], ["Last seen", ago(info.last_seen_ms)]];
    $("device-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
    $("device-commands").tBodies[0].replaceChildren(...commands.map((c) => el("tr", {},
      el("td", {}, time(c.created_ms)), el("td", {}, c.name), el("td", {}, badge(c.state)),
      el("td", { title: c.reply ? JSON.stringify(c.reply) : "" },
        c.reply ? (c.reply.error || JSON.stringify(c.reply.result || {})).slice(0, 70) : ""))));
    const mine = alerts.filter((a) => a.device === device);
    const rows = [...mine.map((a) => ({ ts: a.last_ts_ms, what: `alert ${a.code}`, detail: a.message, state: a.state })),
      ...events.map((e) => ({ ts: e.ts_ms, what: e.kind, detail: JSON.stringify(e.counts || e.verdict || {}), state: "" }))]
      .sort((a, b) => b.ts - a.ts).slice(0, 15);
    $("device-events").tBodies[0].replaceChildren(...rows.map((r) => el("tr", {},
      el("td", {}, time(r.ts)), el("td", {}, r.what), el("td", {}, r.detail), el("td", {}, r.state ? badge(r.state) : ""))));
    const snap = commands.find((c) => c.name === "snapshot" && c.state === "ok");
    const id = snap && snap.reply.result.snapshot;
    if (id && $("device-snapshot").dataset.id !== id) {
      try {
        const blob = await (await call("GET", `/snapshots/${id}`)).blob();
        if (state.snapshotUrl) URL.revokeObjectURL(state.snapshotUrl);
        state.snapshotUrl = URL.createObjectURL(blob);
        $("device-snapshot").src = state.snapshotUrl;
        $("device-snapshot").dataset.id = id;
      } catch (error) { /* not stored yet: the next load tries again */ }
    }
  }

  async function sendCommand(name) {
    const [, site, device] = state.route;
    const body = name === "rollback" ? { name: "model", args: { rollback: true } } : { name };
    $("command-result").textContent = `${name}: sending…`;
    try {
      const command = await (await call("POST", `/devices/${site}/${device}/commands`, body)).json();
      for (let i = 0; i < 60; i++) {
        const now = await getJson(`/commands/${command.id}`);
        $("command-result").textContent = `${name}: ${now.state}` + (now.reply && now.reply.error ? ` – ${now.reply.error}` : "");
        if (!["pending", "sent"].includes(now.state)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
    } catch (error) {
      $("command-result").textContent = `${name}: ${error.message}`;
    }
    await load();
  }

  // ---------------------------------------------------------------- models

  async function fetchModels() {
    const groups = await getJson("/models");
    state.models = groups.flatMap((g) => g.versions.flatMap((v) => v.files));
    return groups;
  }

  async function loadModels() {
    const groups = await fetchModels();
    const rows = [];
    for (const g of groups) for (const v of g.versions) for (const f of v.files) {
      rows.push(el("tr", {}, el("td", {}, g.name), el("td", {}, v.version), el("td", { title: f.sha256 }, short(f.sha256)),
        el("td", {}, f.decoder), el("td", {}, f.labels.join(", ")),
        el("td", {}, f.figures && f.figures.map50 != null ? Number(f.figures.map50).toFixed(3) : "–"),
        el("td", {}, (f.size_bytes / 1024).toFixed(0) + " kB"), el("td", {}, `${time(f.uploaded_ms)} by ${f.uploaded_by}`),
        el("td", {}, f.has_card ? el("button", { type: "button", onclick: () => showCard(f.sha256) }, "Card") : "")));
    }
    $("models-table").tBodies[0].replaceChildren(...rows);
    const configs = await getJson("/configs");
    $("configs-table").tBodies[0].replaceChildren(...configs.map((c) => el("tr", { "data-sha": c.sha256 },
      el("td", {}, c.name), el("td", {}, c.version), el("td", { title: c.sha256 }, short(c.sha256)), el("td", {}, c.note || ""),
      el("td", {}, `${time(c.created_ms)} by ${c.created_by}`))));
  }

  async function showCard(sha) {
    const model = await getJson(`/models/${sha}`);
    $("model-card").textContent = model.card || "";
    $("model-card").hidden = !model.card;
  }

  async function upload(event) {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) return;
    const decoder = $("upload-decoder").value;
    $("upload-result").textContent = "uploading…";
    try {
      const result = await (await call("POST", "/models" + (decoder ? `?decoder=${decoder}` : ""), file,
        { "Content-Type": "application/octet-stream" })).json();
      $("upload-result").textContent = (result.created ? "registered " : "already registered ") +
        `${result.model.name} ${result.model.version} (${short(result.model.sha256)})`;
    } catch (error) {
      $("upload-result").textContent = "refused: " + error.message;
    }
    await load();
  }

  /* A config version from the textarea (YAML or JSON as typed; the server parses and checks it with the agent's
   * schema). A refusal shows the server's message as it is: it names each bad field. */
  async function uploadConfig(event) {
    event.preventDefault();
    const result = $("config-result");
    const body = { name: $("config-name").value.trim(), config: $("config-text").value };
    const version = $("config-version").value.trim();
    const note = $("config-note").value.trim();
    if (version) body.version = version;
    if (note) body.note = note;
    result.className = "muted";
    result.textContent = "uploading…";
    try {
      const out = await (await call("POST", "/configs", body)).json();
      result.className = "ok";
      result.textContent = (out.created ? "registered " : "already registered ") +
        `config ${out.config.name} v${out.config.version} (${short(out.config.sha256)})`;
    } catch (error) {
      if (error instanceof AuthError) { showLogin("Your session has ended, please sign in again.", error.message); return; }
      result.className = "refused";
      result.textContent = error.message;
    }
    await load();
  }

  async function readConfigFile() {
    const file = $("config-file").files[0];
    if (!file) return;
    $("config-text").value = await file.text();
    if (!$("config-name").value) $("config-name").value = file.name.replace(/\.(ya?ml|json)$/i, "").replace(/[^A-Za-z0-9_.:-]/g, "-");
  }

  // ---------------------------------------------------------------- deployments

  async function loadDeployments(selected) {
    await fetchModels();
    state.configs = await getJson("/configs");
    const detail = selected ? await getJson(`/deployments/${selected}`) : null;
    // the selected rollout's row from the same read as its detail, so the two never disagree
    const list = (await getJson("/deployments")).map((d) => (detail && d.id === detail.id ? detail : d));
    const select = $("deploy-model");
    if (select.options.length !== state.models.length + state.configs.length) {
      const current = select.value;
      // a config version's value is "config:SHA256": the form sends it as kind config
      select.replaceChildren(...state.models.map((m) => el("option", { value: m.sha256 }, `${m.name} ${m.version} · ${short(m.sha256)}`)),
        ...state.configs.map((c) => el("option", { value: `config:${c.sha256}` }, `config ${c.name} v${c.version} · ${short(c.sha256)}`)));
      if (current) select.value = current;
    }
    if (state.preselect) { // once, from #deploy/{sha256}: later polls keep what the operator chose
      const sha = state.preselect.toLowerCase();
      state.preselect = null;
      if (state.models.some((m) => m.sha256 === sha)) {
        select.value = sha;
        const m = state.models.find((x) => x.sha256 === sha);
        $("deploy-result").textContent = `${m.name} ${m.version} chosen: set the target and start the rollout.`;
        $("deploy-target").focus();
      } else {
        $("deploy-result").textContent = `No registered model ${short(sha)}.`;
      }
    }
    $("deployments-table").tBodies[0].replaceChildren(...list.map((d) => el("tr", {
      class: "link" + (d.id === selected ? " selected" : ""), "data-id": d.id,
      onclick: () => { location.hash = `deployment/${d.id}`; },
    }, el("td", {}, time(d.created_ms)), el("td", {}, modelName(d.sha256)), el("td", {}, JSON.stringify(d.target)),
    el("td", {}, badge(d.state)), el("td", {}, `${Math.min(d.stage + 1, d.stages)} / ${d.stages}`),
    el("td", {}, Object.entries(d.devices_by_state).map(([k, v]) => `${v} ${k}`).join(", ")),
    el("td", {}, d.reason || ""))));
    $("deployment-detail").hidden = !selected;
    if (detail) await renderDeployment(detail);
  }

  function checks(gate) {
    const parts = [];
    if (gate.self_test) parts.push(`self-test ${gate.self_test === "ok" ? "ok" : "failed"}`);
    if (gate.loaded != null) parts.push(gate.loaded ? "loaded" : "not loaded");
    if (gate.fps && gate.fps.pct != null) parts.push(`fps ${gate.fps.pct} %`);
    if (gate.latency && gate.latency.above_pct != null) parts.push(`p95 latency ${gate.latency.above_pct >= 0 ? "+" : ""}${gate.latency.above_pct} %`);
    if (gate.model_errors) parts.push(`${gate.model_errors} model_error`);
    if (gate.counts && gate.counts.jump_pct != null) parts.push(`counts ±${gate.counts.jump_pct} %`);
    if (gate.held_s != null) parts.push(`held ${gate.held_s} s`);
    return parts.join(" · ");
  }

  function bar(pct) {
    const fill = el("div", {});
    fill.style.width = pct + "%"; // CSSOM, not a style attribute: the page's CSP allows no inline styles
    return fill;
  }

  async function renderDeployment(d) {
    $("deployment-title").replaceChildren(`Rollout of ${modelName(d.sha256)} `, badge(d.state));
    $("deployment-reason").textContent = d.reason || "";
    const allowed = { pause: ["running"], resume: ["paused"], abort: ["running", "paused"],
      rollback: ["running", "paused", "succeeded", "aborted", "failed"] };
    document.querySelectorAll("#deployment-detail button[data-action]").forEach((b) => {
      b.disabled = state.role === "viewer" || !allowed[b.dataset.action].includes(d.state);
    });
    const stages = [];
    for (let s = 0; s < d.stages; s++) {
      const rows = d.devices.filter((x) => x.stage === s);
      const healthy = rows.filter((x) => x.state === "healthy").length;
      stages.push(el("div", { class: "stage" + (s === d.stage ? " current" : ""), "data-stage": String(s) },
        el("h3", {}, s === 0 ? "Canary" : `Batch ${s}`, el("span", { class: "muted" }, ` ${healthy}/${rows.length} healthy`)),
        el("div", { class: "progress" }, bar(rows.length ? (100 * healthy) / rows.length : 0)),
        rows.map((x) => el("div", { class: "device-row", "data-device": `${x.site}/${x.device}` },
          el("span", {}, `${x.site}/${x.device}`), el("span", { class: "checks" }, checks(x.gate)),
          el("span", { title: x.reason || "" }, badge(x.state))))));
    }
    $("deployment-stages").replaceChildren(...stages);
    const audit = await getJson(`/audit?target=${d.sha256}&limit=50`);
    const canary = d.devices.filter((x) => x.stage === 0).map((x) => `${x.site}/${x.device}`);
    const deviceAudit = (await Promise.all(canary.map((k) => getJson(`/audit?target=${k}&limit=20`)))).flat()
      .filter((a) => a.action.startsWith("deployment.") && a.detail.deployment_id === d.id);
    const rows = [...audit.filter((a) => !a.detail.deployment_id || a.detail.deployment_id === d.id), ...deviceAudit]
      .sort((a, b) => b.id - a.id);
    $("deployment-audit").tBodies[0].replaceChildren(...rows.map((a) => el("tr", { "data-action": a.action },
      el("td", {}, time(a.ts_ms)), el("td", {}, a.actor), el("td", {}, a.action), el("td", {}, a.target.length > 40 ? short(a.target) : a.target),
      el("td", {}, badge(a.result)), el("td", {}, a.detail.reason || a.detail.error || ""))));
  }

  async function deploy(event) {
    event.preventDefault();
    const kind = $("deploy-target-kind").value;
    const raw = $("deploy-target").value.trim();
    const target = kind === "devices" ? { devices: raw.split(",").map((s) => s.trim()).filter(Boolean) } : { [kind]: raw };
    const [what, sha] = $("deploy-model").value.startsWith("config:") ? ["config", $("deploy-model").value.slice(7)]
      : ["model", $("deploy-model").value];
    const body = { kind: what, sha256: sha, target, canary: Number($("deploy-canary").value),
      batch_size: Number($("deploy-batch").value), min_fps_pct: Number($("deploy-fps").value),
      max_latency_pct: Number($("deploy-latency").value),
      max_count_jump_pct: Number($("deploy-jump").value), hold_s: Number($("deploy-hold").value) };
    const extra = new URLSearchParams(location.search);  // e.g. ?settle_s=3 for short drills
    for (const key of ["settle_s", "stats_grace_s", "command_timeout_s", "min_stats_samples"]) if (extra.get(key)) body[key] = Number(extra.get(key));
    $("deploy-result").textContent = "starting…";
    try {
      const created = await (await call("POST", "/deployments", body)).json();
      $("deploy-result").textContent = `started: ${created.devices.length} devices in ${created.stages} stages`;
      location.hash = `deployment/${created.id}`;
    } catch (error) {
      $("deploy-result").textContent = "refused: " + error.message;
    }
  }

  async function act(action) {
    const id = state.route[1];
    try {
      await call("POST", `/deployments/${id}/${action}`);
      $("deploy-result").textContent = `${action}: done`;
    } catch (error) {
      $("deploy-result").textContent = `${action}: ${error.message}`;
    }
    await load();
  }

  // ---------------------------------------------------------------- wiring

  document.addEventListener("DOMContentLoaded", () => {
    $("fleet-filter").addEventListener("input", renderFleet);
    document.querySelectorAll("#fleet-table th").forEach((th) => th.addEventListener("click", () => {
      state.sort = { key: th.dataset.sort, dir: state.sort.key === th.dataset.sort ? -state.sort.dir : 1 };
      renderFleet();
    }));
    document.querySelectorAll("button[data-command]").forEach((b) => b.addEventListener("click", () => sendCommand(b.dataset.command)));
    document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
    $("upload-form").addEventListener("submit", upload);
    $("config-form").addEventListener("submit", uploadConfig);
    $("config-file").addEventListener("change", readConfigFile);
    $("deploy-form").addEventListener("submit", deploy);
    window.addEventListener("hashchange", route);
    FieldLineSignin.init({ onSignedIn: signedIn, onSignedOut: signedOut });
  });
})();

/* FieldLine training page: start a training job on a dataset, watch it live, cancel it, read the result and
 * roll the registered model out.
 *
 * Signs in through the shared sign-in (signin.js). Reads GET /datasets (frames by status and split),
 * GET /training/base-models (the model in service first) and GET /training/jobs; starts with POST /training/jobs
 * and cancels with POST /training/jobs/{id}/cancel. Progress and state changes arrive on the live WebSocket as
 * {"type": "training", "data": job}. "Roll out…" opens /fleet#deploy/{sha256}: the fleet page's rollout form
 * with the registered file chosen, where the target and health gates are set. The selected job is in the URL
 * hash (#job=ID); for tests, state is mirrored in data-* attributes on <body>.
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const POLL_MS = 15000; // the WebSocket carries every change; this only covers a dropped socket
  const ACTIVE = ["queued", "running", "evaluating"];
  const $ = (id) => document.getElementById(id);
  const state = { role: "", signedIn: false, datasets: [], bases: [], jobs: [], job: null, ws: null, wsDelay: 1000,
    timer: null, live: 0, cards: new Map() };

  class AuthError extends Error {}

  const { el } = window.FieldLineDom;

  // ---------------------------------------------------------------- API

  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { ...FieldLineSignin.authHeaders() } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, init);
    if (response.status === 401) throw new AuthError(`${method} ${path}: session expired`);
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try {
        const j = await response.json();
        detail = typeof j.detail === "string" ? j.detail : (j.detail || []).map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      } catch (e) { /* keep the status */ }
      throw new Error(detail);
    }
    return response;
  }
  const getJson = async (path) => (await call("GET", path)).json();

  function guard(promise) {
    return promise.catch((error) => {
      if (error instanceof AuthError) FieldLineSignin.show("Your session has ended, please sign in again.", error.message);
      else say(error.message, "error");
    });
  }

  function say(text, kind) {
    $("job-message").textContent = text;
    $("job-message").className = "message " + (kind || "");
  }

  // ---------------------------------------------------------------- formatting

  const pad = (n) => String(n).padStart(2, "0");
  const when = (ms) => { if (!ms) return "–"; const d = new Date(ms); return `${d.toLocaleDateString()} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  const map = (v) => (v == null ? "–" : v.toFixed(3));
  const short = (sha) => (sha ? sha.slice(0, 12) : "–");
  const seconds = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);
  const sameLabels = (a, b) => a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");

  function baseName(spec) {
    const b = state.bases.find((c) => c.base_model === spec);
    return b ? `${b.name} ${b.version}` : spec.length === 64 ? short(spec) : spec;
  }

  function percent(job) {
    const p = job.progress || {};
    if (job.state === "done" || job.state === "rejected") return 100;
    if (!p.steps) return 0;
    const train = Math.min(1, (p.step || 0) / p.steps);
    return Math.round(100 * (p.stage === "train" ? 0.85 * train : p.stage === "evaluate" ? 0.9 : p.stage === "register" ? 0.97 : 0));
  }

  function progressText(job) {
    const p = job.progress || {};
    if (job.state === "queued") return "waiting for the runner";
    if (!ACTIVE.includes(job.state)) return job.finished_ms ? `finished ${when(job.finished_ms)}` : "";
    const parts = [p.stage || job.state];
    if (p.steps) parts.push(`step ${p.step || 0} / ${p.steps}`);
    if (p.loss != null) parts.push(`loss ${Number(p.loss).toFixed(3)}`);
    if (p.eta_s != null) parts.push(`about ${seconds(p.eta_s)} left`);
    return parts.join(" · ");
  }

  // ---------------------------------------------------------------- new job form

  function renderDatasets() {
    const select = $("job-dataset");
    const current = select.value || new URLSearchParams(location.hash.slice(1)).get("dataset") || "";
    select.replaceChildren(...state.datasets.map((d) => el("option", { value: d.name },
      `${d.name} · ${(d.by_status.labelled || 0) + (d.by_status.in_training || 0)} labelled`)));
    if (state.datasets.some((d) => d.name === current)) select.value = current;
    renderStats();
  }

  function dataset() {
    return state.datasets.find((d) => d.name === $("job-dataset").value) || null;
  }

  function renderStats() {
    const d = dataset();
    const body = $("dataset-stats").tBodies[0];
    if (!d) { body.replaceChildren(el("tr", {}, el("td", {}, "No dataset yet: frames arrive from the cameras (see /label)."))); return; }
    const cell = (kind, key, value) => el("td", { "data-stat": `${kind}-${key}` }, String(value || 0));
    body.replaceChildren(
      el("tr", {}, el("th", {}, "Status"), ...["new", "labelled", "skipped", "in_training"].map((s) => el("th", {}, s.replace("_", " ")))),
      el("tr", {}, el("td", {}, "frames"), ...["new", "labelled", "skipped", "in_training"].map((s) => cell("status", s, d.by_status[s]))),
      el("tr", {}, el("th", {}, "Split"), ...["train", "val", "test"].map((s) => el("th", {}, s)), el("th", {})),
      el("tr", {}, el("td", {}, "frames"), ...["train", "val", "test"].map((s) => cell("split", s, d.by_split[s])), el("td", {})),
      el("tr", {}, el("td", { class: "labels", colspan: 5 }, "Labels: " + d.labels.join(", "))));
    renderBases();
  }

  /* Base models: those with the dataset's labels first, the one most devices run (in service) preselected. */
  function renderBases() {
    const d = dataset();
    const select = $("job-base");
    const fits = d ? state.bases.filter((b) => sameLabels(b.labels, d.labels)) : state.bases;
    const others = state.bases.filter((b) => !fits.includes(b));
    const option = (b) => el("option", { value: b.base_model, "data-devices": b.devices },
      `${b.name} ${b.version} · ${b.source === "zoo" ? "zoo" : short(b.sha256)}` + (b.devices ? ` · ${b.devices} in service` : ""));
    const previous = select.dataset.dataset === (d && d.name) ? select.value : "";
    select.replaceChildren(...fits.map(option), ...(others.length ? [el("optgroup", { label: "Other labels" }, ...others.map(option))] : []));
    select.dataset.dataset = d ? d.name : "";
    if (previous && state.bases.some((b) => b.base_model === previous)) select.value = previous;
    else if (fits.length) select.value = fits[0].base_model;
    const chosen = state.bases.find((b) => b.base_model === select.value);
    $("base-note").textContent = !chosen ? "No model to start from." : !fits.includes(chosen)
      ? "Its labels differ from the dataset's: the job will fail." : chosen.devices
        ? `In service on ${chosen.devices} device${chosen.devices === 1 ? "" : "s"}.` : "Not running on any device now.";
  }

  async function startJob(event) {
    event.preventDefault();
    if (!dataset()) { say("Choose a dataset first.", "error"); return; }
    $("job-start").disabled = true;
    say("Starting…", "");
    try {
      const number = (id) => Number($(id).value);
      const job = await (await call("POST", "/training/jobs", {
        dataset: $("job-dataset").value, base_model: $("job-base").value, steps: number("job-steps"),
        input_size: number("job-input"), lr: number("job-lr"), replay: number("job-replay"), holdout_count: number("job-holdout"),
        threads: number("job-threads"), quantize: $("job-quantize").checked,
      })).json();
      say(`Job ${job.id} queued.`, "ok");
      upsert(job);
      select(job.id);
    } catch (error) {
      if (error instanceof AuthError) throw error;
      say(`Not started: ${error.message}`, "error");
    } finally {
      $("job-start").disabled = state.role === "viewer";
    }
  }

  // ---------------------------------------------------------------- jobs

  function upsert(job) {
    const i = state.jobs.findIndex((j) => j.id === job.id);
    if (i >= 0) state.jobs[i] = job;
    else state.jobs.unshift(job);
    state.jobs.sort((a, b) => b.created_ms - a.created_ms);
    renderJobs();
    if (state.job === job.id) renderDetail();
  }

  function renderJobs() {
    $("jobs-table").tBodies[0].replaceChildren(...(state.jobs.length ? state.jobs.map((j) => el("tr", {
      class: "link" + (j.id === state.job ? " selected" : ""), "data-id": j.id, onclick: () => select(j.id) },
      el("td", {}, when(j.created_ms)), el("td", {}, j.dataset), el("td", {}, baseName(j.base_model)),
      el("td", {}, String(j.params.steps)), el("td", {}, el("span", { class: `state ${j.state}` }, j.state)),
      el("td", {}, el("div", { class: "progress" }, el("div", { style: null, "data-pct": percent(j) }))),
      el("td", {}, j.created_by))) : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No training job yet."))]));
    // widths through the CSSOM (the page's policy allows no inline style attributes)
    document.querySelectorAll("#jobs-table [data-pct]").forEach((bar) => { bar.style.width = bar.dataset.pct + "%"; });
  }

  function select(id) {
    state.job = id;
    const params = new URLSearchParams(location.hash.slice(1));
    params.set("job", id);
    history.replaceState(null, "", "#" + params.toString());
    renderJobs();
    renderDetail();
  }

  function fact(name, value) {
    return [el("dt", {}, name), el("dd", {}, value)];
  }

  function renderDetail() {
    const job = state.jobs.find((j) => j.id === state.job);
    $("job-detail").hidden = !job;
    const b = document.body.dataset;
    b.job = job ? job.id : "";
    b.jobState = job ? job.state : "";
    if (!job) return;
    const r = job.result || {};
    b.jobStep = String((job.progress || {}).step || 0);
    b.registered = r.registered_sha256 || "";
    $("job-title").textContent = `Job ${job.id}: ${job.dataset} from ${baseName(job.base_model)}`;
    $("job-state").textContent = job.state === "done" ? "registered" : job.state === "rejected" ? "refused" : job.state;
    $("job-state").className = `state ${job.state}`;
    $("job-bar").style.width = percent(job) + "%";
    $("job-progress").textContent = progressText(job);
    const active = ACTIVE.includes(job.state);
    $("job-cancel").hidden = !active;
    $("job-cancel").disabled = state.role === "viewer" || job.cancel_requested;
    $("job-cancel").textContent = job.cancel_requested ? "Cancelling…" : "Cancel job";
    const reason = $("job-reason");
    reason.className = "reason " + (job.state === "done" ? "good" : "");
    reason.textContent = job.state === "done" ? `Registered ${r.version || ""}: ${r.reason}`
      : job.state === "rejected" ? `Not registered: ${r.reason}`
        : job.state === "failed" || job.state === "cancelled" ? `${job.state}: ${job.error || ""}` : "";
    renderResult(job);
    const facts = [];
    const data = r.data || {};
    if (data.frames_by_split) facts.push(...fact("Frames", Object.entries(data.frames_by_split).map(([k, v]) => `${k} ${v}`).join(", ")));
    if (data.replay) facts.push(...fact("Replay", `${data.replay.frames} fresh ${data.replay.source} frames`));
    if (r.holdout_data) facts.push(...fact("Original holdout", r.holdout_data));
    if (r.train) facts.push(...fact("Training", `${r.train.steps} steps in ${seconds(r.train.train_s)}`));
    if (r.registered_sha256) {
      facts.push(...fact(job.params.quantize ? "INT8 file" : "File", r.registered_sha256));
      if (r.registered_fp32_sha256 && r.registered_fp32_sha256 !== r.registered_sha256) facts.push(...fact("FP32 file", r.registered_fp32_sha256));
    }
    facts.push(...fact("Started by", `${job.created_by}, ${when(job.created_ms)}`));
    $("job-facts").replaceChildren(...facts);
    const rollout = $("job-rollout");
    rollout.hidden = job.state !== "done" || !r.registered_sha256;
    rollout.href = `/fleet#deploy/${r.registered_sha256 || ""}`;
    showCard(job.state === "done" ? r.registered_sha256 : null);
  }

  function renderResult(job) {
    const r = job.result || {};
    const rows = [["test", `${job.dataset} test split`], ["holdout", "original holdout"]]
      .filter(([key]) => r.old && (r.old[key] != null || (r.new && r.new[key] != null)));
    $("job-result").hidden = !rows.length;
    $("job-result").tBodies[0].replaceChildren(...rows.map(([key, name]) => {
      const before = r.old[key], after = r.new ? r.new[key] : null;
      const delta = before != null && after != null ? after - before : null;
      return el("tr", { "data-row": key }, el("td", {}, name), el("td", { "data-old": key }, map(before)),
        el("td", { "data-new": key }, map(after)),
        el("td", { class: delta == null ? "" : delta >= 0 ? "up" : "down" }, delta == null ? "–" : `${delta >= 0 ? "+" : ""}${(delta * 100).toFixed(1)} pts`));
    }));
  }

  async function showCard(sha) {
    $("job-card").hidden = !sha;
    $("job-card-title").hidden = !sha;
    if (!sha) return;
    if (!state.cards.has(sha)) state.cards.set(sha, getJson(`/models/${sha}`).then((m) => m.card || "(no card)").catch(() => null));
    const card = await state.cards.get(sha);
    if (card == null) state.cards.delete(sha);
    if (state.job && (state.jobs.find((j) => j.id === state.job) || {}).result?.registered_sha256 === sha) $("job-card").textContent = card || "";
  }

  async function cancelJob() {
    if (!state.job) return;
    try {
      upsert(await (await call("POST", `/training/jobs/${state.job}/cancel`)).json());
    } catch (error) {
      if (error instanceof AuthError) throw error;
      $("job-reason").textContent = `Cancel: ${error.message}`;
    }
  }

  // ---------------------------------------------------------------- loading and live updates

  async function load() {
    if (!state.signedIn) return;
    const [datasets, bases, jobs] = await Promise.all([getJson("/datasets"), getJson("/training/base-models"),
      getJson("/training/jobs?limit=50")]);
    state.datasets = datasets;
    state.bases = bases;
    state.jobs = jobs;
    renderDatasets();
    const wanted = new URLSearchParams(location.hash.slice(1)).get("job");
    if (!state.job && wanted && jobs.some((j) => j.id === wanted)) state.job = wanted;
    renderJobs();
    renderDetail();
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  }

  function connectLive() {
    const ws = new WebSocket(FieldLineSignin.wsUrl("/ws"));
    state.ws = ws;
    ws.onopen = () => { state.wsDelay = 1000; setLive(true); };
    ws.onmessage = (message) => {
      const { type, data } = JSON.parse(message.data);
      if (type !== "training" || !data) return;
      state.live += 1;
      document.body.dataset.liveMessages = String(state.live);
      const { job: _, ...job } = data; // the hub's "job" key is the id again
      upsert(job);
      if (!ACTIVE.includes(job.state)) guard(refreshDatasets()); // frames went in_training, a model was registered
    };
    ws.onclose = (event) => {
      setLive(false);
      if (state.ws !== ws) return;
      state.ws = null;
      if (event.code === 4401) { FieldLineSignin.show("Your session has ended, please sign in again.", "websocket 4401"); return; }
      setTimeout(() => { if (state.signedIn && !state.ws) connectLive(); }, state.wsDelay);
      state.wsDelay = Math.min(state.wsDelay * 2, 30000);
    };
  }

  async function refreshDatasets() {
    [state.datasets, state.bases] = await Promise.all([getJson("/datasets"), getJson("/training/base-models")]);
    renderDatasets();
  }

  function setLive(online) {
    $("live-status").textContent = online ? "● live" : "● offline";
    $("live-status").className = "live-status " + (online ? "online" : "offline");
  }

  async function signedIn(me) {
    state.role = me.role;
    state.signedIn = true;
    const viewer = me.role === "viewer";
    $("job-start").disabled = viewer;
    if (viewer) say("You can watch jobs; starting one needs an operator.", "warn");
    connectLive();
    await guard(load());
    if (!state.timer) state.timer = setInterval(() => guard(load()), POLL_MS);
    document.body.dataset.ready = "yes";
  }

  function signedOut() {
    state.signedIn = false;
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    setLive(false);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("job-form").addEventListener("submit", (e) => guard(startJob(e)));
    $("job-dataset").addEventListener("change", renderStats);
    $("job-base").addEventListener("change", renderBases);
    $("job-cancel").addEventListener("click", () => guard(cancelJob()));
    FieldLineSignin.init({ onSignedIn: signedIn, onSignedOut: signedOut });
  });
})();

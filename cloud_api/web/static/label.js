/* FieldLine labelling page: pick a dataset, get a frame leased to you, fix the model's boxes, save.
 *
 * Signs in through the shared sign-in (signin.js: the HttpOnly session cookie every fetch carries).
 * Frames come from POST /datasets/{name}/next, which leases each frame to one operator for a few minutes, so
 * two people labelling the same dataset never get the same frame; while the frame is open and the tab visible the
 * page renews the lease (POST .../frames/{id}/lease every 2 minutes and when the tab comes back) and says so
 * plainly when it was lost to someone else. Saves send the frame's version: when someone
 * saved first the API answers 409, the page says so and shows their boxes. The editor draws on a Konva stage
 * (vendored, MIT): boxes are kept normalised (0..1, x1 y1 x2 y2) and mapped onto the letterboxed picture.
 * The state is in the URL hash (#dataset=NAME&frame=ID) and, for tests, in data-* attributes on <body>.
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const COLOURS = ["#f87171", "#fbbf24", "#4ade80", "#60a5fa", "#f472b6", "#a78bfa", "#2dd4bf", "#fb923c", "#e5ecf6"];
  const MIN_PX = 6; // a drag shorter than this is a click (deselect), not a box
  const STATS_DEBOUNCE_MS = 500;
  const LEASE_RENEW_MS = 2 * 60 * 1000; // the API leases for 5 minutes; renewing at 2 survives one missed beat
  const $ = (id) => document.getElementById(id);
  const state = {
    user: "", role: "", datasets: [], dataset: null, cls: 0, frame: null, boxes: [], selected: -1, image: null,
    area: null, busy: false, ws: null, statsTimer: null, saves: 0, conflicts: 0, renewals: 0, leaseTimer: null,
  };
  const konva = { rects: [], stage: null, layer: null, picture: null, boxes: null, transformer: null, drawing: null };

  class AuthError extends Error {}

  // ---------------------------------------------------------------- API and sign-in

  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, init);
    if (response.status === 401) throw new AuthError(`${method} ${path}: session expired`);
    return response;
  }

  async function detail(response) {
    try {
      const body = await response.json();
      return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (error) {
      return `HTTP ${response.status}`;
    }
  }

  async function getJson(path) {
    const response = await call("GET", path);
    if (!response.ok) throw new Error(`${path}: ${await detail(response)}`);
    return response.json();
  }

  /* The shared sign-in (signin.js) brings the login view back; this page closes its socket first. */
  function showLogin(message) {
    FieldLineSignin.show(message);
  }

  function signedOut() {
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  }

  function guard(promise) {
    return promise.catch((error) => {
      if (error instanceof AuthError) showLogin("Your session has ended, please sign in again.");
      else say(error.message, "error");
    });
  }

  // ---------------------------------------------------------------- small helpers

  const pad = (n) => String(n).padStart(2, "0");
  const clock = (ms) => { const d = new Date(ms); return `${pad(d.getHours())}:${pad(d.getMinutes())}`; };
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const round4 = (v) => Math.round(v * 1e4) / 1e4;

  function say(text, kind) {
    $("message").textContent = text;
    $("message").className = "message " + (kind || "");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function labels() { return state.dataset ? state.dataset.labels : []; }
  function classIndex(label) { const i = labels().indexOf(label); return i < 0 ? COLOURS.length - 1 : i % COLOURS.length; }
  function colour(label) { return COLOURS[classIndex(label)]; }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.dataset) params.set("dataset", state.dataset.name);
    if (state.frame) params.set("frame", state.frame.id);
    history.replaceState(null, "", "#" + params.toString());
  }

  function mark() { // what the tests (and a curious operator's devtools) read
    const b = document.body.dataset;
    b.frame = state.frame ? state.frame.id : "";
    b.version = state.frame ? String(state.frame.version) : "";
    b.boxes = String(state.boxes.length);
    b.selected = String(state.selected);
    b.saves = String(state.saves);
    b.conflicts = String(state.conflicts);
    b.renewals = String(state.renewals);
    b.cls = labels()[state.cls] || "";
    const a = state.area;
    $("stage").dataset.area = a ? [a.x, a.y, a.w, a.h].map((v) => v.toFixed(1)).join(",") : "";
  }

  // ---------------------------------------------------------------- datasets and stats

  async function loadDatasets() {
    state.datasets = await getJson("/datasets");
    const list = $("datasets");
    list.textContent = "";
    if (!state.datasets.length) list.append(el("p", "empty", "No datasets yet: devices create them when they send frames."));
    for (const ds of state.datasets) {
      const button = el("button", "dataset");
      button.type = "button";
      button.dataset.name = ds.name;
      button.setAttribute("role", "listitem");
      const s = ds.by_status || {};
      button.append(el("span", "name", ds.name),
        el("span", "counts", `${ds.frames} frame${ds.frames === 1 ? "" : "s"} · ${s.new || 0} new · ${s.labelled || 0} labelled`));
      button.classList.toggle("selected", !!state.dataset && state.dataset.name === ds.name);
      button.addEventListener("click", () => guard(selectDataset(ds.name, null)));
      list.append(button);
    }
    const current = state.dataset && state.datasets.find((d) => d.name === state.dataset.name);
    if (current) { state.dataset = current; renderStats(); }
  }

  function renderStats() {
    const ds = state.dataset;
    $("stats-name").textContent = ds ? ds.name : "";
    const facts = $("stats");
    facts.textContent = "";
    if (!ds) return;
    const s = ds.by_status || {};
    const split = ds.by_split || {};
    const rows = [["Frames", ds.frames], ["New", s.new || 0], ["Labelled", s.labelled || 0], ["Skipped", s.skipped || 0],
      ["In training", s.in_training || 0], ["Train / val / test", `${split.train || 0} / ${split.val || 0} / ${split.test || 0}`],
      ["Classes", ds.labels.join(", ") || "none"]];
    for (const [name, value] of rows) {
      const dd = el("dd", null, String(value));
      dd.dataset.stat = name.toLowerCase().replace(/[^a-z]+/g, "_");
      facts.append(el("dt", null, name), dd);
    }
  }

  function scheduleStats() {
    if (state.statsTimer) return;
    state.statsTimer = setTimeout(() => { state.statsTimer = null; guard(loadDatasets()); }, STATS_DEBOUNCE_MS);
  }

  async function selectDataset(name, frameId) {
    const ds = state.datasets.find((d) => d.name === name);
    if (!ds) { say(`No dataset named ${name}.`, "error"); return; }
    state.dataset = ds;
    state.cls = 0;
    for (const button of document.querySelectorAll(".dataset")) button.classList.toggle("selected", button.dataset.name === name);
    renderStats();
    renderClasses();
    say("", "");
    if (frameId) await openFrame(frameId);
    else await nextFrame(null);
  }

  function renderClasses() {
    const box = $("classes");
    box.textContent = "";
    labels().forEach((label, i) => {
      const button = el("button", "class-button");
      button.type = "button";
      button.dataset.label = label;
      button.classList.toggle("active", i === state.cls);
      const swatch = el("span", `swatch c${i % COLOURS.length}`);
      button.append(swatch, i < 9 ? el("kbd", null, String(i + 1)) : "", label);
      button.addEventListener("click", (e) => { e.currentTarget.blur(); chooseClass(i); });
      box.append(button);
    });
  }

  // ---------------------------------------------------------------- frames

  async function nextFrame(after) {
    if (!state.dataset || state.busy) return;
    state.busy = true;
    try {
      const response = await call("POST", `/datasets/${encodeURIComponent(state.dataset.name)}/next`, after ? { after } : {});
      if (response.status === 204) {
        showFrame(null, null);
        say(`Nothing left to label in ${state.dataset.name}: every frame is labelled, skipped or held by someone else.`,
          state.saves ? "ok" : "warn");
        return;
      }
      if (response.status === 403) {
        showFrame(null, null);
        say(`Your role (${state.role}) can see the datasets but not label them: an operator or admin can.`, "warn");
        return;
      }
      if (!response.ok) throw new Error(`next frame: ${await detail(response)}`);
      let frame = await response.json();
      if (frame.version === undefined) frame = await getJson(framePath(frame.id));
      await loadFrame(frame);
    } finally {
      state.busy = false;
      mark();
    }
  }

  async function openFrame(id) {
    await loadFrame(await getJson(framePath(id)));
  }

  function framePath(id) {
    return `/datasets/${encodeURIComponent(state.dataset.name)}/frames/${encodeURIComponent(id)}`;
  }

  async function loadFrame(frame) {
    const response = await call("GET", framePath(frame.id) + "/image");
    const image = response.ok ? await createImageBitmap(await response.blob()) : null;
    showFrame(frame, image);
  }

  function showFrame(frame, image) {
    state.frame = frame;
    state.image = image;
    document.body.dataset.lease = frame && frame.lease && frame.lease.user === state.user ? "held" : "";
    state.selected = -1;
    const source = frame ? (frame.labels || frame.predictions || []) : [];
    const origin = frame && frame.labels ? "saved" : "model";
    state.boxes = source.map((b) => ({ label: b.label, box: b.box.slice(0, 4), score: frame.labels ? null : b.score, origin }));
    $("frame-title").textContent = frame ? `Frame ${frame.id}` : "No frame";
    renderLease();
    renderFacts();
    writeHash();
    layout();
    render();
    $("stage").focus();
  }

  function renderLease() {
    const lease = $("lease");
    const frame = state.frame;
    lease.className = "lease";
    if (!frame) { lease.textContent = ""; return; }
    if (frame.lease && frame.lease.until_ms > Date.now()) {
      const mine = frame.lease.user === state.user;
      lease.classList.add(mine ? "mine" : "other");
      lease.textContent = `${mine ? "held by you" : "held by " + frame.lease.user} until ${clock(frame.lease.until_ms)}`;
    } else if (document.body.dataset.lease === "lost") {
      lease.classList.add("other");
      lease.textContent = "lease lost";
    } else {
      lease.textContent = frame.status === "new" ? "not held" : `${frame.status}` + (frame.labelled_by ? ` by ${frame.labelled_by}` : "");
    }
    lease.dataset.user = frame.lease ? frame.lease.user : "";
  }

  /* Renew the lease on the open frame when it is ours and still new; a 409 means someone else has it now. */
  async function renewLease() {
    const frame = state.frame;
    if (!frame || document.hidden || frame.status !== "new" || !frame.lease || frame.lease.user !== state.user) return;
    const response = await call("POST", framePath(frame.id) + "/lease");
    if (state.frame !== frame) return; // moved on meanwhile
    if (response.ok) {
      frame.lease = (await response.json()).lease;
      state.renewals += 1;
      document.body.dataset.lease = "held";
    } else {
      const why = await detail(response);
      frame.lease = null;
      document.body.dataset.lease = "lost";
      say(`Your lease on frame ${frame.id} was lost (${why}). Someone else may be labelling it: ` +
        "go to the next frame; an accept now is refused if they save first.", "error");
    }
    renderLease();
    mark();
  }

  function onVisibility() {
    if (!document.hidden && !$("dashboard").hidden) guard(renewLease());
  }

  function renderFacts() {
    const facts = $("frame-facts");
    facts.textContent = "";
    const f = state.frame;
    if (!f) return;
    const s = f.source || {};
    const zone = s.zone ? [s.zone.kind, s.zone.id, s.zone.row].filter((v) => v != null && v !== "").join(" ") : "";
    const model = s.model ? `${s.model.name || ""} ${s.model.version || ""}`.trim() : "";
    const rows = [["Reason", f.reason], ["Status", f.status], ["Split", f.split], ["Site", s.site], ["Device", s.device],
      ["Camera", s.camera], ["Zone", zone], ["Taken", s.ts_ms ? new Date(s.ts_ms).toLocaleString() : ""], ["Model", model],
      ["Size", f.width && f.height ? `${f.width} × ${f.height}` : ""], ["Version", f.version],
      ["Labelled by", f.labelled_by ? `${f.labelled_by} ${f.labelled_at_ms ? clock(f.labelled_at_ms) : ""}` : ""]];
    for (const [name, value] of rows) {
      if (value === "" || value == null) continue;
      facts.append(el("dt", null, name), el("dd", null, String(value)));
    }
  }

  async function save(status) {
    if (!state.frame || state.busy) return;
    state.busy = true;
    const frame = state.frame;
    const boxes = status === "skipped" ? [] : state.boxes.map((b) => ({ label: b.label, box: b.box }));
    let moveOn = false;
    try {
      const response = await call("PUT", framePath(frame.id) + "/labels", { labels: boxes, status, version: frame.version });
      if (response.status === 409) {
        state.conflicts += 1;
        const theirs = await getJson(framePath(frame.id));
        await loadFrame(theirs);
        say(`Someone else saved frame ${frame.id} first` + (theirs.labelled_by ? ` (${theirs.labelled_by})` : "") +
          ": your changes were not saved. Their boxes are shown now; fix them and accept again, or go to the next frame.", "warn");
        return;
      }
      if (response.status === 403) { say(`Your role (${state.role}) cannot label frames: an operator or admin can.`, "error"); return; }
      if (!response.ok) { say(`Not saved: ${await detail(response)}`, "error"); return; }
      state.saves += 1;
      say(status === "skipped" ? `Skipped frame ${frame.id}.` : `Saved frame ${frame.id}: ${boxes.length} box${boxes.length === 1 ? "" : "es"}.`, "ok");
      moveOn = true;
    } finally {
      state.busy = false;
      mark();
    }
    if (moveOn) {
      scheduleStats();
      await nextFrame(frame.id);
    }
  }

  // ---------------------------------------------------------------- the editor (Konva stage)

  function setupStage() {
    const container = $("stage");
    konva.stage = new Konva.Stage({ container, width: container.clientWidth || 800, height: container.clientHeight || 600 });
    konva.layer = new Konva.Layer();
    konva.picture = new Konva.Group({ listening: true });
    konva.boxes = new Konva.Group();
    konva.transformer = new Konva.Transformer({
      rotateEnabled: false, keepRatio: false, flipEnabled: false, ignoreStroke: true, anchorSize: 11,
      borderStroke: "#e5ecf6", anchorStroke: "#e5ecf6", anchorFill: "#0b1220", anchorCornerRadius: 2,
      boundBoxFunc: (oldBox, newBox) => (fits(newBox) ? newBox : oldBox),
    });
    konva.layer.add(konva.picture, konva.boxes, konva.transformer);
    konva.stage.add(konva.layer);
    konva.stage.on("mousedown touchstart", startDrawing);
    konva.stage.on("mousemove touchmove", moveDrawing);
    window.addEventListener("mouseup", endDrawing);
    window.addEventListener("touchend", endDrawing);
    let timer = null;
    window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(() => { layout(); render(); }, 120); });
  }

  function fits(b) {
    const a = state.area;
    const slack = 1;
    return a && b.width >= MIN_PX && b.height >= MIN_PX && b.x >= a.x - slack && b.y >= a.y - slack &&
      b.x + b.width <= a.x + a.w + slack && b.y + b.height <= a.y + a.h + slack;
  }

  /* Fit the picture into the stage (letterboxed) and remember where it went. */
  function layout() {
    if (!konva.stage) return;
    const container = $("stage");
    konva.stage.size({ width: container.clientWidth, height: container.clientHeight });
    konva.picture.destroyChildren();
    const W = konva.stage.width();
    const H = konva.stage.height();
    konva.picture.add(new Konva.Rect({ x: 0, y: 0, width: W, height: H, fill: "#0a0f1a" }));
    if (!state.frame) { state.area = null; return; }
    const iw = state.image ? state.image.width : state.frame.width || 4;
    const ih = state.image ? state.image.height : state.frame.height || 3;
    const scale = Math.min((W - 20) / iw, (H - 20) / ih);
    const area = { w: iw * scale, h: ih * scale };
    area.x = Math.round((W - area.w) / 2);
    area.y = Math.round((H - area.h) / 2);
    state.area = area;
    if (state.image) konva.picture.add(new Konva.Image({ image: state.image, x: area.x, y: area.y, width: area.w, height: area.h }));
    else konva.picture.add(new Konva.Text({ x: area.x, y: area.y + area.h / 2 - 12, width: area.w, align: "center",
      text: "picture not available", fontSize: 20, fill: "#5b6b86" }));
  }

  function toPixels(box) {
    const a = state.area;
    return { x: a.x + box[0] * a.w, y: a.y + box[1] * a.h, width: (box[2] - box[0]) * a.w, height: (box[3] - box[1]) * a.h };
  }

  function toBox(r) {
    const a = state.area;
    const x1 = clamp((r.x - a.x) / a.w, 0, 1);
    const y1 = clamp((r.y - a.y) / a.h, 0, 1);
    const x2 = clamp((r.x + r.width - a.x) / a.w, 0, 1);
    const y2 = clamp((r.y + r.height - a.y) / a.h, 0, 1);
    return [round4(x1), round4(y1), round4(x2), round4(y2)];
  }

  function render() {
    if (!konva.stage) return;
    konva.boxes.destroyChildren();
    konva.rects = [];
    if (state.area) {
      state.boxes.forEach((b, i) => {
        const c = colour(b.label);
        const rect = new Konva.Rect({ ...toPixels(b.box), stroke: c, strokeWidth: i === state.selected ? 3 : 2,
          fill: c + (i === state.selected ? "33" : "14"), draggable: true, name: "box", strokeScaleEnabled: false });
        rect.setAttr("index", i);
        const tag = new Konva.Label({ listening: false });
        tag.add(new Konva.Tag({ fill: c, cornerRadius: 2 }));
        tag.add(new Konva.Text({ text: b.score != null ? `${b.label} ${Math.round(b.score * 100)}%` : b.label,
          fontSize: 13, fontStyle: "bold", padding: 3, fill: "#0b1220" }));
        const place = () => tag.position({ x: rect.x(), y: rect.y() - 20 < 0 ? rect.y() : rect.y() - 20 });
        place();
        rect.on("mousedown touchstart", () => { if (state.selected !== i) select(i); });
        rect.dragBoundFunc((pos) => {
          const a = state.area;
          const w = rect.width() * rect.scaleX();
          const h = rect.height() * rect.scaleY();
          return { x: clamp(pos.x, a.x, a.x + a.w - w), y: clamp(pos.y, a.y, a.y + a.h - h) };
        });
        rect.on("dragmove transform", place);
        rect.on("dragend transformend", () => commit(i, rect));
        rect.on("mouseenter", () => { konva.stage.container().style.cursor = "move"; });
        rect.on("mouseleave", () => { konva.stage.container().style.cursor = ""; });
        konva.boxes.add(rect, tag);
        konva.rects.push(rect);
      });
    }
    select(state.selected);
  }

  function commit(i, rect) {
    const r = { x: rect.x(), y: rect.y(), width: rect.width() * rect.scaleX(), height: rect.height() * rect.scaleY() };
    const b = state.boxes[i];
    b.box = toBox(r);
    b.score = null; // an edited box is the operator's, no longer the model's guess
    b.origin = "yours";
    state.selected = i;
    render();
  }

  /* Selection restyles the existing shapes (never rebuilds them: a drag may be starting on one). */
  function select(i) {
    state.selected = i;
    konva.rects.forEach((rect, j) => {
      const c = colour(state.boxes[j].label);
      rect.strokeWidth(j === i ? 3 : 2);
      rect.fill(c + (j === i ? "33" : "14"));
    });
    konva.transformer.nodes(i >= 0 && konva.rects[i] ? [konva.rects[i]] : []);
    konva.transformer.moveToTop();
    konva.layer.batchDraw();
    renderBoxList();
    mark();
  }

  function startDrawing(event) {
    if (!state.area || !state.frame) return;
    const target = event.target;
    if (target.name() === "box" || target.getParent() === konva.transformer || target.getParent()?.getParent?.() === konva.transformer) return;
    const p = konva.stage.getPointerPosition();
    const a = state.area;
    if (!p || p.x < a.x || p.y < a.y || p.x > a.x + a.w || p.y > a.y + a.h) { select(-1); return; }
    if (!labels().length) { say("This dataset has no classes to draw.", "error"); return; }
    const c = COLOURS[state.cls % COLOURS.length];
    konva.drawing = { x0: p.x, y0: p.y, rect: new Konva.Rect({ x: p.x, y: p.y, width: 0, height: 0, stroke: c,
      strokeWidth: 2, dash: [6, 4], listening: false }) };
    konva.boxes.add(konva.drawing.rect);
    konva.transformer.nodes([]);
    konva.layer.batchDraw();
  }

  function moveDrawing() {
    const d = konva.drawing;
    if (!d) return;
    const p = konva.stage.getPointerPosition();
    if (!p) return;
    const a = state.area;
    const x = clamp(p.x, a.x, a.x + a.w);
    const y = clamp(p.y, a.y, a.y + a.h);
    d.rect.setAttrs({ x: Math.min(d.x0, x), y: Math.min(d.y0, y), width: Math.abs(x - d.x0), height: Math.abs(y - d.y0) });
    konva.layer.batchDraw();
  }

  function endDrawing() {
    const d = konva.drawing;
    if (!d) return;
    konva.drawing = null;
    const r = { x: d.rect.x(), y: d.rect.y(), width: d.rect.width(), height: d.rect.height() };
    d.rect.destroy();
    if (r.width < MIN_PX || r.height < MIN_PX) { state.selected = -1; render(); return; }
    state.boxes.push({ label: labels()[state.cls], box: toBox(r), score: null, origin: "yours" });
    state.selected = state.boxes.length - 1;
    render();
  }

  function chooseClass(i) {
    if (i >= labels().length) return;
    state.cls = i;
    for (const button of document.querySelectorAll(".class-button")) button.classList.toggle("active", button.dataset.label === labels()[i]);
    const b = state.boxes[state.selected];
    if (b && b.label !== labels()[i]) { b.label = labels()[i]; b.score = null; b.origin = "yours"; }
    render();
  }

  function deleteSelected() {
    if (state.selected < 0) return;
    state.boxes.splice(state.selected, 1);
    state.selected = -1;
    render();
  }

  function renderBoxList() {
    const list = $("box-list");
    list.textContent = "";
    $("box-count").textContent = state.frame ? `(${state.boxes.length})` : "";
    state.boxes.forEach((b, i) => {
      const item = el("li", i === state.selected ? "selected" : "");
      item.dataset.index = String(i);
      item.dataset.label = b.label;
      item.dataset.box = b.box.join(",");
      item.append(el("span", `swatch c${classIndex(b.label)}`), el("span", null, b.label),
        el("span", "score", b.score != null ? `model ${Math.round(b.score * 100)}%` : b.origin === "saved" ? "saved" : "yours"));
      item.addEventListener("click", () => select(i));
      list.append(item);
    });
    if (state.frame && !state.boxes.length) list.append(el("li", "empty", "No boxes: drag on the picture to add one."));
  }

  // ---------------------------------------------------------------- keyboard

  function onKey(event) {
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || $("dashboard").hidden) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    let handled = true;
    if (/^[1-9]$/.test(key)) chooseClass(Number(key) - 1);
    else if (key === "Delete" || key === "Backspace") deleteSelected();
    else if (key === "Enter" || key === "a" || key === "A") guard(save("labelled"));
    else if (key === "s" || key === "S") guard(save("skipped"));
    else if (key === "n" || key === "N" || key === "ArrowRight") guard(nextFrame(state.frame ? state.frame.id : null));
    else if (key === "Escape") select(-1);
    else handled = false;
    if (handled) event.preventDefault();
  }

  // ---------------------------------------------------------------- live updates (dataset stats)

  function connectLive() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${API}/ws`); // the session cookie signs it in
    state.ws = ws;
    ws.onmessage = (message) => {
      let body;
      try { body = JSON.parse(message.data); } catch (error) { return; }
      if (body.type === "dataset") scheduleStats();
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (event.code === 4401) { showLogin("Your session has ended, please sign in again."); return; }
      setTimeout(() => { if (!state.ws && !$("dashboard").hidden) connectLive(); }, 5000);
    };
  }

  /* A link or bookmark to another frame (#dataset=NAME&frame=ID) while the page is open. */
  function onHashChange() {
    if ($("dashboard").hidden) return;
    const params = new URLSearchParams(location.hash.slice(1));
    const name = params.get("dataset");
    const frame = params.get("frame");
    if (!name || (state.dataset && state.dataset.name === name && (!frame || (state.frame && state.frame.id === frame)))) return;
    guard(selectDataset(name, frame));
  }

  // ---------------------------------------------------------------- start

  async function signedIn(me) {
    state.user = me.username;
    state.role = me.role;
    if (!konva.stage) setupStage();
    connectLive();
    if (!state.leaseTimer) state.leaseTimer = setInterval(() => guard(renewLease()), LEASE_RENEW_MS);
    await guard((async () => {
      await loadDatasets();
      const params = new URLSearchParams(location.hash.slice(1));
      const wanted = params.get("dataset") || (state.datasets[0] && state.datasets[0].name);
      if (wanted) await selectDataset(wanted, params.get("frame"));
      else { layout(); render(); }
    })());
    document.body.dataset.ready = "yes";
  }

  function init() {
    const click = (id, action) => $(id).addEventListener("click", (e) => { e.currentTarget.blur(); guard(action()); });
    click("btn-accept", () => save("labelled"));
    click("btn-skip", () => save("skipped"));
    click("btn-next", () => nextFrame(state.frame ? state.frame.id : null));
    click("btn-delete", async () => deleteSelected());
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", onHashChange);
    document.addEventListener("visibilitychange", onVisibility);
    FieldLineSignin.init({ onSignedIn: signedIn, onSignedOut: signedOut });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

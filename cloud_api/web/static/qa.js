/* FieldLine QA dashboard: login, data loading from /api/v1, rendering, live updates over the WebSocket.
 *
 * Signed in by the shared sign-in (signin.js: the server's HttpOnly session cookie, or a one-time /signin/<code>
 * link for kiosks): every fetch and the WebSocket carry the cookie.
 * Selection (line, window) is kept in the URL hash, e.g. /qa#line=line-1&window=24h, so a wall screen can be
 * bookmarked.
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const WINDOWS = { "1h": 3600e3, "8h": 8 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3 };
  const REFRESH_MS = 30e3; // the window slides even when nothing arrives
  const LIVE_DEBOUNCE_MS = 700;
  const GALLERY_SIZE = 12;
  const PALETTE = ["#f87171", "#fbbf24", "#a78bfa", "#34d399", "#60a5fa", "#f472b6", "#fb923c", "#2dd4bf"];

  const $ = (id) => document.getElementById(id);
  const state = {
    signedIn: false,
    line: "",
    window: "8h",
    data: null,
    busy: false,
    again: false,
    liveTimer: null,
    ws: null,
    wsDelay: 1000,
    wsClosedByUs: false,
    snapshots: new Map(), // snapshot id -> Promise<ImageBitmap | null>
    seenRejects: null, // reject ids shown in the last render; new ones are highlighted
    refreshes: 0,
    liveEvents: 0,
    lightboxItem: null, // the reject shown enlarged (for "mark as wrong")
  };

  class AuthError extends Error {}

  // ---------------------------------------------------------------- auth

  async function api(path, params) {
    const query = params ? "?" + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)) : "";
    const response = await fetch(API + path + query, { credentials: "same-origin" });
    if (response.status === 401) throw new AuthError("session expired");
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response;
  }

  async function getJson(path, params) {
    return (await api(path, params)).json();
  }

  /* The shared sign-in (signin.js) brings the login view back; this page stops its live updates first. */
  function showLogin(message) {
    FieldLineSignin.show(message);
  }

  function signedOut() {
    stopLive();
    state.signedIn = false;
  }

  // ---------------------------------------------------------------- state in the URL hash

  function readHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    state.line = params.get("line") || "";
    state.window = WINDOWS[params.get("window")] ? params.get("window") : "8h";
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.line) params.set("line", state.line);
    params.set("window", state.window);
    history.replaceState(null, "", "#" + params.toString());
  }

  // ---------------------------------------------------------------- formatting

  const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
  const fmtRate = (r, digits) => (r == null ? "–" : (r * 100).toFixed(digits === undefined ? 2 : digits) + " %");
  const pad = (n) => String(n).padStart(2, "0");
  function fmtTime(ts, withSeconds) {
    const d = new Date(ts);
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes()) + (withSeconds ? ":" + pad(d.getSeconds()) : "");
    return Date.now() - ts > 20 * 3600e3 ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + hm : hm;
  }
  function fmtBucket(ms) {
    return ms >= 3600e3 ? ms / 3600e3 + " h buckets" : ms / 60e3 + " min buckets";
  }
  function labelColour(label) {
    let h = 0;
    for (const c of label) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  // ---------------------------------------------------------------- loading

  async function refresh() {
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      do {
        state.again = false;
        const to = Date.now();
        const win = { from: to - WINDOWS[state.window], to };
        const scoped = { line: state.line, ...win };
        const [lines, summary, trend, pareto, pchart, rejects] = await Promise.all([
          getJson("/lines", win),
          getJson("/qa/summary", scoped),
          getJson("/qa/trend", scoped),
          getJson("/qa/pareto", scoped),
          getJson("/qa/pchart", scoped),
          getJson("/qa/rejects", { line: state.line, limit: GALLERY_SIZE }),
        ]);
        state.data = { lines, summary, trend, pareto, pchart, rejects, window: win };
        render();
        state.refreshes += 1;
        document.body.dataset.refreshes = String(state.refreshes);
        $("updated").textContent = "updated " + fmtTime(to, true);
      } while (state.again);
    } catch (error) {
      if (error instanceof AuthError) { showLogin("Your session has ended, please sign in again."); return; }
      if (error && /HTTP 404/.test(error.message) && state.line) { // the line vanished (database reset)
        state.line = ""; writeHash(); state.busy = false; return await refresh();
      }
      $("updated").textContent = "update failed: " + error.message;
    } finally {
      state.busy = false;
    }
  }

  function scheduleLiveRefresh() {
    if (state.liveTimer) return;
    state.liveTimer = setTimeout(() => { state.liveTimer = null; refresh(); }, LIVE_DEBOUNCE_MS);
  }

  // ---------------------------------------------------------------- rendering

  function render() {
    const d = state.data;
    if (!d) return;
    renderLines(d.lines);
    const s = d.summary;
    $("kpi-parts").textContent = fmtInt(s.parts);
    $("kpi-rejects").textContent = fmtInt(s.rejects);
    $("kpi-rate").textContent = fmtRate(s.defect_rate);
    $("kpi-ooc").textContent = fmtInt(d.pchart.flagged);
    $("kpi-ooc").classList.toggle("alarm", d.pchart.flagged > 0);
    const top = d.pareto.items[0];
    $("kpi-top").textContent = top ? `${top.label} (${top.count})` : "–";
    $("trend-bucket").textContent = fmtBucket(d.trend.bucket_ms);
    $("pchart-rules").textContent = d.pchart.points.length
      ? (d.pchart.flagged ? `· ${d.pchart.flagged} point(s) out of control` : "· in control") : "";
    const exportParams = new URLSearchParams({ from: d.window.from, to: d.window.to });
    if (state.line) exportParams.set("line", state.line);
    $("export-link").href = `${API}/qa/export.csv?${exportParams}`;
    drawCharts();
    renderGallery(d.rejects.items);
  }

  function drawCharts() {
    const d = state.data;
    if (!d || !window.FLCharts) return;
    window.FLCharts.trend($("trend-chart"), d.trend);
    window.FLCharts.pareto($("pareto-chart"), d.pareto);
    window.FLCharts.pchart($("pchart"), d.pchart);
  }

  function renderLines(lines) {
    const select = $("line-select");
    const known = new Set(lines.map((l) => l.id));
    if (state.line && !known.has(state.line)) known.add(state.line);
    const options = [["", "All lines"], ...[...known].map((id) => [id, id])];
    if (select.options.length !== options.length || options.some(([v], i) => select.options[i].value !== v)) {
      select.textContent = "";
      for (const [value, text] of options) select.add(new Option(text, value));
    }
    select.value = state.line;

    const strip = $("lines-strip");
    strip.textContent = "";
    for (const line of lines) {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "line-tile";
      tile.dataset.line = line.id;
      if (line.id === state.line) tile.classList.add("selected");
      const rate = line.defect_rate;
      tile.classList.add(rate == null ? "idle" : rate >= 0.05 ? "bad" : rate >= 0.02 ? "warn" : "ok");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = line.name + (line.site ? " · " + line.site : "");
      const stats = document.createElement("span");
      stats.className = "stats";
      stats.textContent = `${fmtRate(rate, 1)} · ${fmtInt(line.rejects)}/${fmtInt(line.parts)} · last ${fmtTime(line.last_ts_ms)}`;
      tile.append(name, stats);
      tile.addEventListener("click", () => selectLine(line.id === state.line ? "" : line.id));
      strip.appendChild(tile);
    }
  }

  // ---------------------------------------------------------------- reject gallery

  function loadSnapshot(id) {
    if (!id) return Promise.resolve(null);
    if (!state.snapshots.has(id)) {
      if (state.snapshots.size > 200) state.snapshots.clear();
      state.snapshots.set(id, api("/snapshots/" + encodeURIComponent(id), null)
        .then((r) => r.blob())
        .then((blob) => createImageBitmap(blob))
        .catch(() => null));
    }
    return state.snapshots.get(id);
  }

  /* Draw the evidence image letterboxed into the canvas, then the defect boxes (normalised coordinates). */
  function drawReject(canvas, item, image) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width;
    const H = canvas.height;
    ctx.fillStyle = "#0a0f1a";
    ctx.fillRect(0, 0, W, H);
    let area = { x: 0, y: 0, w: W, h: H };
    if (image) {
      const scale = Math.min(W / image.width, H / image.height);
      area = { w: image.width * scale, h: image.height * scale };
      area.x = (W - area.w) / 2;
      area.y = (H - area.h) / 2;
      ctx.drawImage(image, area.x, area.y, area.w, area.h);
    } else {
      ctx.fillStyle = "#5b6b86";
      ctx.font = `${Math.round(H / 14)}px sans-serif`;
      ctx.textAlign = "center";
      ctx.fillText("no image", W / 2, H / 2);
      ctx.textAlign = "start";
    }
    const fontSize = Math.max(11, Math.round(H / 20));
    ctx.font = `600 ${fontSize}px sans-serif`;
    ctx.lineWidth = Math.max(2, W / 160);
    for (const defect of item.defects) {
      const [x1, y1, x2, y2] = defect.box;
      const x = area.x + x1 * area.w;
      const y = area.y + y1 * area.h;
      const colour = labelColour(defect.label);
      ctx.strokeStyle = colour;
      ctx.strokeRect(x, y, (x2 - x1) * area.w, (y2 - y1) * area.h);
      const text = `${defect.label} ${Math.round(defect.score * 100)}%`;
      const tw = ctx.measureText(text).width + 8;
      const ty = y - fontSize - 4 < 0 ? y : y - fontSize - 4;
      ctx.fillStyle = colour;
      ctx.fillRect(x, ty, tw, fontSize + 4);
      ctx.fillStyle = "#0b1220";
      ctx.fillText(text, x + 4, ty + fontSize);
    }
    canvas.dataset.boxes = String(item.defects.length);
    canvas.dataset.image = image ? "yes" : "no";
  }

  function renderGallery(items) {
    const gallery = $("gallery");
    gallery.textContent = "";
    if (!items.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No rejects yet.";
      gallery.appendChild(p);
    }
    const previous = state.seenRejects;
    for (const item of items) {
      const card = document.createElement("figure");
      card.className = "reject-card";
      card.dataset.eventId = item.event_id;
      if (previous && !previous.has(item.event_id)) card.classList.add("new");
      const canvas = document.createElement("canvas");
      canvas.width = 400;
      canvas.height = 300;
      drawReject(canvas, item, null);
      loadSnapshot(item.snapshot).then((image) => { if (image) drawReject(canvas, item, image); });
      const meta = document.createElement("figcaption");
      meta.className = "meta";
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = `${fmtTime(item.ts_ms, true)} · ${item.line} · ${item.device}`;
      const chips = document.createElement("span");
      chips.className = "chips";
      for (const defect of item.defects) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = defect.label;
        chips.appendChild(chip);
      }
      meta.append(when, chips);
      card.append(canvas, meta);
      card.addEventListener("click", () => openLightbox(item));
      gallery.appendChild(card);
    }
    state.seenRejects = new Set(items.map((i) => i.event_id));
  }

  function openLightbox(item) {
    state.lightboxItem = item;
    $("mark-wrong").disabled = false;
    $("mark-wrong-result").textContent = "";
    $("mark-wrong-result").className = "muted";
    const canvas = $("lightbox-canvas");
    drawReject(canvas, item, null);
    loadSnapshot(item.snapshot).then((image) => { if (image) drawReject(canvas, item, image); });
    $("lightbox-caption").textContent = `${item.event_id} · ${new Date(item.ts_ms).toLocaleString()} · ` +
      item.defects.map((d) => `${d.label} ${Math.round(d.score * 100)}%`).join(", ");
    $("lightbox").hidden = false;
  }

  /* "Mark as wrong": the reject's picture and boxes go to the model's dataset for labelling (or, when the
   * picture is not stored here, the camera is asked for a fresh one). Operators and admins only. */
  async function markWrong(event) {
    event.stopPropagation();
    const item = state.lightboxItem;
    if (!item) return;
    const result = $("mark-wrong-result");
    $("mark-wrong").disabled = true;
    result.className = "muted";
    result.textContent = "sending…";
    let ok = false;
    try {
      const response = await fetch(API + "/datasets/requests/from-event", {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ event_id: item.event_id, note: "reject marked wrong in /qa" }),
      });
      if (response.status === 401) { showLogin("Your session has ended, please sign in again."); return; }
      let body = {};
      try { body = await response.json(); } catch (error) { /* no JSON body */ }
      if (response.status === 403) result.textContent = "Only an operator or admin can mark a reject as wrong.";
      else if (!response.ok) result.textContent = "Not sent: " + (typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`);
      else {
        ok = true;
        const frame = typeof body.frame === "string" ? body.frame : null;
        result.textContent = frame && body.dataset
          ? `Sent to dataset ${body.dataset} for labelling (frame ${frame}).`
          : `Asked ${item.device} for a fresh picture to label` + (body.request_id ? ` (request ${body.request_id}).` : ".");
        document.body.dataset.markedWrong = item.event_id;
      }
    } catch (error) {
      result.textContent = "Cannot reach the server.";
    } finally {
      result.className = ok ? "done" : "failed";
      $("mark-wrong").disabled = ok;
    }
  }

  // ---------------------------------------------------------------- CSV export (needs the session cookie)

  async function exportCsv(event) {
    event.preventDefault();
    try {
      const response = await fetch($("export-link").href, { credentials: "same-origin" });
      if (response.status === 401) { showLogin("Your session has ended, please sign in again."); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const disposition = response.headers.get("Content-Disposition") || "";
      const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "inspections.csv";
      const url = URL.createObjectURL(await response.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10e3);
    } catch (error) {
      $("updated").textContent = "export failed: " + error.message;
    }
  }

  // ---------------------------------------------------------------- live updates

  function setLive(online) {
    const status = $("live-status");
    status.className = "live-status " + (online ? "online" : "offline");
    status.textContent = online ? "● live" : "● offline";
  }

  function startLive() {
    stopLive();
    state.wsClosedByUs = false;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}${API}/ws`); // the session cookie signs it in
    state.ws = ws;
    ws.onopen = () => { state.wsDelay = 1000; setLive(true); };
    ws.onmessage = (message) => {
      let body;
      try { body = JSON.parse(message.data); } catch (error) { return; }
      if (body.type !== "inspection" || !body.data || !body.data.zone || body.data.zone.kind !== "line") return;
      state.liveEvents += 1;
      document.body.dataset.liveEvents = String(state.liveEvents);
      scheduleLiveRefresh(); // every line's tile changes; the charts too when it is the selected line
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      setLive(false);
      if (event.code === 4401) { showLogin("Your session has ended, please sign in again."); return; }
      if (!state.wsClosedByUs) {
        setTimeout(() => { if (!state.ws && state.signedIn) startLive(); }, state.wsDelay);
        state.wsDelay = Math.min(30e3, state.wsDelay * 2);
        refresh(); // catch up on what was missed while disconnected
      }
    };
  }

  function stopLive() {
    state.wsClosedByUs = true;
    if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
    setLive(false);
  }

  // ---------------------------------------------------------------- controls

  function selectLine(line) {
    state.line = line;
    state.seenRejects = null;
    writeHash();
    refresh();
  }

  function selectWindow(name) {
    state.window = name;
    for (const button of document.querySelectorAll("[data-window]")) {
      button.classList.toggle("active", button.dataset.window === name);
    }
    writeHash();
    refresh();
  }

  async function signedIn() {
    state.signedIn = true;
    selectWindow(state.window);
    startLive();
  }

  function init() {
    readHash();
    $("line-select").addEventListener("change", (e) => selectLine(e.target.value));
    for (const button of document.querySelectorAll("[data-window]")) {
      button.addEventListener("click", () => selectWindow(button.dataset.window));
    }
    $("export-link").addEventListener("click", exportCsv);
    $("lightbox").addEventListener("click", () => { $("lightbox").hidden = true; });
    $("lightbox-actions").addEventListener("click", (e) => e.stopPropagation()); // clicks here keep it open
    $("mark-wrong").addEventListener("click", markWrong);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("lightbox").hidden = true; });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawCharts, 150);
    });
    setInterval(() => { if (state.signedIn && !document.hidden) refresh(); }, REFRESH_MS);
    FieldLineSignin.init({ onSignedIn: signedIn, onSignedOut: signedOut });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

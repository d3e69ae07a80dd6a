"use strict";
// The review page of `facescan serve`. It uses the public API only: GET /readyz for the model,
// POST /v1/scan with one image per request, a few at a time; each answer is the JSONL report
// row of that file. Thumbnails come from the files the browser already holds (blob: URLs), so
// nothing is stored on the server. File names and every value the server sends are set as
// text (textContent, attributes), never parsed as markup.
(() => {
  // The report's columns, in order (scanner/reports/base.py FIELDS; a test checks they agree).
  const FIELDS = ["path", "status", "label", "score", "error", "width", "height", "format",
    "sha256", "evidence", "reason", "cached", "faces", "baseline", "provenance"];
  // What a folder contributes, as scanner/walk.py's IMAGE_EXTENSIONS (a test checks they agree);
  // files picked or dropped one by one are always sent, as the CLI scans a file it is given.
  const IMAGE_EXTENSIONS = [".avif", ".bmp", ".gif", ".heic", ".heif", ".jpeg", ".jpg", ".png",
    ".tif", ".tiff", ".webp"];
  const PARALLEL = 4; // requests in flight: keeps the service's batches fed without a backlog
  const MAX_RETRIES = 30; // 503 answers honoured (Retry-After) before the file is an error
  const FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]; // as the CSV report's guard

  const grid = document.getElementById("grid");
  const template = document.getElementById("card-template");
  const entries = []; // {file, name, card, row}, in the order files were added
  const waiting = []; // entries not yet sent
  const blocked = []; // entries answered 401: sent again once a token is given
  let active = 0;
  // A 401 pauses the queue until a token is given: without the pause every file picked would be
  // sent, and refused, before the prompt could be used.
  let paused = false;
  let positive = "ai";
  let token = sessionStorage.getItem("facescan-token") || "";

  function init() {
    loadModel();
    const drop = document.getElementById("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      dropped(e.dataTransfer);
    });
    for (const id of ["pick-files", "pick-folder"]) {
      const input = document.getElementById(id);
      input.addEventListener("change", () => {
        const folder = id === "pick-folder";
        for (const file of input.files) {
          add(file, file.webkitRelativePath || file.name, folder);
        }
        input.value = "";
      });
    }
    for (const button of document.querySelectorAll("[data-filter]")) {
      button.addEventListener("click", () => setFilter(button.dataset.filter));
    }
    document.getElementById("export-csv").addEventListener("click", exportCsv);
    document.getElementById("export-jsonl").addEventListener("click", exportJsonl);
    document.getElementById("auth").addEventListener("submit", (e) => {
      e.preventDefault();
      token = document.getElementById("token").value.trim();
      sessionStorage.setItem("facescan-token", token);
      document.getElementById("auth").hidden = true;
      paused = false;
      // The held files go first, in the order they were added.
      blocked.sort((a, b) => entries.indexOf(a) - entries.indexOf(b));
      waiting.unshift(...blocked.splice(0));
      updateCounts();
      pump();
    });
    updateCounts();
  }

  async function loadModel() {
    const status = document.getElementById("model");
    try {
      const response = await fetch("/readyz");
      const body = await response.json();
      if (!response.ok) throw new Error(body.status || response.statusText);
      positive = body.model.labels[1];
      const name = body.model.model.split("/").pop();
      const threshold = Number(body.model.threshold).toFixed(3);
      status.textContent = `model ${name}, flags "${positive}" at score ≥ ${threshold}`;
      document.body.dataset.state = "ready";
    } catch (e) {
      status.textContent = `service not ready: ${e.message}`;
      document.body.dataset.state = "not-ready";
    }
  }

  async function dropped(transfer) {
    // Folders arrive as entries, walked here; plain files as they are.
    const items = [...transfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry());
    if (!items.length || items.some((e) => !e)) {
      for (const file of transfer.files) add(file, file.name, false);
      return;
    }
    for (const entry of items) await walk(entry, false);
  }

  async function walk(entry, inFolder) {
    if (entry.isFile) {
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      add(file, entry.fullPath.replace(/^\//, ""), inFolder);
      return;
    }
    const reader = entry.createReader();
    const children = [];
    for (;;) { // readEntries hands back a folder in pieces
      const piece = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!piece.length) break;
      children.push(...piece);
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) await walk(child, true);
  }

  function add(file, name, inFolder) {
    const dot = name.lastIndexOf(".");
    const extension = dot < 0 ? "" : name.slice(dot).toLowerCase();
    if (inFolder && !IMAGE_EXTENSIONS.includes(extension)) return;
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".name").textContent = name;
    card.title = name;
    const image = card.querySelector("img");
    image.src = URL.createObjectURL(file);
    image.addEventListener("error", () => { // not an image this browser shows (HEIC, broken)
      const note = document.createElement("span");
      note.className = "no-preview";
      note.textContent = "no preview";
      image.replaceWith(note);
    }, { once: true });
    grid.append(card);
    const entry = { file, name, card, row: null };
    entries.push(entry);
    waiting.push(entry);
    updateCounts();
    pump();
  }

  function pump() {
    while (!paused && active < PARALLEL && waiting.length) {
      const entry = waiting.shift();
      active += 1;
      send(entry).finally(() => {
        active -= 1;
        updateCounts();
        pump();
      });
    }
  }

  async function send(entry) {
    const form = new FormData();
    form.append("file", entry.file, entry.name);
    for (let attempt = 0; ; attempt += 1) {
      let response;
      const sentToken = token;
      try {
        const headers = sentToken ? { Authorization: `Bearer ${sentToken}` } : {};
        response = await fetch("/v1/scan", { method: "POST", body: form, headers });
      } catch (e) {
        show(entry, failure(entry, `could not reach the service: ${e.message}`));
        return;
      }
      if (response.status === 401) {
        if (sentToken !== token) { // sent before the token now in use: send it again
          waiting.unshift(entry);
          return;
        }
        blocked.push(entry);
        askForToken();
        return;
      }
      if (response.status === 503 && attempt < MAX_RETRIES) {
        const seconds = Number(response.headers.get("Retry-After")) || 1;
        await new Promise((ok) => setTimeout(ok, seconds * 1000));
        continue;
      }
      let body = {};
      try { body = await response.json(); } catch (e) { /* not JSON: the status says enough */ }
      if (!response.ok || !body.results || !body.results.length) {
        const why = body.error || response.statusText || "no answer";
        show(entry, failure(entry, `HTTP ${response.status}: ${why}`));
        return;
      }
      // The name as picked: browsers send `"` and line breaks in file names as %22, %0A, %0D.
      show(entry, { ...body.results[0], path: entry.name });
      return;
    }
  }

  function askForToken() {
    paused = true;
    const why = token ? "The service refused the token given." : "";
    document.getElementById("auth-why").textContent = why;
    const form = document.getElementById("auth");
    if (form.hidden) {
      form.hidden = false;
      document.getElementById("token").focus();
    }
    updateCounts();
  }

  function failure(entry, message) {
    // A file the service never scored still gets a row, as the CLI's error rows.
    const row = Object.fromEntries(FIELDS.map((f) => [f, null]));
    return Object.assign(row, { path: entry.name, status: "error", error: message, cached: false });
  }

  function show(entry, row) {
    entry.row = row;
    const card = entry.card;
    const kind = row.status !== "ok" ? "error" : row.label === positive ? "flagged" : "real";
    card.classList.remove("pending");
    card.classList.add(kind);
    card.dataset.kind = kind;
    const verdict = card.querySelector(".verdict");
    const detail = card.querySelector(".detail");
    if (kind === "error") {
      verdict.textContent = "error";
      detail.textContent = row.error;
    } else {
      verdict.textContent = `${row.label} ${Number(row.score).toFixed(3)}`;
      const why = row.reason === "metadata" ? ` · metadata: ${row.evidence}` : "";
      detail.textContent = `${row.width}×${row.height} ${row.format}${why}`;
    }
    const faces = (Array.isArray(row.faces) ? row.faces : []).filter((f) => f && f.box);
    drawFaces(card.querySelector(".thumb"), row, faces);
    listFaces(card.querySelector(".faces"), faces);
  }

  // As the HTML report: "ai" (the flagged label), "real", or "unscored" under --min-face.
  function faceKind(face) {
    if (face.score === null || face.score === undefined) return "unscored";
    return face.label === positive ? "ai" : "real";
  }

  function faceWords(face) {
    const kind = faceKind(face);
    return kind === "unscored" ? "(small)" : `${Number(face.score).toFixed(2)} ${face.label}`;
  }

  function drawFaces(thumb, row, faces) {
    // Face boxes: [x0, y0, x1, y1] in the upright image's pixels, placed as percentages so they
    // follow the thumbnail's size, coloured by label, each with its score above it (inside it
    // when the box touches the image's top).
    for (const face of faces) {
      const box = face.box;
      if (!Array.isArray(box) || box.length !== 4 || !row.width || !row.height) continue;
      const [x0, y0, x1, y1] = box.map(Number);
      const div = document.createElement("div");
      const top = (100 * y0) / row.height;
      div.className = `box ${faceKind(face)}${top < 15 ? " inside" : ""}`;
      div.style.left = `${(100 * x0) / row.width}%`;
      div.style.top = `${top}%`;
      div.style.width = `${(100 * (x1 - x0)) / row.width}%`;
      div.style.height = `${(100 * (y1 - y0)) / row.height}%`;
      div.title = `face ${faceWords(face)}`;
      const score = document.createElement("span");
      score.textContent = faceKind(face) === "unscored" ? "small" : Number(face.score).toFixed(2);
      div.append(score);
      thumb.append(div);
    }
  }

  function listFaces(line, faces) {
    // Each face's score and label under the thumbnail, best first, the flagged ones in red.
    if (!faces.length) return;
    const rank = (f) => (faceKind(f) === "unscored" ? -1 : Number(f.score));
    const sorted = [...faces].sort((a, b) => rank(b) - rank(a));
    line.append("faces: ");
    sorted.forEach((face, n) => {
      if (n) line.append(" · ");
      const word = document.createElement("span");
      word.className = faceKind(face);
      word.textContent = faceWords(face);
      line.append(word);
    });
    line.hidden = false;
  }

  function setFilter(name) {
    grid.dataset.filter = name;
    for (const button of document.querySelectorAll("[data-filter]")) {
      button.setAttribute("aria-pressed", String(button.dataset.filter === name));
    }
    updateCounts();
  }

  function updateCounts() {
    const done = entries.filter((e) => e.row);
    const flagged = done.filter((e) => e.card.dataset.kind === "flagged").length;
    const errors = done.filter((e) => e.card.dataset.kind === "error").length;
    const held = paused ? `, ${blocked.length + waiting.length} waiting for the token` : "";
    const text = `${entries.length} files, ${done.length} scanned: ${flagged} flagged, ` +
      `${errors} errors${held}`;
    document.getElementById("counts").textContent = text;
    Object.assign(document.body.dataset, {
      files: entries.length, done: done.length, flagged, errors, inFlight: active,
      queue: paused ? "paused" : "running",
    });
  }

  function rows() {
    return entries.filter((e) => e.row).map((e) => e.row);
  }

  // As the CLI's CSV writes them: how many faces, the credential's validation word.
  function csvValue(row, field) {
    if (field === "faces" && Array.isArray(row.faces)) return row.faces.length;
    if (field === "provenance" && row.provenance) return row.provenance.validation;
    return row[field];
  }

  function csvCell(value) {
    if (value === null || value === undefined) return "";
    let text = String(value); // booleans as JSON writes them: true, false
    if (typeof value === "string" && FORMULA_STARTS.some((s) => text.startsWith(s))) {
      text = `'${text}`;
    }
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function exportCsv() {
    const lines = [FIELDS.join(",")];
    for (const row of rows()) lines.push(FIELDS.map((f) => csvCell(csvValue(row, f))).join(","));
    download("facescan-review.csv", lines.join("\r\n") + "\r\n", "text/csv");
  }

  function exportJsonl() {
    const text = rows().map((row) => JSON.stringify(row) + "\n").join("");
    download("facescan-review.jsonl", text, "application/x-ndjson");
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  init();
})();

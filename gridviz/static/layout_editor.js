// GridConv Lab layout editor front end (anywidget ESM, no build step).
// Synced: cells and skeleton_name (edited here and in Python), message, and what only Python knows
// (_skeleton, _choices, _verdict = the eq. 2-3 check, _history = undo/redo depths). Shape, empty
// cells, status and palette counts are derived here; the hover highlight never leaves the page.
// Edits go out as NEW lists (model.set + save_changes) or messages; one render per update.

const EMPTY = -1;
const SVG_NS = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function joints(cell) {
  return Array.isArray(cell) ? cell : cell === EMPTY ? [] : [cell];
}

function label(cell, names) {
  return joints(cell).map((j) => names[j] ?? `?${j}`).join("+");
}

function sendCells(model, rows) {
  model.set("cells", rows);
  model.save_changes();
}

function copyRows(model) {
  return model.get("cells").map((row) => row.map((c) => (Array.isArray(c) ? [...c] : c)));
}

function shape(model) {
  const cells = model.get("cells");
  return [cells.length, cells[0].length];
}

function statusText(model) {
  const { problems, broken } = model.get("_verdict");
  const edges = model.get("_skeleton").edges.length;
  if (problems.length) return `Invalid layout: ${problems.length} problem${problems.length > 1 ? "s" : ""}`;
  return `Valid layout; eq. 2 keeps ${edges - broken.length}/${edges} skeleton edges`;
}

function toolbar(model) {
  const bar = h("div", { class: "gle-toolbar" });
  const skel = h("select", { "data-testid": "layout-skeleton", title: "skeleton" });
  const { skeletons, max_side: maxSide } = model.get("_choices");
  for (const name of skeletons) {
    const opt = h("option", { value: name, text: name });
    if (name === model.get("skeleton_name")) opt.selected = true;
    skel.append(opt);
  }
  skel.addEventListener("change", () => {
    model.set("skeleton_name", skel.value);
    model.save_changes();
  });
  const [rows, cols] = shape(model);
  const side = (value, testid, index) => {
    const sel = h("select", { "data-testid": testid, title: index ? "columns P" : "rows H" });
    for (let n = 1; n <= maxSide; n++) {
      const opt = h("option", { value: String(n), text: String(n) });
      if (n === value) opt.selected = true;
      sel.append(opt);
    }
    sel.addEventListener("change", () => {
      const next = shape(model);
      next[index] = Number(sel.value);
      model.send({ op: "resize", rows: next[0], cols: next[1] });
    });
    return sel;
  };
  const button = (text, testid, title, enabled, onClick) => {
    const b = h("button", { class: "gle-btn", "data-testid": testid, title, text });
    b.disabled = !enabled;
    b.addEventListener("click", onClick);
    return b;
  };
  const [undoDepth, redoDepth] = model.get("_history");
  const undo = button("\u21b6 Undo", "layout-undo", "undo the last edit", undoDepth > 0, () =>
    model.send({ op: "undo" }));
  const redo = button("\u21b7 Redo", "layout-redo", "redo", redoDepth > 0, () => model.send({ op: "redo" }));
  const save = button("\u2913 Save JSON", "layout-download", "download the layout as JSON",
    model.get("_verdict").problems.length === 0, () => model.send({ op: "download" }));
  const file = h("input", { type: "file", accept: ".json,application/json", "data-testid": "layout-upload-input" });
  file.style.display = "none";
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (f) model.send({ op: "load_text", text: await f.text(), name: f.name });
    file.value = "";
  });
  const load = button("\u2912 Load JSON", "layout-upload", "load a layout JSON file", true, () => file.click());
  bar.append(
    h("label", {}, "Skeleton ", skel),
    h("label", {}, "H ", side(rows, "layout-rows", 0)),
    h("label", {}, "\u00d7 P ", side(cols, "layout-cols", 1)),
    h("span", { class: "gle-spacer" }),
    undo, redo, load, save, file,
  );
  return bar;
}

function grid(model, setHover) {
  const names = model.get("_skeleton").joint_names;
  const [nRows, nCols] = shape(model);
  const table = h("div", { class: "gle-grid", "data-testid": "layout-grid" });
  table.style.gridTemplateColumns = `repeat(${nCols}, minmax(64px, 1fr))`;
  model.get("cells").forEach((row, r) => row.forEach((cell, c) => {
    const js = joints(cell);
    const node = h("div", {
      class: "gle-cell", "data-testid": `grid-cell-${r}-${c}`, tabindex: "0",
      title: js.length ? `(${r},${c}) ${label(cell, names)} \u2014 drag to swap; right-click or Delete clears` : `(${r},${c}) empty`,
    });
    if (cell === EMPTY) node.classList.add("gle-invalid");
    if (js.length > 1) node.classList.add("gle-mixture");
    node.dataset.joints = js.join(" ");
    node.append(h("span", { class: "gle-rc", text: `${r},${c}` }), h("span", { class: "gle-name", text: label(cell, names) || "\u2014" }));
    if (js.length) {
      node.draggable = true;
      const clear = h("button", { class: "gle-clear", "data-testid": `cell-clear-${r}-${c}`, title: "clear this cell", text: "\u00d7" });
      clear.addEventListener("click", (e) => { e.stopPropagation(); clearCell(model, r, c); });
      node.append(clear);
    }
    node.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/plain", JSON.stringify({ kind: "cell", r, c }));
      e.dataTransfer.effectAllowed = "move";
    });
    node.addEventListener("dragover", (e) => { e.preventDefault(); node.classList.add("gle-target"); });
    node.addEventListener("dragleave", () => node.classList.remove("gle-target"));
    node.addEventListener("drop", (e) => {
      e.preventDefault();
      node.classList.remove("gle-target");
      let src;
      try { src = JSON.parse(e.dataTransfer.getData("text/plain")); } catch { return; }
      const next = copyRows(model);
      if (src.kind === "cell") {
        if (src.r === r && src.c === c) return;
        [next[r][c], next[src.r][src.c]] = [next[src.r][src.c], next[r][c]];
      } else if (src.kind === "joint") {
        next[r][c] = src.j;
      } else return;
      sendCells(model, next);
    });
    node.addEventListener("contextmenu", (e) => { e.preventDefault(); if (js.length) clearCell(model, r, c); });
    node.addEventListener("keydown", (e) => {
      if ((e.key === "Delete" || e.key === "Backspace") && js.length) clearCell(model, r, c);
    });
    node.addEventListener("mouseenter", () => setHover(js.length === 1 ? js[0] : EMPTY));
    node.addEventListener("mouseleave", () => setHover(EMPTY));
    table.append(node);
  }));
  table.dataset.shape = `${nRows}x${nCols}`;
  return table;
}

function clearCell(model, r, c) {
  const next = copyRows(model);
  next[r][c] = EMPTY;
  sendCells(model, next);
}

function palette(model, setHover) {
  const names = model.get("_skeleton").joint_names;
  const counts = names.map(() => 0);
  for (const row of model.get("cells")) for (const cell of row) if (joints(cell).length === 1) counts[joints(cell)[0]]++;
  const box = h("div", { class: "gle-palette", "data-testid": "layout-palette" },
    h("div", { class: "gle-heading", text: "Joints (drag into a cell)" }));
  names.forEach((name, j) => {
    const chip = h("div", { class: "gle-chip", draggable: "true", "data-testid": `palette-joint-${j}`, title: `${j} ${name}: ${counts[j]} cell(s)` },
      h("span", { class: "gle-idx", text: String(j) }), name,
      h("span", { class: "gle-count", text: counts[j] ? `\u00d7${counts[j]}` : "missing" }));
    if (!counts[j]) chip.classList.add("gle-missing");
    chip.dataset.joints = String(j);
    chip.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/plain", JSON.stringify({ kind: "joint", j }));
      e.dataTransfer.effectAllowed = "copy";
    });
    chip.addEventListener("mouseenter", () => setHover(j));
    chip.addEventListener("mouseleave", () => setHover(EMPTY));
    box.append(chip);
  });
  return box;
}

function skeletonSvg(model, hover) {
  const { template: xy, joint_names: names, edges } = model.get("_skeleton");
  const present = new Set();
  for (const row of model.get("cells")) for (const cell of row) if (joints(cell).length === 1) present.add(joints(cell)[0]);
  const broken = new Set(model.get("_verdict").broken.map(([a, b]) => `${a}-${b}`));
  const size = 190, pad = 14;
  const xs = xy.map((p) => p[0]), ys = xy.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = (size - 2 * pad) / Math.max(x1 - x0, y1 - y0, 1e-6);
  const px = (p) => [size / 2 + (p[0] - (x0 + x1) / 2) * scale, size / 2 - (p[1] - (y0 + y1) / 2) * scale];
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "gle-svg");
  svg.setAttribute("data-testid", "skeleton-svg");
  const add = (tag, attrs) => {
    const n = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    svg.append(n);
    return n;
  };
  for (const [a, b] of edges) {
    const [[xa, ya], [xb, yb]] = [px(xy[a]), px(xy[b])];
    add("line", { x1: xa, y1: ya, x2: xb, y2: yb, class: broken.has(`${a}-${b}`) ? "gle-edge gle-broken" : "gle-edge" });
  }
  xy.forEach((p, j) => {
    const [x, y] = px(p);
    const dot = add("circle", { cx: x, cy: y, r: j === hover ? 7 : 4, class: `gle-joint${j === hover ? " gle-hot" : ""}${present.has(j) ? "" : " gle-absent"}`, "data-testid": `skeleton-joint-${j}` });
    const tip = document.createElementNS(SVG_NS, "title");
    tip.textContent = `${j} ${names[j]}`;
    dot.append(tip);
  });
  if (hover >= 0 && hover < xy.length) {
    const [x, y] = px(xy[hover]);
    add("text", { x: x + 9, y: y + 4, class: "gle-svg-label" }).textContent = names[hover];
  }
  return svg;
}

function sidePanel(model, hover) {
  const names = model.get("_skeleton").joint_names;
  const { problems, broken } = model.get("_verdict");
  const panel = h("div", { class: "gle-side" });
  const status = h("div", { class: problems.length ? "gle-status gle-bad" : "gle-status gle-good", "data-testid": "layout-status", text: statusText(model) });
  panel.append(status);
  if (problems.length) {
    const list = h("ul", { class: "gle-problems", "data-testid": "layout-problems" });
    for (const p of problems) list.append(h("li", { text: p }));
    panel.append(list);
  } else {
    const text = broken.length
      ? "broken edges (red): " + broken.map(([a, b]) => `${names[a]}\u2013${names[b]}`).join(", ")
      : "every skeleton edge joins adjacent cells (eq. 2 holds)";
    panel.append(h("div", { class: broken.length ? "gle-topology gle-broken-list" : "gle-topology", "data-testid": "layout-topology", text }));
  }
  panel.append(skeletonSvg(model, hover));
  return panel;
}

function render({ model, el }) {
  const root = h("div", { class: "gle-root", "data-testid": "layout-editor" });
  el.append(root);
  let hover = EMPTY; // front-end only: Python never needs it
  let renders = 0;
  let scheduled = false;
  // Hovering only restyles: rebuilding the grid under the pointer would disturb drags.
  const markCells = () => {
    for (const node of root.querySelectorAll("[data-joints]")) {
      const js = node.dataset.joints.split(" ");
      node.classList.toggle("gle-hover", hover !== EMPTY && js.length === 1 && js[0] === String(hover));
    }
  };
  const setHover = (joint) => {
    if (joint === hover) return;
    hover = joint;
    markCells();
    const svg = root.querySelector(".gle-svg");
    if (svg) svg.replaceWith(skeletonSvg(model, hover));
  };
  const draw = () => {
    scheduled = false;
    const message = model.get("message");
    const parts = [toolbar(model)];
    if (message) {
      const bad = message.startsWith("Could not") || message.startsWith("Ignored");
      const note = h("div", { class: bad ? "gle-message gle-bad" : "gle-message", "data-testid": "layout-message", text: message });
      const close = h("button", { class: "gle-clear gle-close", title: "dismiss", text: "\u00d7" });
      close.addEventListener("click", () => { model.set("message", ""); model.save_changes(); });
      note.append(close);
      parts.push(note);
    }
    parts.push(h("div", { class: "gle-main" }, grid(model, setHover), palette(model, setHover), sidePanel(model, hover)));
    root.replaceChildren(...parts);
    markCells();
    root.dataset.renders = String(++renders);
  };
  // One Python update changes several traits at once (one message, several change events): draw once.
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(draw);
  };
  const download = (msg) => {
    if (msg?.op !== "download" || !msg.text) return;
    const blob = new Blob([msg.text], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: msg.name });
    a.click();
    URL.revokeObjectURL(a.href);
  };
  const events = ["cells", "skeleton_name", "message", "_skeleton", "_choices", "_verdict", "_history"];
  for (const name of events) model.on(`change:${name}`, schedule);
  model.on("msg:custom", download);
  draw();
  return () => {
    for (const name of events) model.off(`change:${name}`, schedule);
    model.off("msg:custom", download);
  };
}

export default { render };

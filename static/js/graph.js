// Graphs drawn as SVG: the topology map and event lineage. The server computes the drawing
// (console/graph_layout.py: boxes and links in layout units, sent with the JSON twin);
// this script builds the SVG elements from it, starts at a scale where the labels are
// readable, and zooms and pans by changing the viewBox (wheel, pinch, drag, the buttons).
// Every node with a page is an <a> to it. Text is set with textContent, never parsed as
// HTML; direction-changing characters are shown, not obeyed.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const START_SCALE = 0.92;  // the smallest label (12 units) is 11 px at least
const MAX_FIT_SCALE = 1.3;  // a small graph is not blown up
const MIN_SCALE = 0.05;
const MAX_SCALE = 4;
const ZOOM_STEP = 1.25;
const MIN_HEIGHT_PX = 140;
const DRAG_PX = 4;  // a pointer that moved less clicked
const BOX_PAD_X = 8;  // as PAD_X in console/graph_layout.py
const LINE_PX = 15;
const PAD_Y = 5;

// Direction-changing characters (U+202E and kin) are shown as \u202e, never obeyed, as
// the server does for the pages: "\u202elive" must not read as "evil" in a label.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
function shown(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function svg(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, String(value));
  return element;
}

function titled(element, text) {
  const title = svg("title");
  title.textContent = shown(text);
  element.appendChild(title);
  return element;
}

// A link stays on this console: a path, never "//host" nor "/\host" (read as "//host").
function safeUrl(url, prefix) {
  return typeof url === "string" && url.startsWith(prefix) && !/^\/[\/\\]/.test(url) ? url : "";
}

function rate(perSecond) {
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(2);
}

// What differs between the two graphs: classes, links, tooltips, where to start.
const KINDS = {
  topology: {
    urlPrefix: "/",
    prepare(graph) {
      const failing = new Set();
      for (const edge of graph.edges) if (edge.error_rate > 0) failing.add(edge.target);
      return { failing };
    },
    boxClass(node, context) {
      const classes = [`gn-${node.kind}`];
      if (node.synthetic) classes.push("gn-synthetic");
      if (context.failing.has(node.id) || (node.lag && node.lag.status === "ERR")) classes.push("gn-failing");
      return classes;
    },
    linkClass(edges) {
      const classes = [];
      if (edges.some((e) => e.error_rate > 0)) classes.push("gl-failing");
      if (edges.some((e) => e.kind === "dead-letter")) classes.push("gl-dead-letter");
      return classes;
    },
    linkWidth(edges) {
      const perSecond = edges.reduce((sum, e) => sum + e.rate_per_s, 0);
      return Math.min(7, 1.2 + Math.log10(1 + perSecond * 10) * 2);
    },
    linkTitle(edges, from, to) {
      return edges.map((e) => {
        const errors = e.error_rate > 0 ? ` · ${(e.error_rate * 100).toFixed(1)} % failed` : "";
        return `${from.name} → ${to.name}: ${e.kind}, ${rate(e.rate_per_s)}/s${errors}`;
      }).join("\n");
    },
    focus() { return null; },  // a graph too wide to fit starts at its left
    say(graph) {
      return `${graph.nodes.length} nodes, ${graph.edges.length} edges in the last ` +
        `${graph.window_minutes} minutes.`;
    },
  },
  lineage: {
    urlPrefix: "/events/",
    prepare() { return {}; },
    boxClass(node) {
      const classes = ["gn-event"];
      if (node.root) classes.push("gn-root");
      if (node.dlq) classes.push("gn-dlq");
      if (node.failed) classes.push("gn-failed");
      return classes;
    },
    linkClass(edges) {
      const kinds = new Set(edges.map((e) => e.kind));
      // the strongest kind gives the line its look
      for (const kind of ["causation", "trace", "dead-letter", "correlation"]) {
        if (kinds.has(kind)) return [`gl-${kind}`];
      }
      return [];
    },
    linkWidth() { return 1.6; },
    linkTitle(edges, from, to) {
      const how = edges.map((e) => (e.via ? `${e.kind} via ${e.via}` : e.kind)).join(", ");
      return `${from.event_type || from.topic} → ${to.event_type || to.topic}: ${how}`;
    },
    focus(graph) { return graph.root; },
    say(graph) {
      return `${graph.nodes.length} events, ${graph.edges.length} edges` +
        (graph.truncated ? " (truncated)" : "") + ".";
    },
  },
};

// A path through the link's points with horizontal tangents; a link that goes backwards
// or stays in its layer comes as a cubic Bézier already (start, two controls, end).
function linkPath(link) {
  const p = link.points;
  if (link.back) return `M${p[0]} C${p[1]} ${p[2]} ${p[3]}`;
  let d = `M${p[0]}`;
  for (let i = 1; i < p.length; i++) {
    const [x0, y0] = p[i - 1];
    const [x1, y1] = p[i];
    if (y0 === y1) { d += ` L${x1},${y1}`; continue; }
    const mid = (x1 - x0) / 2;
    d += ` C${x0 + mid},${y0} ${x1 - mid},${y1} ${x1},${y1}`;
  }
  return d;
}

function arrowMarkers(defs, prefix) {
  for (const name of ["plain", "accent", "err"]) {
    const marker = svg("marker", {
      id: `${prefix}-arrow-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, markerUnits: "userSpaceOnUse", orient: "auto",
    });
    marker.setAttribute("class", `gm-${name}`);
    marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
    defs.appendChild(marker);
  }
}

function markerFor(classes) {
  if (classes.includes("gl-failing") || classes.includes("gl-dead-letter")) return "err";
  if (classes.includes("gl-causation")) return "accent";
  return "plain";
}

function build(container, graph, kind) {
  const drawing = graph.drawing;
  const nodes = new Map(graph.nodes.map((node) => [node.id, node]));
  const edges = new Map(graph.edges.map((edge) => [edge.id, edge]));
  const context = kind.prepare(graph);
  const prefix = container.id;
  const root = svg("svg", { class: "graph-svg" });
  const defs = svg("defs");
  arrowMarkers(defs, prefix);
  root.appendChild(defs);
  const linkLayer = svg("g", { class: "graph-links" });
  const boxLayer = svg("g", { class: "graph-boxes" });
  root.append(linkLayer, boxLayer);
  const boxes = new Map(drawing.boxes.map((box) => [box.id, box]));

  for (const link of drawing.links) {
    const drawn = link.edges.map((id) => edges.get(id)).filter(Boolean);
    const from = nodes.get((boxes.get(link.source) || {}).node);
    const to = nodes.get((boxes.get(link.target) || {}).node);
    if (!drawn.length || !from || !to) continue;
    const classes = ["graph-link", ...kind.linkClass(drawn)];
    const path = svg("path", {
      d: linkPath(link), class: classes.join(" "), "stroke-width": kind.linkWidth(drawn).toFixed(1),
      "marker-end": `url(#${prefix}-arrow-${markerFor(classes)})`,
    });
    linkLayer.appendChild(titled(path, kind.linkTitle(drawn, from, to)));
  }

  const drawnNodes = new Set();
  for (const box of drawing.boxes) {
    const node = nodes.get(box.node);
    if (!node) continue;
    drawnNodes.add(node.id);
    const url = safeUrl(node.url, kind.urlPrefix);
    const group = url ? svg("a", { href: url }) : svg("g");
    group.setAttribute("class", ["graph-box", ...kind.boxClass(node, context)].join(" "));
    group.setAttribute("data-node", node.id);
    group.setAttribute("data-box", box.id);
    group.appendChild(svg("rect", { x: box.x, y: box.y, width: box.w, height: box.h, rx: 6 }));
    box.lines.forEach((line, index) => {
      const text = svg("text", {
        x: box.x + box.w / 2, y: box.y + PAD_Y + LINE_PX * index + line.size,
        "font-size": line.size, "text-anchor": "middle",
      });
      if (line.bold) text.setAttribute("font-weight", "600");
      text.textContent = shown(line.text);
      group.appendChild(text);
    });
    boxLayer.appendChild(titled(group, box.title));
  }
  return { root, drawnNodes };
}

// Text wider than its box (a font wider than the server's estimate) is squeezed to fit.
function squeezeText(root) {
  for (const box of root.querySelectorAll(".graph-box")) {
    const rect = box.querySelector("rect");
    const room = Number(rect.getAttribute("width")) - 2 * BOX_PAD_X + 4;
    for (const text of box.querySelectorAll("text")) {
      if (text.getComputedTextLength() > room) {
        text.setAttribute("textLength", room.toFixed(1));
        text.setAttribute("lengthAdjust", "spacingAndGlyphs");
      }
    }
  }
}

// The view: which part of the drawing is shown (x, y: its top left, in layout units) and
// at what scale (screen pixels per layout unit). The viewBox follows it.
function viewer(container, root, drawing, focusBox) {
  const view = { x: 0, y: 0, scale: 1 };
  const size = () => ({ w: root.clientWidth || container.clientWidth, h: root.clientHeight || 1 });
  const apply = () => {
    const { w, h } = size();
    root.setAttribute("viewBox", `${view.x.toFixed(1)} ${view.y.toFixed(1)} ` +
      `${(w / view.scale).toFixed(1)} ${(h / view.scale).toFixed(1)}`);
    container.dataset.scale = view.scale.toFixed(3);
  };
  const centreOn = (x, y) => {
    const { w, h } = size();
    view.x = x - w / view.scale / 2;
    view.y = y - h / view.scale / 2;
  };
  const fit = () => {
    const { w, h } = size();
    view.scale = Math.min(w / drawing.width, h / drawing.height, MAX_FIT_SCALE);
    centreOn(drawing.width / 2, drawing.height / 2);
    apply();
  };
  const zoomAt = (factor, px, py) => {  // px, py: the fixed point, in pixels in the box
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.scale * factor));
    const ux = view.x + px / view.scale;
    const uy = view.y + py / view.scale;
    view.scale = scale;
    view.x = ux - px / scale;
    view.y = uy - py / scale;
    apply();
  };

  // The first view: the whole drawing if its labels are readable so, else a readable part
  // of it around the focus (this event) or its left edge. The box takes the height it needs.
  const width = container.clientWidth;
  const maxHeight = Math.max(MIN_HEIGHT_PX, Math.round(window.innerHeight * 0.8));
  const whole = Math.min(width / drawing.width, maxHeight / drawing.height, MAX_FIT_SCALE);
  view.scale = whole >= START_SCALE ? whole : START_SCALE;
  root.style.height = `${Math.min(maxHeight, Math.max(MIN_HEIGHT_PX, Math.ceil(drawing.height * view.scale) + 2))}px`;
  if (whole >= START_SCALE) {
    centreOn(drawing.width / 2, drawing.height / 2);
  } else if (focusBox) {
    centreOn(focusBox.x + focusBox.w / 2, focusBox.y + focusBox.h / 2);
    // no empty margin where the drawing could show more (this event may be its first)
    const { w, h } = size();
    view.x = Math.max(0, Math.min(view.x, drawing.width - w / view.scale));
    view.y = Math.max(0, Math.min(view.y, drawing.height - h / view.scale));
    if (drawing.height * view.scale < h) view.y = drawing.height / 2 - h / view.scale / 2;
  } else {
    const { h } = size();
    view.x = 0;
    view.y = drawing.height / 2 - h / view.scale / 2;
  }
  apply();
  container.dataset.whole = whole >= START_SCALE ? "1" : "0";

  // Wheel and trackpad pinch (a wheel event with ctrlKey) zoom around the pointer.
  root.addEventListener("wheel", (event) => {
    event.preventDefault();
    const bounds = root.getBoundingClientRect();
    const lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? bounds.height : 1;
    zoomAt(Math.exp(-event.deltaY * lines * (event.ctrlKey ? 0.01 : 0.0015)),
      event.clientX - bounds.left, event.clientY - bounds.top);
  }, { passive: false });

  // Drag to pan; two fingers pinch. A drag never counts as a click on a node.
  const pointers = new Map();
  let moved = false;
  let pinch = 0;
  root.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY, startX: event.clientX, startY: event.clientY });
    if (pointers.size === 1) moved = false;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = Math.hypot(a.x - b.x, a.y - b.y);
    }
  });
  root.addEventListener("pointermove", (event) => {
    const pointer = pointers.get(event.pointerId);
    if (!pointer) return;
    if (!moved && Math.hypot(event.clientX - pointer.startX, event.clientY - pointer.startY) < DRAG_PX) return;
    if (!moved) {
      moved = true;
      root.setPointerCapture(event.pointerId);
      root.classList.add("graph-dragging");
    }
    const dx = event.clientX - pointer.x;
    const dy = event.clientY - pointer.y;
    pointer.x = event.clientX;
    pointer.y = event.clientY;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a.x - b.x, a.y - b.y);
      const bounds = root.getBoundingClientRect();
      if (pinch > 0) zoomAt(distance / pinch, (a.x + b.x) / 2 - bounds.left, (a.y + b.y) / 2 - bounds.top);
      pinch = distance;
      return;
    }
    view.x -= dx / view.scale;
    view.y -= dy / view.scale;
    apply();
  });
  const release = (event) => {
    pointers.delete(event.pointerId);
    if (pointers.size < 2) pinch = 0;
    if (!pointers.size) root.classList.remove("graph-dragging");
  };
  root.addEventListener("pointerup", release);
  root.addEventListener("pointercancel", release);
  root.addEventListener("click", (event) => {
    if (moved) {  // the end of a drag: stay
      event.preventDefault();
      event.stopPropagation();
      moved = false;
    }
  }, true);

  const centre = (factor) => {
    const { w, h } = size();
    zoomAt(factor, w / 2, h / 2);
  };
  return { fit, zoomIn: () => centre(ZOOM_STEP), zoomOut: () => centre(1 / ZOOM_STEP), apply };
}

function loadGraph(container) {
  const started = performance.now();
  const request = fetch(container.dataset.src, { headers: { "Accept": "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    })
    .then((graph) => ({ graph, fetchMs: performance.now() - started }));
  request.catch(() => {});  // reported when drawn
  return request;
}

function drawGraph(container, request) {
  const kind = KINDS[container.dataset.graph];
  const section = container.closest("section") || document;
  const status = section.querySelector(".graph-status");
  const say = (text) => { if (status) status.textContent = text; };
  if (!kind) return;
  request
    .then(({ graph, fetchMs }) => {
      const fetched = performance.now();
      const drawing = graph.drawing;
      if (!drawing || !drawing.boxes.length) {
        say(kind.say(graph));
        return;
      }
      const { root, drawnNodes } = build(container, graph, kind);
      container.replaceChildren(root);
      squeezeText(root);
      const focusId = kind.focus(graph);
      const focusBox = drawing.boxes.find((box) => box.node === focusId) || null;
      const view = viewer(container, root, drawing, focusBox);
      for (const [selector, action] of [[".graph-zoom-in", view.zoomIn], [".graph-zoom-out", view.zoomOut], [".graph-fit", view.fit]]) {
        const button = section.querySelector(selector);
        if (button) button.addEventListener("click", action);
      }
      window.addEventListener("resize", view.apply);
      const built = performance.now();
      // The browser paints on the next animation frame: the graph is drawn after it
      // (bench/lineage.py reads these figures).
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const done = performance.now();
        container.dataset.nodes = String(drawnNodes.size);
        container.dataset.fetchMs = String(Math.round(fetchMs));
        container.dataset.drawMs = String(Math.round(built - fetched));
        container.dataset.paintMs = String(Math.round(done - fetched));
        container.dataset.doneMs = String(Math.round(done));  // since navigation start
        container.dataset.rendered = "1";
      }));
      const where = container.dataset.whole === "1" ? "" : " Zoomed in to read it: Fit shows all of it.";
      say(`${kind.say(graph)}${where} Click a node to open it; drag to pan, wheel or pinch to zoom.`);
    })
    .catch((error) => say(`Could not load the graph: ${error.message}`));
}

// The JSON is fetched at once (the script is deferred, so the document is parsed); the
// graph is drawn when it arrives.
for (const container of document.querySelectorAll(".graph[data-src]")) {
  drawGraph(container, loadGraph(container));
}

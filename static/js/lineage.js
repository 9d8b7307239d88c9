// Lineage graph (Cytoscape.js): nodes come with preset positions computed by the server
// (causes on the left, effects on the right). Click a node to open its event; drag to
// pan, wheel to zoom. Labels are drawn on the canvas, never parsed as HTML.
"use strict";

// Direction-changing characters (U+202E and kin) are shown as \u202e, never obeyed, as
// the server does for the pages: "\u202elive" must not read as "evil" in a label.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
function shown(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const LINEAGE_STYLE = [
  { selector: "node", style: {
    "shape": "round-rectangle", "width": 190, "height": 46, "background-color": "#eef1f6",
    "border-width": 1, "border-color": "#8a93a6", "label": "data(label)", "font-size": 10,
    "text-wrap": "wrap", "text-max-width": 180, "text-valign": "center", "color": "#1d2330" } },
  { selector: "node[?root]", style: { "border-width": 3, "border-color": "#2554c7" } },
  { selector: "node[?dlq]", style: { "border-width": 3, "border-color": "#c53030", "border-style": "double" } },
  { selector: "node[?failed]", style: { "background-color": "#fde2e2" } },
  { selector: "edge", style: {
    "width": 1.5, "curve-style": "straight", "target-arrow-shape": "triangle",
    "line-color": "#6b7385", "target-arrow-color": "#6b7385", "label": "data(via)",
    "font-size": 8, "color": "#6b7385", "text-rotation": "autorotate" } },
  { selector: "edge[kind = 'causation']", style: { "line-color": "#2554c7", "target-arrow-color": "#2554c7" } },
  { selector: "edge[kind = 'dead-letter']", style: { "line-color": "#c53030", "target-arrow-color": "#c53030", "line-style": "dotted" } },
  { selector: "edge[kind = 'correlation']", style: { "line-style": "dashed", "line-color": "#a0a7b5" } },
];

// In large graphs, labels under this many screen pixels are not drawn (zoomed far out they
// are unreadable anyway), which keeps painting hundreds of nodes short.
const MIN_READABLE_FONT_PX = 5;

function loadLineage(container) {
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

function drawLineage(container, request) {
  const status = document.getElementById("lineage-status");
  const say = (text) => { if (status) status.textContent = text; };
  if (typeof window.cytoscape !== "function") {
    say("The graph needs the Cytoscape.js bundle in static/vendor/; the edges are listed below.");
    return;
  }
  request
    .then(({ graph, fetchMs }) => {
      const fetched = performance.now();
      const elements = [];
      for (const node of graph.nodes) {
        if (typeof node.url !== "string" || !node.url.startsWith("/events/")) continue;
        elements.push({ group: "nodes", data: {
          id: node.id, label: shown(node.label), url: node.url, root: node.root, dlq: node.dlq,
          failed: node.failed || "" }, position: { x: node.x, y: node.y } });
      }
      for (const edge of graph.edges) {
        elements.push({ group: "edges", data: {
          id: edge.id, source: edge.source, target: edge.target, kind: edge.kind,
          via: shown(edge.via || "") } });
      }
      const large = elements.length > 400;
      const style = large
        ? LINEAGE_STYLE.concat([{ selector: "node, edge", style: { "min-zoomed-font-size": MIN_READABLE_FONT_PX } }])
        : LINEAGE_STYLE;
      const cy = window.cytoscape({
        container, elements, style, layout: { name: "preset" },
        boxSelectionEnabled: false, autoungrabify: true, minZoom: 0.05, maxZoom: 3,
        wheelSensitivity: 0.3, pixelRatio: 1, textureOnViewport: large,
        hideEdgesOnViewport: large,
      });
      cy.on("tap", "node", (event) => { window.location.assign(event.target.data("url")); });
      const fit = document.getElementById("lineage-fit");
      if (fit) fit.addEventListener("click", () => cy.fit(undefined, 30));
      cy.fit(undefined, 30);
      if (cy.zoom() < 0.4) {  // a wide graph: start readable, around this event
        cy.zoom(0.6);
        cy.center(cy.getElementById(graph.root));
      }
      const built = performance.now();
      window.lineageGraph = cy;
      say(`${graph.nodes.length} events, ${graph.edges.length} edges` +
          (graph.truncated ? " (truncated)" : "") + ". Click a node to open it; drag to pan, scroll to zoom.");
      // Cytoscape paints on the next animation frame: the graph is drawn after it.
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const done = performance.now();
        container.dataset.nodes = String(cy.nodes().length);
        container.dataset.fetchMs = String(Math.round(fetchMs));
        container.dataset.drawMs = String(Math.round(built - fetched));  // graph built
        container.dataset.paintMs = String(Math.round(done - fetched));  // and painted
        container.dataset.doneMs = String(Math.round(done));  // since navigation start
        container.dataset.rendered = "1";
      }));
    })
    .catch((error) => say(`Could not load the lineage: ${error.message}`));
}

// This script runs before the Cytoscape bundle (both deferred, in document order): the
// JSON is fetched while the bundle is parsed, and drawn once the document is ready.
const lineageContainer = document.getElementById("lineage-graph");
if (lineageContainer) {
  const lineageRequest = loadLineage(lineageContainer);
  const draw = () => drawLineage(lineageContainer, lineageRequest);
  if (document.readyState === "complete") draw();
  else document.addEventListener("DOMContentLoaded", draw);
}

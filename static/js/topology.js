// Topology map (Cytoscape.js): services -> topics -> consumer groups -> services, with
// positions computed by the server (layers along the flow, left to right). Click a topic to
// open its page, a group to open its lag page, a service to search its events. Names are
// drawn on the canvas, never parsed as HTML.
"use strict";

const TOPOLOGY_STYLE = [
  { selector: "node", style: {
    "label": "data(label)", "font-size": 10, "text-wrap": "wrap", "text-max-width": 170,
    "text-valign": "center", "color": "#1d2330", "width": 180, "height": 40,
    "border-width": 1, "border-color": "#8a93a6" } },
  { selector: "node[kind = 'service']", style: { "shape": "ellipse", "background-color": "#e4ecff" } },
  { selector: "node[kind = 'topic']", style: { "shape": "round-rectangle", "background-color": "#eef1f6" } },
  { selector: "node[kind = 'group']", style: { "shape": "hexagon", "background-color": "#e6f4ea" } },
  { selector: "node[?synthetic]", style: { "border-style": "dashed" } },
  { selector: "node[?failing]", style: { "border-color": "#c53030", "border-width": 3 } },
  { selector: "edge", style: {
    "width": "data(width)", "curve-style": "bezier", "target-arrow-shape": "triangle",
    "line-color": "#6b7385", "target-arrow-color": "#6b7385", "label": "data(label)",
    "font-size": 8, "color": "#4a5163", "text-rotation": "autorotate",
    "text-background-color": "#ffffff", "text-background-opacity": 0.8 } },
  { selector: "edge[?failing]", style: { "line-color": "#c53030", "target-arrow-color": "#c53030" } },
  { selector: "edge[kind = 'dead-letter']", style: { "line-style": "dotted" } },
];

// Direction-changing characters (U+202E and kin) are shown as \u202e, never obeyed, as
// the server does for the pages: "\u202elive" must not read as "evil" in a label.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
function shown(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function rateLabel(edge) {
  const rate = edge.rate_per_s >= 10 ? edge.rate_per_s.toFixed(0) : edge.rate_per_s.toFixed(2);
  const errors = edge.error_rate > 0 ? ` · ${(edge.error_rate * 100).toFixed(1)} % err` : "";
  return `${rate}/s${errors}`;
}

function nodeLabel(node) {
  const full = shown(node.name);
  const name = full.length > 60 ? full.slice(0, 59) + "…" : full;
  if (node.kind === "topic") return `${name}\n${node.rate_per_s.toFixed(2)} rec/s`;
  if (node.kind === "group" && node.lag) return `${name}\n${node.lag.status} · lag ${node.lag.total_lag}`;
  return name;
}

function safeUrl(url) {
  return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : "";
}

function drawTopology(container) {
  const status = document.getElementById("topology-status");
  const say = (text) => { if (status) status.textContent = text; };
  if (typeof window.cytoscape !== "function") {
    say("The map needs the Cytoscape.js bundle in static/vendor/; the edges are listed below.");
    return;
  }
  fetch(container.dataset.src, { headers: { "Accept": "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    })
    .then((graph) => {
      const failing = new Set();
      const elements = [];
      for (const edge of graph.edges) {
        if (edge.error_rate > 0) failing.add(edge.target);
        elements.push({ group: "edges", data: {
          id: edge.id, source: edge.source, target: edge.target, kind: edge.kind,
          label: rateLabel(edge), failing: edge.error_rate > 0,
          width: Math.min(8, 1 + Math.log10(1 + edge.rate_per_s * 10)) } });
      }
      const nodes = graph.nodes.map((node) => ({ group: "nodes", data: {
        id: node.id, kind: node.kind, name: node.name, label: nodeLabel(node),
        url: safeUrl(node.url), synthetic: Boolean(node.synthetic),
        failing: failing.has(node.id) || Boolean(node.lag && node.lag.status === "ERR") },
        position: { x: node.x, y: node.y } }));
      const cy = window.cytoscape({
        container, elements: nodes.concat(elements), style: TOPOLOGY_STYLE,
        layout: { name: "preset" }, boxSelectionEnabled: false, autoungrabify: true,
        minZoom: 0.1, maxZoom: 3, wheelSensitivity: 0.3,
        textureOnViewport: elements.length > 300, hideEdgesOnViewport: elements.length > 300,
      });
      cy.on("tap", "node", (event) => {
        const url = event.target.data("url");
        if (url) window.location.assign(url);
      });
      const fit = document.getElementById("topology-fit");
      if (fit) fit.addEventListener("click", () => cy.fit(undefined, 30));
      cy.fit(undefined, 30);
      if (cy.zoom() > 1.2) {  // a small map: do not blow it up
        cy.zoom(1.2);
        cy.center();
      }
      container.dataset.nodes = String(cy.nodes().length);
      container.dataset.rendered = "1";
      window.topologyGraph = cy;
      say(`${graph.nodes.length} nodes, ${graph.edges.length} edges in the last ` +
          `${graph.window_minutes} minutes. Click a node to open it; drag to pan, scroll to zoom.`);
    })
    .catch((error) => say(`Could not load the topology: ${error.message}`));
}

document.addEventListener("DOMContentLoaded", () => {
  const container = document.getElementById("topology-graph");
  if (container) drawTopology(container);
});

// Consumer groups: trend sparklines on the list and the lag-over-time chart of a group.
// Data comes from data attributes and the page's JSON twin; nothing here builds HTML.
"use strict";

// Colours come from the page's theme (static/css/eventscope.css), read at each drawing.
function themeColour(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// The time zone the reader chose in the top bar (static/js/eventscope.js): UTC or local.
function chartZone() {
  let local = false;
  try {
    local = localStorage.getItem("eventscope.timeZone") === "local";
  } catch (error) {
    local = false;
  }
  const name = local ? Intl.DateTimeFormat().resolvedOptions().timeZone : "Etc/UTC";
  return { tz: name || "Etc/UTC", label: local ? `local time (${name})` : "UTC" };
}

function drawSparklines(root) {
  if (typeof uPlot === "undefined") return;
  root.querySelectorAll(".spark[data-points]:not([data-drawn])").forEach((el) => {
    el.dataset.drawn = "1";
    const values = el.dataset.points.split(",").filter((v) => v !== "").map(Number);
    if (values.length < 2 || values.some((v) => !Number.isFinite(v))) return;
    const xs = values.map((_, i) => i);
    new uPlot({
      width: 120, height: 28, pxAlign: 0,
      cursor: { show: false }, legend: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      // A floor of 10 messages, so that a lag of 0-2 does not fill the line's height.
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(10, max)] } },
      series: [{}, { stroke: themeColour("--chart-1", "#2554c7"), fill: themeColour("--chart-1-fill", "transparent"),
        width: 1, points: { show: false } }],
    }, [xs, values], el);
  });
}

async function drawLagChart(root) {
  const el = root.querySelector("#lag-chart[data-series-url]");
  if (!el || el.dataset.drawn || typeof uPlot === "undefined") return;
  el.dataset.drawn = "1";
  let body;
  try {
    const response = await fetch(el.dataset.seriesUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    body = await response.json();
  } catch (error) {
    el.textContent = `The chart could not be loaded: ${error.message}`;
    return;
  }
  const series = body.series || {};
  const times = (series.time_ms || []).map((ms) => ms / 1000);
  el.textContent = "";
  if (times.length === 0) {
    el.textContent = "No samples in this range yet.";
    return;
  }
  const note = document.createElement("p");
  note.className = "meta";
  note.textContent = `${times.length} point(s) from ${series.source}`;
  const zone = chartZone();
  const text = themeColour("--fg", "#1d2330");
  const grid = { stroke: themeColour("--line", "#dde1e8"), width: 1 };
  const axis = { stroke: text, grid, ticks: grid };
  const opts = {
    width: Math.max(280, Math.min(el.clientWidth || 900, 1300)), height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone.tz),
    scales: { lag: { auto: true }, s: { auto: true } },
    axes: [{ ...axis, label: zone.label }, { ...axis, scale: "lag", label: "messages" },
      { ...axis, scale: "s", side: 1, label: "seconds", grid: { show: false } }],
    series: [
      {},
      { label: "total lag", scale: "lag", stroke: themeColour("--chart-1", "#2554c7"), width: 1.5 },
      { label: "max time lag (s)", scale: "s", stroke: themeColour("--chart-2", "#a86b00"), width: 1.5, spanGaps: false },
    ],
  };
  new uPlot(opts, [times, series.total_lag || [], series.max_time_lag_s || []], el);
  el.dataset.zone = zone.label;  // what the time axis shows, for a reader's tools and the tests
  el.appendChild(note);
}

function setUpGroups(root) {
  drawSparklines(root);
  drawLagChart(root);
}

document.addEventListener("DOMContentLoaded", () => setUpGroups(document));
document.addEventListener("htmx:afterSwap", () => setUpGroups(document));
document.addEventListener("eventscope:refreshed", () => setUpGroups(document));

// A new time zone or theme: the charts are drawn again in it.
function redrawGroups() {
  document.querySelectorAll(".spark[data-drawn], #lag-chart[data-drawn]").forEach((el) => {
    delete el.dataset.drawn;
    el.replaceChildren();
  });
  setUpGroups(document);
}
document.addEventListener("eventscope:timezone", redrawGroups);
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawGroups);

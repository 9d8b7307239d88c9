// Trace timeline: the minimap jumps to the part of a long flow that was clicked; dragging
// across the time axis or the bars zooms into that time range (the server draws it again
// from ?from_ms=&to_ms=, so "Reset zoom" is a plain link and the page works without this).
"use strict";

function setUpTraceMinimap() {
  const minimap = document.getElementById("trace-minimap");
  const rows = document.querySelectorAll("#trace-rows .tl-row");
  if (!minimap || !rows.length) return;
  minimap.addEventListener("click", (event) => {
    const box = minimap.getBoundingClientRect();
    const share = Math.min(Math.max((event.clientY - box.top) / box.height, 0), 1);
    const target = rows[Math.min(rows.length - 1, Math.floor(share * rows.length))];
    target.scrollIntoView({ block: "center" });
    target.classList.add("tl-focus");
    setTimeout(() => target.classList.remove("tl-focus"), 1500);
  });
}

const BRUSH_MIN_PX = 5; // a shorter drag is a click (it opens the row)

// The lane position (percent) → ms from the flow's start, through the axis's segments
// ([from_ms, to_ms, left, right]; collapsed idle stretches are narrow segments).
function msAtPercent(segments, percent) {
  for (const [fromMs, toMs, left, right] of segments) {
    if (percent <= right) {
      const share = right > left ? Math.max(percent - left, 0) / (right - left) : 0;
      return fromMs + share * (toMs - fromMs);
    }
  }
  return segments.length ? segments[segments.length - 1][1] : 0;
}

function setUpTraceZoom() {
  const timeline = document.getElementById("trace-timeline");
  const axis = document.getElementById("trace-axis");
  if (!timeline || !axis) return;
  let segments;
  try {
    segments = JSON.parse(axis.dataset.segments || "[]");
  } catch (error) {
    return;
  }
  if (!segments.length || segments[segments.length - 1][1] <= segments[0][0]) return;
  const hint = document.getElementById("trace-zoom-hint");
  if (hint) hint.hidden = false;
  const brush = document.createElement("div");
  brush.className = "tl-brush";
  brush.hidden = true;
  timeline.appendChild(brush);
  let drag = null;
  let swallowClick = false;

  const clampX = (x) => {
    const box = axis.getBoundingClientRect();
    return Math.min(Math.max(x, box.left), box.right);
  };
  const draw = () => {
    const outer = timeline.getBoundingClientRect();
    const left = Math.min(drag.startX, drag.x);
    brush.style.left = `${left - outer.left}px`;
    brush.style.width = `${Math.abs(drag.x - drag.startX)}px`;
    brush.hidden = false;
  };

  timeline.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !event.target.closest("#trace-axis, .tl-lane")) return;
    drag = { startX: clampX(event.clientX), x: clampX(event.clientX), id: event.pointerId };
    event.preventDefault(); // no text selection while brushing
  });
  timeline.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.id) return;
    drag.x = clampX(event.clientX);
    if (Math.abs(drag.x - drag.startX) < BRUSH_MIN_PX) return;
    // Captured only once it is a drag: a plain click still reaches the row it opens.
    if (!timeline.hasPointerCapture(event.pointerId)) timeline.setPointerCapture(event.pointerId);
    draw();
  });
  const finish = (event) => {
    if (!drag || event.pointerId !== drag.id) return;
    const { startX, x } = drag;
    drag = null;
    if (Math.abs(x - startX) < BRUSH_MIN_PX || event.type === "pointercancel") {
      brush.hidden = true;
      return;
    }
    swallowClick = true;
    setTimeout(() => {
      swallowClick = false;
    }, 0);
    const box = axis.getBoundingClientRect();
    const percent = (clientX) => (100 * (clientX - box.left)) / box.width;
    const fromMs = msAtPercent(segments, percent(Math.min(startX, x)));
    const toMs = msAtPercent(segments, percent(Math.max(startX, x)));
    if (toMs <= fromMs) {
      brush.hidden = true;
      return;
    }
    const query = new URLSearchParams({ from_ms: fromMs.toFixed(3), to_ms: toMs.toFixed(3) });
    window.location.assign(`${axis.dataset.zoomUrl}?${query}`);
  };
  timeline.addEventListener("pointerup", finish);
  timeline.addEventListener("pointercancel", finish);
  // The click that ends a drag over a row must not open or close it.
  timeline.addEventListener(
    "click",
    (event) => {
      if (swallowClick) {
        swallowClick = false;
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true,
  );
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTraceMinimap();
  setUpTraceZoom();
  const timeline = document.getElementById("trace-timeline");
  if (timeline) timeline.dataset.ready = "1";
});

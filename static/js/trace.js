// Trace timeline: the minimap jumps to the part of a long flow that was clicked.
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

document.addEventListener("DOMContentLoaded", () => {
  setUpTraceMinimap();
  const timeline = document.getElementById("trace-timeline");
  if (timeline) timeline.dataset.ready = "1";
});

// Job pages: refresh the progress block while the job runs; select-all on DLQ lists.
"use strict";

function followJob(block) {
  const url = block.dataset.progressUrl;
  const tick = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (response.ok) {
        const holder = document.createElement("div");
        holder.innerHTML = await response.text();  // server-rendered, escaped by Jinja
        block.replaceChildren(...holder.childNodes);
      }
    } catch (error) { /* the next tick retries */ }
    const status = block.querySelector("#job-status");
    const state = status ? status.textContent.trim() : "";
    if (["done", "cancelled", "failed"].includes(state)) {
      block.dataset.status = state;
      return;
    }
    setTimeout(tick, 1000);
  };
  if (!["done", "cancelled", "failed"].includes(block.dataset.status)) setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  const block = document.getElementById("job-progress");
  if (block) followJob(block);
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('#dlq-messages input[name="item"]').forEach((box) => {
        box.checked = all.checked;
      });
    });
  }
});

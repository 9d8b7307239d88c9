// Small progressive enhancements; every page works without this file.
"use strict";

// Live tail on the events page: new matching rows arrive as server-sent events whose data
// is server-rendered (escaped) table rows.
function setUpLiveTail(root) {
  const toggle = root.querySelector("#live-tail");
  if (!toggle || toggle.dataset.bound) return;
  toggle.dataset.bound = "1";
  root.querySelectorAll("#event-rows tr").forEach((row) => { row.dataset.seen = "1"; });
  let source = null;
  const status = root.querySelector("#tail-status");
  const stop = () => {
    if (source) source.close();
    source = null;
    if (status) status.textContent = "";
  };
  toggle.addEventListener("change", () => {
    if (!toggle.checked) return stop();
    source = new EventSource(toggle.dataset.tailUrl);
    if (status) status.textContent = "following new events…";
    source.addEventListener("rows", (message) => {
      const body = document.getElementById("event-rows");
      if (!body) return;
      body.insertAdjacentHTML("afterbegin", message.data);
      body.querySelectorAll("tr:not([data-seen])").forEach((row) => {
        row.dataset.seen = "1";
        row.classList.add("fresh");
      });
    });
    source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
  });
}

// htmx requests that change something carry the CSRF token as a header.
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) event.detail.headers["X-CSRF-Token"] = meta.content;
});

document.addEventListener("DOMContentLoaded", () => {
  setUpLiveTail(document);
  document.body.dataset.ready = "1";
});
document.addEventListener("htmx:afterSwap", (event) => setUpLiveTail(event.target.ownerDocument || document));

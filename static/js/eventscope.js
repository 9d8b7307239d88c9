// Small progressive enhancements; every page works without this file.
"use strict";

// Live tail on the events page. htmx's SSE extension holds the connection and puts the
// server-rendered rows on top; this only switches it on and off (pausing closes the
// stream, resuming reads on from the newest row shown) and keeps the newest rows.
function setUpLiveTail(root) {
  const toggle = root.querySelector("#live-tail");
  const slot = root.querySelector("#tail-slot");
  if (!toggle || !slot || toggle.dataset.bound || !window.htmx) return;
  toggle.dataset.bound = "1";
  const status = root.querySelector("#tail-status");
  const keep = Number(toggle.dataset.keep) || 200;
  toggle.addEventListener("change", () => {
    if (!toggle.checked) {
      htmx.swap(slot, "", { swapStyle: "innerHTML" });  // htmx closes the stream
      if (status) status.textContent = "paused";
      return;
    }
    const listener = document.createElement("span");
    listener.setAttribute("hx-ext", "sse");
    listener.setAttribute("sse-connect", `${toggle.dataset.tailUrl}&after=${toggle.dataset.after}`);
    listener.setAttribute("sse-swap", "rows");
    listener.setAttribute("hx-target", "#event-rows");
    listener.setAttribute("hx-swap", "afterbegin");
    slot.replaceChildren(listener);
    htmx.process(listener);
    if (status) status.textContent = "following new events…";
  });
  document.body.addEventListener("htmx:sseMessage", (event) => {
    if (event.detail.type !== "rows") return;
    if (event.detail.lastEventId) toggle.dataset.after = event.detail.lastEventId;
    const rows = document.querySelectorAll("#event-rows tr");
    for (let i = keep; i < rows.length; i++) rows[i].remove();
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

// Forms that destroy something ask first: <form data-confirm="Delete ...?">.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Pages that keep up by themselves (templates/_refresh.html): the page is fetched again
// and one region replaced, with "updated N s ago" and a pause.
function setUpRefresh(control) {
  if (control.dataset.bound) return;
  control.dataset.bound = "1";
  const id = control.dataset.refresh;
  const everyMs = (Number(control.dataset.every) || 10) * 1000;
  const age = control.querySelector(".refresh-age");
  const pause = control.querySelector(".refresh-pause");
  let updated = Date.now();
  let problem = null;
  let busy = false;
  const say = () => {
    const seconds = Math.round((Date.now() - updated) / 1000);
    const when = seconds < 2 ? "updated just now" : `updated ${seconds} s ago`;
    age.textContent = problem ? `not updated (${problem}); ${when}` : pause.checked ? `paused · ${when}` : when;
  };
  pause.addEventListener("change", say);
  setInterval(say, 1000);
  setInterval(async () => {
    const region = document.getElementById(id);
    if (!region || pause.checked || document.hidden || busy) return;
    const active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName)) return;
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(id);
      if (!fresh) throw new Error("the page changed");
      region.replaceWith(document.adoptNode(fresh));
      if (window.htmx) window.htmx.process(fresh);
      document.dispatchEvent(new CustomEvent("eventscope:refreshed", { detail: { id } }));
      updated = Date.now();
      problem = null;
    } catch (error) {
      problem = error.message;
    } finally {
      busy = false;
      say();
    }
  }, everyMs);
}
document.addEventListener("DOMContentLoaded", () => {
  for (const control of document.querySelectorAll("[data-refresh]")) setUpRefresh(control);
});

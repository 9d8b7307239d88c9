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
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(id);
      if (!fresh) throw new Error("the page changed");
      region.replaceWith(document.adoptNode(fresh));
      // The nav's firing count and the pipeline banner follow every refresh too.
      for (const slot of document.querySelectorAll("[data-follows-refresh][id]")) {
        const newer = page.getElementById(slot.id);
        if (newer) slot.replaceWith(document.adoptNode(newer));
      }
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

// The elements of `root` (an element or the document) that match, itself included.
function matching(root, selector) {
  const found = [...root.querySelectorAll(selector)];
  return root instanceof Element && root.matches(selector) ? [root, ...found] : found;
}

// The areas fold behind the Menu button on a narrow screen (CSS hides the button on a wide
// one); without this script the whole list shows.
function setUpNavToggle() {
  const toggle = document.querySelector(".nav-toggle");
  const nav = document.getElementById("nav-areas");
  if (!toggle || !nav) return;
  const show = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("collapsed", !open);
  };
  show(false);
  toggle.hidden = false;
  toggle.addEventListener("click", () => show(toggle.getAttribute("aria-expanded") !== "true"));
}

// Tables scroll sideways inside a box of their own, so a wide one never widens the page.
function wrapTables(root) {
  for (const table of matching(root, "table.grid")) {
    if (table.parentElement && table.parentElement.classList.contains("table-scroll")) continue;
    const box = document.createElement("div");
    box.className = "table-scroll";
    table.replaceWith(box);
    box.appendChild(table);
  }
}

// A box that scrolls (a wide table, a long payload) can be focused, so that a keyboard can
// scroll it too.
function focusScrollers(root) {
  for (const box of matching(root, ".table-scroll, pre")) {
    const scrolls = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
    if (scrolls && !box.hasAttribute("tabindex")) box.tabIndex = 0;
  }
}

// One time zone on every page: UTC as rendered, or the browser's own, remembered. Every
// time is a <time datetime="…Z"> (console/templating.py); its UTC text is kept in
// data-utc so that switching back restores it.
const ZONE_KEY = "eventscope.timeZone";

function shownZone() {
  try {
    return localStorage.getItem(ZONE_KEY) === "local" ? "local" : "utc";
  } catch (error) {
    return "utc";
  }
}

function localZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

function localText(moment, utcText) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  const date = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}`;
  let clock = `${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
  if (/\d:\d\d:\d\d/.test(utcText)) clock += `:${pad(moment.getSeconds())}`;
  if (/\d:\d\d:\d\d\.\d/.test(utcText)) clock += `.${pad(moment.getMilliseconds(), 3)}`;
  return `${date}${utcText.includes("T") ? "T" : " "}${clock}`;
}

function showTimes(root) {
  const zone = shownZone();
  for (const element of matching(root, "time[datetime]")) {
    if (element.dataset.utc === undefined) element.dataset.utc = element.textContent;
    if ((element.dataset.zone || "utc") === zone) continue;
    element.dataset.zone = zone;
    const moment = new Date(element.getAttribute("datetime"));
    if (zone === "local" && !Number.isNaN(moment.getTime())) {
      element.textContent = localText(moment, element.dataset.utc);
      element.title = `${element.dataset.utc} (UTC)`;
    } else {
      element.textContent = element.dataset.utc;
      element.removeAttribute("title");
    }
  }
  for (const label of matching(root, "[data-zone-label]")) {
    label.textContent = zone === "local" ? "local" : "UTC";
  }
}

function setUpZoneToggle() {
  const toggle = document.getElementById("time-zone");
  if (!toggle) return;
  const say = () => {
    const local = shownZone() === "local";
    toggle.textContent = local ? `Local time (${localZoneName()})` : "UTC";
    toggle.title = local ? "Times are shown in your local time; switch to UTC" : "Times are shown in UTC; switch to your local time";
  };
  say();
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const next = shownZone() === "local" ? "utc" : "local";
    try {
      localStorage.setItem(ZONE_KEY, next);
    } catch (error) {
      return;  // nowhere to remember it: stay in UTC
    }
    say();
    showTimes(document);
    document.dispatchEvent(new CustomEvent("eventscope:timezone", { detail: { zone: next } }));
  });
}

// New content (htmx swaps, the live tail, the refreshed regions) gets the same treatment.
function tidy(root) {
  wrapTables(root);
  showTimes(root);
  focusScrollers(root);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpNavToggle();
  setUpZoneToggle();
  tidy(document);
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE && node.isConnected) tidy(node);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
});

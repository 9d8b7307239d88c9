// DLQ lists: the header checkbox selects every message for a redrive.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    document.querySelectorAll('#dlq-messages input[name="item"]').forEach((box) => {
      box.checked = all.checked;
    });
  });
});

// xact console: refreshes the summary on the globals page every 5 s. The
// pages work without it.
"use strict";
(function () {
  var box = document.getElementById("summary");
  if (!box || !window.fetch) return;
  function show(s) {
    box.querySelectorAll("[data-k]").forEach(function (el) {
      var v = s[el.dataset.k];
      if (v === undefined) return;
      if (typeof v === "boolean") v = v ? "yes" : "no";
      else if (el.dataset.k === "locks_held" && v < 0) v = "n/a";
      el.textContent = v;
    });
    box.classList.toggle("alert", s.parked > 0);
    box.classList.remove("stale");
  }
  function refresh() {
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(show)
      .catch(function () { box.classList.add("stale"); });
  }
  setInterval(refresh, 5000);
})();

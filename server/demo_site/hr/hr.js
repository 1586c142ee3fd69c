// PeoplePortal demo: a classic multi-page site. This script only adds small behaviours:
// profile tabs chosen by ?tab=..., a working-days counter and fake form submits.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  ready(function () {
    // Profile tabs: the server serves the same page; the tab comes from the query string.
    var panels = document.querySelectorAll("[data-panel]");
    if (panels.length) {
      var tab = new URLSearchParams(location.search).get("tab") || "personal";
      if (!document.querySelector('[data-panel="' + tab + '"]')) tab = "personal";
      Array.prototype.forEach.call(panels, function (p) { p.classList.toggle("active", p.getAttribute("data-panel") === tab); });
      Array.prototype.forEach.call(document.querySelectorAll("[data-tab]"), function (a) {
        if (a.getAttribute("data-tab") === tab) a.setAttribute("aria-current", "page");
      });
      var label = document.querySelector('[data-tab="' + tab + '"]');
      if (label) document.title = label.textContent + " · My profile · PeoplePortal";
    }

    // Time off: count working days (Mon–Fri) between the two dates.
    var form = document.getElementById("timeoff-form");
    if (form) {
      var update = function () {
        var s = form.elements.start.value, e = form.elements.end.value, days = 0;
        if (s && e) {
          for (var d = new Date(s + "T00:00:00"), end = new Date(e + "T00:00:00"); d <= end; d.setDate(d.getDate() + 1)) {
            if (d.getDay() !== 0 && d.getDay() !== 6) days++;
          }
        }
        if (form.elements.partial.value !== "Full days") days = Math.min(days, 1) / 2;
        form.elements.hours.value = String(days * 8);
      };
      form.addEventListener("change", update);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        update();
        var out = document.getElementById("timeoff-result");
        out.hidden = false;
        out.textContent = form.elements.hours.value === "0"
          ? "Choose the first and last day off."
          : "Request sent to Dana Whitfield for approval (" + form.elements.hours.value + " hours).";
      });
    }

    var bank = document.getElementById("bank-form");
    if (bank) bank.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var r = bank.elements.routing.value;
      bank.querySelector(".notice").textContent = /^\d{9}$/.test(r)
        ? "We sent a one-time code to your work phone to confirm this change."
        : "A routing number has exactly 9 digits.";
    });
  });
})();

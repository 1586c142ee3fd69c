// Inflow admin console: small progressive enhancements. Every page works without this file.
// Live Markdown preview: the server renders and sanitizes (server/render.py); the HTML is parsed
// with DOMParser (scripts in it never run) and its nodes moved in, never assigned to innerHTML.
"use strict";

(function () {
  const csrf = () => {
    const field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  };

  function livePreview(textarea) {
    const target = document.querySelector(textarea.dataset.preview);
    if (!target) return;
    let timer = 0;
    let seq = 0;
    const update = async () => {
      const mine = ++seq;
      const body = new URLSearchParams({ markdown: textarea.value });
      try {
        const resp = await fetch("/admin/preview", {
          method: "POST",
          headers: { "X-CSRF-Token": csrf() },
          body,
          credentials: "same-origin",
        });
        if (!resp.ok || mine !== seq) return;
        const { html } = await resp.json();
        const doc = new DOMParser().parseFromString(html, "text/html");
        target.replaceChildren(...Array.from(doc.body.childNodes));
      } catch (err) {
        // Offline or signed out: the Preview button still works.
      }
    };
    textarea.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(update, 300);
    });
    if (!target.childNodes.length && textarea.value) update();
  }

  document.querySelectorAll("textarea[data-preview]").forEach(livePreview);

  // The nav's groups (<details> menus, usable without this): one open at a time; Escape or a
  // click elsewhere closes it.
  const groups = Array.from(document.querySelectorAll("header nav details.navgroup"));
  groups.forEach((group) => {
    group.addEventListener("toggle", () => {
      if (group.open) groups.forEach((other) => other !== group && (other.open = false));
    });
    group.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !group.open) return;
      group.open = false;
      group.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", (event) => {
    groups.forEach((group) => {
      if (group.open && !group.contains(event.target)) group.open = false;
    });
  });

  // Confirm destructive buttons.
  document.querySelectorAll("button.danger").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.textContent.trim() + "?")) event.preventDefault();
    });
  });
})();

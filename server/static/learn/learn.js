/*
 * Progressive enhancement for the learner web app: every page works without it.
 * - registers the service worker (offline copies of the last aids read);
 * - on the signed-out page, removes those copies and the worker (where the browser ignored the
 *   Clear-Site-Data header of the sign-out);
 * - on the offline page, lists the aids saved on this device (text only).
 */
const AIDS = "learn-aids-v1";

async function clearOffline() {
  if ("caches" in window) {
    const names = await caches.keys();
    await Promise.all(
      names.filter((n) => n.startsWith("learn-")).map((n) => caches.delete(n)),
    );
  }
  if ("serviceWorker" in navigator) {
    const registrations = await navigator.serviceWorker.getRegistrations();
    await Promise.all(registrations.map((r) => r.unregister()));
  }
}

async function listSaved(list) {
  if (!("caches" in window)) return;
  const cache = await caches.open(AIDS);
  const requests = await cache.keys();
  if (!requests.length) return;
  const items = [];
  for (const request of requests.reverse()) {
    const response = await cache.match(request);
    if (!response) continue;
    const doc = new DOMParser().parseFromString(
      await response.text(),
      "text/html",
    );
    const heading = doc.querySelector("h1");
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = new URL(request.url).pathname;
    a.textContent = heading ? heading.textContent : a.href;
    li.append(a);
    items.push(li);
  }
  list.replaceChildren(...items);
}

function start() {
  if (document.getElementById("signed-out")) {
    clearOffline().catch(() => {});
    return;
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker
      .register("/learn/sw.js", { scope: "/learn/" })
      .catch(() => {});
  }
  const saved = document.getElementById("saved-aids");
  if (saved) listSaved(saved).catch(() => {});
}

start();

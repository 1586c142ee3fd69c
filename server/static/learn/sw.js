/*
 * The learner web app's service worker (scope /learn/): the app shell is cached at install,
 * the last MAX_AIDS aid pages read are kept (network first, the saved copy when the network
 * fails, with an "Offline — saved copy from <time>" banner), and any other page falls back to
 * the offline page. Nothing else is cached: paths, questions and tips are always fetched.
 * Sign-out clears every cache (Clear-Site-Data, and learn.js on the signed-out page).
 */
const SHELL = "learn-shell-v1";
const AIDS = "learn-aids-v1";
const MAX_AIDS = 20;
const OFFLINE = "/learn/offline";
const SHELL_FILES = [
  OFFLINE,
  "/learn/static/learn.css",
  "/learn/static/learn.js",
  "/learn/static/icon.svg",
  "/learn/static/icon-192.png",
];
const AID_PAGE = /^\/learn\/aids\/[^/]+$/;
const SAVED_AT = "X-Learn-Saved-At";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(SHELL_FILES))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((n) => n !== SHELL && n !== AIDS)
            .map((n) => caches.delete(n)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "clear") {
    event.waitUntil(
      caches
        .keys()
        .then((names) => Promise.all(names.map((n) => caches.delete(n)))),
    );
  }
});

async function keep(request, response) {
  const body = await response.clone().text();
  const headers = new Headers(response.headers);
  headers.set(SAVED_AT, new Date().toISOString());
  const cache = await caches.open(AIDS);
  await cache.delete(request.url); // re-inserted last: the newest read
  await cache.put(
    request.url,
    new Response(body, { status: 200, statusText: "OK", headers }),
  );
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - MAX_AIDS))) {
    await cache.delete(old);
  }
}

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        c
      ],
  );
}

async function savedCopy(url) {
  const cache = await caches.open(AIDS);
  const saved = await cache.match(url);
  if (!saved) return null;
  const at = saved.headers.get(SAVED_AT) || "";
  const when = at ? new Date(at).toLocaleString() : "earlier";
  const banner =
    '<p class="offline" role="status">Offline — saved copy from ' +
    `<time datetime="${escapeHtml(at)}">${escapeHtml(when)}</time></p>`;
  const html = (await saved.text()).replace("<!--offline-banner-->", banner);
  return new Response(html, {
    status: 200,
    headers: { "Content-Type": "text/html; charset=utf-8" },
  });
}

async function offlinePage() {
  return (
    (await caches.match(OFFLINE)) ||
    new Response("You are offline.", {
      status: 503,
      headers: { "Content-Type": "text/plain" },
    })
  );
}

async function navigate(event) {
  const url = new URL(event.request.url);
  const aid = AID_PAGE.test(url.pathname);
  try {
    const response = await fetch(event.request);
    if (aid && response.ok && !response.redirected && response.status === 200) {
      event.waitUntil(keep(event.request, response.clone()));
    }
    return response;
  } catch (err) {
    const copy = aid ? await savedCopy(event.request.url) : null;
    return copy || offlinePage();
  }
}

async function shellFile(request) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const cache = await caches.open(SHELL);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (err) {
    const cached = await caches.match(request);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (
    url.origin !== self.location.origin ||
    !url.pathname.startsWith("/learn/")
  )
    return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(event));
  } else if (url.pathname.startsWith("/learn/static/")) {
    event.respondWith(shellFile(request));
  }
});

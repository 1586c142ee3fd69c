// The content script's navigation watch, run in a fake page with fake timers: how soon a
// navigation is reported to the worker (the panel cannot be faster than this).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, mock, test } from "node:test";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../src/content.js", import.meta.url), "utf8");

class Target {
  listeners = new Map();
  addEventListener(type, fn) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  removeEventListener(type, fn) {
    this.listeners.set(
      type,
      (this.listeners.get(type) ?? []).filter((f) => f !== fn),
    );
  }
  fire(type) {
    for (const fn of this.listeners.get(type) ?? []) fn({ type });
  }
}

/** A page with the content script loaded; `sent` collects what it posts to the worker. */
function loadPage({ url = "http://app.test/a", title = "A", navigationApi = true } = {}) {
  const win = new Target();
  const doc = new Target();
  const observers = [];
  Object.assign(doc, {
    title,
    visibilityState: "visible",
    head: {},
    documentElement: {},
    querySelectorAll: () => [],
    querySelector: () => null,
  });
  const sent = [];
  const nav = navigationApi ? new Target() : undefined;
  const location = { href: url };
  const sandbox = {
    location,
    document: doc,
    navigation: nav,
    getSelection: () => "",
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    Date,
    MutationObserver: class {
      constructor(fn) {
        this.fn = fn;
        observers.push(this);
      }
      observe() {}
      disconnect() {
        observers.splice(observers.indexOf(this), 1);
      }
    },
    addEventListener: win.addEventListener.bind(win),
    removeEventListener: win.removeEventListener.bind(win),
    chrome: {
      runtime: {
        id: "ext",
        sendMessage: async (msg) => {
          sent.push({ ...msg, at: Date.now() });
        },
        onMessage: { addListener() {} },
      },
    },
  };
  sandbox.globalThis = sandbox;
  vm.runInNewContext(SOURCE, sandbox);
  return {
    sent,
    pages: () => sent.filter((m) => m.type === "page-changed").map((m) => m.page.url),
    /** history.pushState by the page: only the Navigation API tells the isolated world. */
    pushState(next) {
      nav?.fire("navigate");
      location.href = next;
      nav?.fire("currententrychange");
    },
    /** location.hash = ...: hashchange comes as a task after the URL changed. */
    setHash(next) {
      nav?.fire("navigate");
      location.href = next;
      setTimeout(() => win.fire("hashchange"), 0);
    },
    /** The user comes back to this tab. */
    switchBack() {
      doc.fire("visibilitychange");
      win.fire("focus");
    },
    setTitle(next) {
      doc.title = next;
      for (const o of [...observers]) o.fn([]);
    },
  };
}

/** Advance fake time 1 ms at a time (a single tick would run every due timer at the end time). */
function advance(ms) {
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
}

beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 0 }));
afterEach(() => mock.timers.reset());

test("the page is reported as soon as the script runs (no debounce on a page load)", () => {
  const page = loadPage();
  assert.deepEqual(page.pages(), ["http://app.test/a"]);
  assert.equal(page.sent[0].at, 0);
});

test("a pushState navigation is reported within 30 ms, with the title the SPA set after it", () => {
  const page = loadPage();
  advance(1000);
  page.pushState("http://app.test/b");
  advance(5);
  page.setTitle("B"); // the SPA renders its new view right after pushState
  advance(29);
  assert.deepEqual(page.pages(), ["http://app.test/a", "http://app.test/b"]);
  const last = page.sent.at(-1);
  assert.equal(last.page.title, "B");
  assert.ok(last.at - 1000 <= 30, `reported ${last.at - 1000} ms after the navigation`);
  advance(2000);
  assert.equal(page.pages().length, 2, "reported once");
});

test("a hash route is reported within 30 ms although the poll ticks meanwhile", () => {
  // Incident: a poll tick seeing the same pending change restarted the 250 ms debounce, so a hash
  // route reached the panel 400-500 ms after the click.
  const page = loadPage();
  advance(240); // the next poll tick falls inside the settle time
  page.setHash("http://app.test/a#/reports");
  advance(30);
  assert.deepEqual(page.pages(), ["http://app.test/a", "http://app.test/a#/reports"]);
  assert.ok(page.sent.at(-1).at - 240 <= 30);
});

test("a page that keeps changing its title is still reported within 100 ms", () => {
  const page = loadPage();
  page.pushState("http://app.test/b");
  for (let i = 1; i <= 20; i++) {
    advance(10);
    page.setTitle(`B ${i}`); // e.g. a ticking counter in the title
  }
  const reports = page.sent.filter((m) => m.page.url === "http://app.test/b");
  assert.ok(reports.length >= 1);
  assert.ok(reports[0].at <= 100, `first report after ${reports[0].at} ms`);
});

test("without the Navigation API a pushState is caught by the poll within ~300 ms", () => {
  const page = loadPage({ navigationApi: false });
  advance(10);
  page.pushState("http://app.test/b");
  advance(300);
  assert.deepEqual(page.pages(), ["http://app.test/a", "http://app.test/b"]);
});

test("a change undone before it settles is not reported", () => {
  const page = loadPage();
  page.pushState("http://app.test/b");
  page.pushState("http://app.test/a");
  advance(1000);
  assert.deepEqual(page.pages(), ["http://app.test/a"]);
});

test("coming back to the tab reports the page again, once", () => {
  // Both visibilitychange and focus fire on a tab switch: two reports meant two /suggest calls.
  const page = loadPage();
  advance(1000);
  page.switchBack();
  advance(1000);
  assert.deepEqual(page.pages(), ["http://app.test/a", "http://app.test/a"]);
});

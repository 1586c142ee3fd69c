// The safe-HTML walker, fed a plain-object tree (what DOMParser would give) and a tiny fake
// document, so it runs in Node without a DOM.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { imageSrc, rebuildInto, safeAttr } from "../src/lib/safehtml.js";
import { imageHostsFrom } from "../src/lib/settings.js";

const el = (tag, attrs = {}, ...children) => ({
  nodeType: 1,
  localName: tag,
  attributes: Object.entries(attrs).map(([name, value]) => ({ name, value })),
  childNodes: children.map((c) => (typeof c === "string" ? { nodeType: 3, nodeValue: c } : c)),
});

class FakeEl {
  constructor(tag) {
    this.tag = tag;
    this.attrs = {};
    this.children = [];
  }
  setAttribute(n, v) {
    this.attrs[n] = v;
  }
  getAttribute(n) {
    return this.attrs[n] ?? null;
  }
  appendChild(c) {
    this.children.push(c);
  }
}
const fakeDoc = { createElement: (t) => new FakeEl(t), createTextNode: (t) => ({ text: t }) };

function serialize(node) {
  if ("text" in node) return node.text;
  const attrs = Object.entries(node.attrs)
    .map(([k, v]) => ` ${k}="${v}"`)
    .join("");
  const inner = node.children.map(serialize).join("");
  return node.tag === "#root" ? inner : `<${node.tag}${attrs}>${inner}</${node.tag}>`;
}

function clean(tree) {
  const root = new FakeEl("#root");
  rebuildInto(root, el("body", {}, tree), fakeDoc, { baseUrl: "http://127.0.0.1:8080/" });
  return serialize(root);
}

test("scripts, iframes, objects and styles vanish with their content", () => {
  const out = clean(
    el(
      "div",
      {},
      "a",
      el("script", {}, "alert(1)"),
      el("iframe", { src: "http://x" }),
      el("style", {}, "*{}"),
      el("object", {}),
      "b",
    ),
  );
  assert.equal(out, "<div>ab</div>");
});

test("event handlers, style and unknown attributes are dropped", () => {
  const out = clean(
    el("p", { onclick: "alert(1)", style: "color:red", onmouseover: "x", "data-x": "1" }, "hi"),
  );
  assert.equal(out, "<p>hi</p>");
  const img = clean(el("img", { src: "x.png", onerror: "alert(1)", alt: "pic" }));
  assert.equal(
    img,
    '<img src="http://127.0.0.1:8080/x.png" alt="pic" referrerpolicy="no-referrer"></img>',
  );
});

test("javascript:, data: and vbscript: URLs are dropped; links open safely", () => {
  assert.equal(clean(el("a", { href: "javascript:alert(1)" }, "x")), "<a>x</a>");
  assert.equal(clean(el("a", { href: " JaVaScRiPt:alert(1)" }, "x")), "<a>x</a>");
  assert.equal(
    clean(el("img", { src: "data:image/svg+xml,<svg onload=alert(1)>" })),
    '<img referrerpolicy="no-referrer"></img>',
  );
  assert.equal(
    clean(el("a", { href: "https://wiki.example.com/x" }, "w")),
    '<a href="https://wiki.example.com/x" target="_blank" rel="noopener noreferrer">w</a>',
  );
});

test("unknown elements are unwrapped, their text kept", () => {
  assert.equal(
    clean(el("custom-thing", {}, el("b", { class: "match" }, "hit"), " rest")),
    '<b class="match">hit</b> rest',
  );
});

test("form controls and svg are removed", () => {
  assert.equal(clean(el("form", { action: "http://evil" }, el("input", { value: "x" }), "t")), "");
  assert.equal(clean(el("svg", {}, el("script", {}, "x"))), "");
});

test("ids are prefixed, classes filtered, numbers checked", () => {
  assert.equal(safeAttr("h2", "id", "steps"), "aid-steps");
  assert.equal(safeAttr("b", "class", "match  x<y"), "match");
  assert.equal(safeAttr("b", "class", 'a" onclick="x'), null);
  assert.equal(safeAttr("td", "colspan", "2"), "2");
  assert.equal(safeAttr("td", "colspan", "2;x"), null);
});

test("very deep nesting is cut off instead of overflowing the stack", () => {
  let tree = "x";
  for (let i = 0; i < 5000; i++) tree = el("div", {}, tree);
  assert.doesNotThrow(() => clean(tree));
});

// ---- image hosts: the shared vectors (also run by tests/test_render_images.py) ----------------
const VECTORS = JSON.parse(
  readFileSync(new URL("../../tests/vectors/image_urls.json", import.meta.url), "utf8"),
).cases;

test("image URL vectors: the host a browser loads from, and whether it is kept", () => {
  assert.ok(VECTORS.length >= 50);
  for (const c of VECTORS) {
    const { url, src } = imageSrc(c.src, c.base, c.hosts);
    assert.equal(url ? url.hostname : null, c.host, c.name);
    assert.equal(src !== null, c.allowed, c.name);
    if (src !== null) assert.equal(new URL(src).hostname, c.host, c.name);
  }
});

test("the probe's tracking pixel /\\evil is dropped from an aid body", () => {
  // Incident (issue 9): `<img src="/\evil.example/t.png">` looked like a path on the server,
  // but the browser loads https://evil.example/t.png: a tracking pixel in every panel.
  const root = new FakeEl("#root");
  const body = el(
    "body",
    {},
    el("img", { src: "/\\evil.example/t.png", alt: "x" }),
    el("img", { src: "https://cdn.example.com/a.png" }),
    el("img", { src: "/static/c.png" }),
  );
  rebuildInto(root, body, fakeDoc, {
    baseUrl: "https://inflow.example.com",
    imageHosts: ["cdn.example.com"],
  });
  const out = serialize(root);
  assert.ok(!out.includes("evil"), out);
  assert.ok(out.includes('src="https://cdn.example.com/a.png"'), out);
  assert.ok(out.includes('src="https://inflow.example.com/static/c.png"'), out);
});

test("image hosts come from policy only, and only well-formed ones", () => {
  assert.deepEqual(
    imageHostsFrom({ imageHosts: ["cdn.example.com", "a.example:8443", "x/y", "@e", 3, " "] }),
    ["cdn.example.com", "a.example:8443"],
  );
  assert.deepEqual(imageHostsFrom({}), []);
  assert.deepEqual(imageHostsFrom({ imageHosts: "cdn.example.com" }), []);
});

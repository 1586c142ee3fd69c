// The safe-HTML walker, fed a plain-object tree (what DOMParser would give) and a tiny fake
// document, so it runs in Node without a DOM.
import assert from "node:assert/strict";
import { test } from "node:test";

import { rebuildInto, safeAttr } from "../src/lib/safehtml.js";

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

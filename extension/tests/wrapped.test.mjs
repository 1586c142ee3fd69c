// The shared wrapped-target vectors (also run by tests/test_wrapped.py) against the JS twin.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { parseUrl } from "../src/lib/urlrules.js";
import { InvalidWrappedTarget, parseWrappedTarget, targetUrl } from "../src/lib/wrapped.js";

const VECTORS = JSON.parse(
  readFileSync(new URL("../../tests/vectors/wrapped_targets.json", import.meta.url), "utf8"),
);

for (const c of VECTORS.cases) {
  test(`wrapped target: ${c.name}`, () => {
    const expect = c.expect === null ? null : parseUrl(c.expect).normalized;
    assert.equal(targetUrl(c.url, c.targets), expect);
  });
}

for (const c of VECTORS.invalid) {
  test(`invalid wrapped target: ${c.target}`, () => {
    assert.throws(
      () => parseWrappedTarget(c.target),
      (err) => err instanceof InvalidWrappedTarget && err.message.includes(c.error),
    );
  });
}

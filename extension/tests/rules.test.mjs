import assert from "node:assert/strict";
import { test } from "node:test";

import { compileRules, matchPage, originsForRules } from "../src/lib/rules.js";

// Shaped like GET /api/v1/rules for the demo CRM (content/demo/apps/crm.yaml).
const DOC = {
  version: 7,
  apps: [
    {
      id: "crm",
      name: "Northwind CRM",
      rules: [
        { id: "app:crm:0", pattern: "*://127.0.0.1/demo/crm/**", priority: 0 },
        { id: "app:crm:1", pattern: "https://*.lightning.force.com/lightning/**", priority: 0 },
        { id: "app:crm:2", pattern: "not a pattern", priority: 0 },
      ],
    },
    {
      id: "hr",
      name: "People Portal",
      rules: [{ id: "app:hr:0", pattern: "*://127.0.0.1/demo/hr/**", priority: 0 }],
    },
  ],
  contexts: [
    {
      id: "crm-dashboard",
      app: "crm",
      name: "Pipeline dashboard",
      rule: { id: "ctx:crm-dashboard", pattern: "*://127.0.0.1/demo/crm/", priority: 0 },
      title_pattern: "^Pipeline",
      selector: null,
    },
    {
      id: "crm-opportunity-new",
      app: "crm",
      name: "New opportunity",
      rule: {
        id: "ctx:crm-opportunity-new",
        pattern: "*://127.0.0.1/demo/crm/opportunities/new",
        priority: 10,
      },
      title_pattern: "New Opportunity",
      selector: "#opportunity-form",
    },
    {
      id: "crm-opportunity-record",
      app: "crm",
      name: "Opportunity record",
      rule: {
        id: "ctx:crm-opportunity-record",
        pattern: "*://127.0.0.1/demo/crm/opportunities/*",
        priority: 0,
      },
      title_pattern: "Opportunity #\\d+",
      selector: "#opportunity-record",
    },
  ],
};

const rules = compileRules(DOC);
const page = (url, title = "") => ({ url, title, headings: [], selection: "" });

test("an app page is mapped, the best context found", () => {
  const m = matchPage(rules, page("http://127.0.0.1:8080/demo/crm/", "Pipeline · Northwind CRM"));
  assert.equal(m.app.id, "crm");
  assert.deepEqual(
    m.contexts.map((c) => c.id),
    ["crm-dashboard"],
  );
});

test("title pattern and selector presence narrow the contexts", () => {
  const url = "http://127.0.0.1:8080/demo/crm/opportunities/new";
  assert.deepEqual(rules.selectorsFor(url).sort(), ["#opportunity-form", "#opportunity-record"]);
  const m = matchPage(rules, page(url, "New Opportunity · Northwind CRM"), ["#opportunity-form"]);
  assert.deepEqual(
    m.contexts.map((c) => c.id),
    ["crm-opportunity-new"],
  );
  const none = matchPage(rules, page(url, "New Opportunity · Northwind CRM"), []);
  assert.deepEqual(none.contexts, []);
  assert.equal(none.app.id, "crm", "still the app even when no context fits");
});

test("unmapped pages match nothing", () => {
  for (const url of [
    "http://127.0.0.1:8080/demo/unmapped/",
    "https://example.com/",
    "http://127.0.0.1:8080/demo/crmx/",
  ]) {
    assert.equal(matchPage(rules, page(url)).app, null, url);
  }
});

test("a bad rule is skipped, the rest still work", () => {
  assert.equal(
    matchPage(rules, page("https://acme.lightning.force.com/lightning/o/Account/home")).app.id,
    "crm",
  );
});

test("host permissions to request for the mapped apps", () => {
  assert.deepEqual(originsForRules(DOC), ["*://127.0.0.1/*", "https://*.lightning.force.com/*"]);
});

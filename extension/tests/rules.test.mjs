import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { compileRules, matchPage, originsForRules } from "../src/lib/rules.js";
import { parseUrl } from "../src/lib/urlrules.js";

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
      rules: [{ id: "ctx:crm-dashboard:0", pattern: "*://127.0.0.1/demo/crm/", priority: 0 }],
      fallback: false,
      exclusive: false,
      title_pattern: "^Pipeline",
      selector: null,
    },
    {
      id: "crm-opportunity-new",
      app: "crm",
      name: "New opportunity",
      rules: [
        {
          id: "ctx:crm-opportunity-new:0",
          pattern: "*://127.0.0.1/demo/crm/opportunities/new",
          priority: 10,
        },
      ],
      fallback: false,
      exclusive: false,
      title_pattern: "New Opportunity",
      selector: "#opportunity-form",
    },
    {
      id: "crm-opportunity-record",
      app: "crm",
      name: "Opportunity record",
      rules: [
        {
          id: "ctx:crm-opportunity-record:0",
          pattern: "*://127.0.0.1/demo/crm/opportunities/*",
          priority: 0,
        },
      ],
      fallback: false,
      exclusive: false,
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

// ---- context resolution: the shared vectors (also run by tests/test_catalog_contexts.py) -------

const RESOLUTION = JSON.parse(
  readFileSync(new URL("../../tests/vectors/context_resolution.json", import.meta.url), "utf8"),
);

const ruleOf = (id, r) =>
  typeof r === "string"
    ? { id, pattern: r, priority: 0 }
    : { id, pattern: r.pattern, priority: r.priority ?? 0 };

/** The rules document (GET /api/v1/rules) that server/catalog.py makes of these apps. */
function rulesDocument(apps) {
  return {
    version: 1,
    apps: apps.map((a) => ({
      id: a.id,
      name: a.name,
      rules: (a.rules ?? []).map((r, i) => ruleOf(`app:${a.id}:${i}`, r)),
      wrapped_targets: a.wrapped_targets ?? [],
    })),
    contexts: apps.flatMap((a) =>
      (a.contexts ?? []).map((c) => ({
        id: c.id,
        app: a.id,
        name: c.name,
        rules: c.rules.map((r, i) => ruleOf(`ctx:${c.id}:${i}`, r)),
        fallback: c.fallback ?? false,
        exclusive: c.exclusive ?? false,
        title_pattern: c.title_pattern ?? null,
        selector: c.selector ?? null,
      })),
    ),
  };
}

const resolution = compileRules(rulesDocument(RESOLUTION.apps));

for (const c of RESOLUTION.cases) {
  test(`context resolution: ${c.name}`, () => {
    const m = matchPage(resolution, page(c.url, c.title ?? ""));
    assert.equal(m.app?.id ?? null, c.app);
    assert.deepEqual(
      m.contexts.map((x) => x.id),
      c.contexts,
    );
    assert.equal(m.targetUrl, c.target ? parseUrl(c.target).normalized : null);
  });
}

test("selectors asked of a wrapped page are those of the page it wraps too", () => {
  const apps = structuredClone(RESOLUTION.apps);
  apps[0].contexts[0].selector = "#incident-form";
  const compiled = compileRules(rulesDocument(apps));
  const wrapped = "https://fabrikam.service-now.com/nav_to.do?uri=%2Fincident.do%3Fsys_id%3D-1";
  assert.deepEqual(compiled.selectorsFor(wrapped), ["#incident-form"]);
});

test("a rules document from an older server (one `rule` per context) still matches", () => {
  const old = {
    version: 3,
    apps: [{ id: "crm", name: "CRM", rules: [{ id: "app:crm:0", pattern: "*://crm.example/**" }] }],
    contexts: [
      {
        id: "crm-home",
        app: "crm",
        name: "Home",
        rule: { id: "ctx:crm-home", pattern: "*://crm.example/home", priority: 0 },
      },
    ],
  };
  const m = matchPage(compileRules(old), page("https://crm.example/home"));
  assert.deepEqual(
    m.contexts.map((x) => x.id),
    ["crm-home"],
  );
});

test("a bad wrapped target is skipped, the app's other targets still work", () => {
  const apps = structuredClone(RESOLUTION.apps);
  apps[0].wrapped_targets = ["/a/{target}/b", ...apps[0].wrapped_targets];
  const compiled = compileRules(rulesDocument(apps));
  const m = matchPage(
    compiled,
    page("https://fabrikam.service-now.com/nav_to.do?uri=problem_list.do"),
  );
  assert.deepEqual(
    m.contexts.map((x) => x.id),
    ["sd-lists"],
  );
});

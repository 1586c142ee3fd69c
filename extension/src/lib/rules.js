// Local page matching with the rules downloaded from GET /api/v1/rules. Mirrors
// server/catalog.py `Catalog.resolve`: the best-ranked rule picks the app; contexts of that app
// whose rule matched, whose title_pattern is found in the title and whose selector is present.
// The URL matcher itself is the shared one (urlrules.js, proven by tests/vectors/url_rules.json).

import { RuleSet, compileRule } from "./urlrules.js";

/** Compile a rules document. Rules the matcher rejects are skipped (and logged), not fatal. */
export function compileRules(doc) {
  const apps = new Map();
  const contexts = new Map();
  const titleRes = new Map();
  const rules = [];
  for (const app of doc?.apps ?? []) {
    apps.set(app.id, { id: app.id, name: app.name });
    for (const r of app.rules ?? []) {
      rules.push({
        id: r.id,
        pattern: r.pattern,
        priority: r.priority ?? 0,
        target: `app:${app.id}`,
      });
    }
  }
  for (const c of doc?.contexts ?? []) {
    contexts.set(c.id, c);
    rules.push({
      id: c.rule.id,
      pattern: c.rule.pattern,
      priority: c.rule.priority ?? 0,
      target: `ctx:${c.id}`,
    });
    if (c.title_pattern) {
      try {
        titleRes.set(c.id, new RegExp(c.title_pattern, "i"));
      } catch {
        titleRes.set(c.id, null); // a Python-only regex: the server decides with the title
      }
    }
  }
  const set = buildRuleSet(rules);
  return {
    version: doc?.version ?? null,
    apps,
    contexts,
    titleRes,
    set,
    /** Selectors of contexts whose URL rule matches `url` (asked of the content script). */
    selectorsFor(url) {
      const out = new Set();
      for (const m of set.match(url)) {
        const [kind, id] = splitTarget(m.target);
        const sel = kind === "ctx" ? contexts.get(id)?.selector : null;
        if (sel) out.add(sel);
      }
      return [...out];
    },
  };
}

function buildRuleSet(rules) {
  const ok = [];
  for (const r of rules) {
    try {
      compileRule(r); // validate one by one: one bad rule must not blind the whole set
      ok.push(r);
    } catch (err) {
      console.warn("inflow: skipping rule", r.id, err?.message ?? err);
    }
  }
  return new RuleSet(ok);
}

function splitTarget(target) {
  const i = String(target).indexOf(":");
  return [target.slice(0, i), target.slice(i + 1)];
}

/**
 * Which app and contexts `page` is.
 * @param present array of selectors found on the page, or null when unknown (not checked)
 * @returns {{app: {id,name}|null, contexts: object[], match: object|null}}
 */
export function matchPage(compiled, page, present = null) {
  const matches = compiled.set.match(page.url);
  let app = null;
  let best = null;
  for (const m of matches) {
    const [kind, id] = splitTarget(m.target);
    const appId = kind === "app" ? id : compiled.contexts.get(id)?.app;
    if (compiled.apps.has(appId)) {
      app = compiled.apps.get(appId);
      best = m;
      break;
    }
  }
  if (!app) return { app: null, contexts: [], match: null };
  const presentSet = present ? new Set(present) : null;
  const found = [];
  for (const m of matches) {
    const [kind, id] = splitTarget(m.target);
    if (kind !== "ctx") continue;
    const ctx = compiled.contexts.get(id);
    if (!ctx || ctx.app !== app.id) continue;
    const re = compiled.titleRes.get(id);
    if (re && page.title && !re.test(page.title)) continue;
    if (presentSet && ctx.selector && !presentSet.has(ctx.selector)) continue;
    found.push(ctx);
  }
  return { app, contexts: found, match: best };
}

/** Chrome host match patterns ("*://host/*") covering the apps' URL rules; regex rules are
 * skipped (the settings page lists what it asks for). */
export function originsForRules(doc) {
  const out = new Set();
  const patterns = [...(doc?.apps ?? []).flatMap((a) => (a.rules ?? []).map((r) => r.pattern))];
  for (const p of patterns) {
    const m = /^(\*|https?):\/\/([^/?#]+)/i.exec(p);
    if (!m || p.startsWith("re:")) continue;
    const host = m[2].replace(/:(\d+|\*)$/, "").toLowerCase();
    if (!/^(\*\.)?[a-z0-9.-]+$/.test(host) && host !== "*") continue;
    out.add(`${m[1].toLowerCase()}://${host}/*`);
  }
  return [...out].sort();
}

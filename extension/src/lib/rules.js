// Local page matching with the rules downloaded from GET /api/v1/rules. Mirrors
// server/catalog.py `Catalog.resolve`: the best-ranked rule picks the app; contexts of that app
// one of whose rules matched (the page the app wraps first, see wrapped.js), whose title_pattern
// is found in the title and whose selector is present; a fallback context only when no other
// matched, nothing after an exclusive one. The URL matcher itself is the shared one (urlrules.js,
// proven by tests/vectors/url_rules.json).

import { RuleSet, compileRule, parseUrl } from "./urlrules.js";
import { parseWrappedTarget, unwrap } from "./wrapped.js";

/** Compile a rules document. Rules the matcher rejects are skipped (and logged), not fatal. */
export function compileRules(doc) {
  const apps = new Map();
  const contexts = new Map();
  const titleRes = new Map();
  const rules = [];
  const wrapped = new Map();
  for (const app of doc?.apps ?? []) {
    apps.set(app.id, { id: app.id, name: app.name });
    const targets = compileWrapped(app);
    if (targets.length) wrapped.set(app.id, targets);
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
    // `rule`: a document from a server before contexts had several rules
    for (const r of c.rules ?? (c.rule ? [c.rule] : [])) {
      rules.push({
        id: r.id,
        pattern: r.pattern,
        priority: r.priority ?? 0,
        target: `ctx:${c.id}`,
      });
    }
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
    wrapped,
    set,
    /** Selectors of contexts whose URL rule matches `url` (asked of the content script). */
    selectorsFor(url) {
      const out = new Set();
      for (const m of pageMatches(this, url).matches) {
        const [kind, id] = splitTarget(m.target);
        const sel = kind === "ctx" ? contexts.get(id)?.selector : null;
        if (sel) out.add(sel);
      }
      return [...out];
    },
  };
}

function compileWrapped(app) {
  const out = [];
  for (const text of app.wrapped_targets ?? []) {
    try {
      out.push(parseWrappedTarget(text));
    } catch (err) {
      console.warn("inflow: skipping wrapped target", app.id, text, err?.message ?? err);
    }
  }
  return out;
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

function parseOrNull(url) {
  try {
    return parseUrl(url);
  } catch {
    return null;
  }
}

/** The rules matching the page, best first (those of the page its app wraps first), its app and
 * the rule that picked it. */
function pageMatches(compiled, url) {
  const parsed = parseOrNull(url);
  if (parsed === null) return { app: null, best: null, matches: [], targetUrl: null };
  let matches = compiled.set.matchParsed(parsed);
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
  let targetUrl = null;
  const targets = app ? compiled.wrapped.get(app.id) : null;
  if (targets) {
    const inner = unwrap(parsed, targets);
    if (inner !== null) {
      targetUrl = inner.normalized;
      matches = [...compiled.set.matchParsed(inner), ...matches];
    }
  }
  return { app, best, matches, targetUrl };
}

/** Matched contexts of one app, best first, as they count: fallback contexts only when no other
 * matched; nothing after the first exclusive one (server/catalog.py rank_contexts). */
export function rankContexts(matched) {
  let kept = matched.some((c) => !c.fallback) ? matched.filter((c) => !c.fallback) : matched;
  const cut = kept.findIndex((c) => c.exclusive);
  if (cut >= 0) kept = kept.slice(0, cut + 1);
  return kept;
}

/**
 * Which app and contexts `page` is.
 * @param present array of selectors found on the page, or null when unknown (not checked)
 * @returns {{app: {id,name}|null, contexts: object[], match: object|null, targetUrl: string|null}}
 */
export function matchPage(compiled, page, present = null) {
  const { app, best, matches, targetUrl } = pageMatches(compiled, page.url);
  if (!app) return { app: null, contexts: [], match: null, targetUrl: null };
  const presentSet = present ? new Set(present) : null;
  const found = [];
  const seen = new Set();
  for (const m of matches) {
    const [kind, id] = splitTarget(m.target);
    if (kind !== "ctx" || seen.has(id)) continue;
    const ctx = compiled.contexts.get(id);
    if (!ctx || ctx.app !== app.id) continue;
    const re = compiled.titleRes.get(id);
    if (re && page.title && !re.test(page.title)) continue;
    if (presentSet && ctx.selector && !presentSet.has(ctx.selector)) continue;
    seen.add(id);
    found.push(ctx);
  }
  return { app, contexts: rankContexts(found), match: best, targetUrl };
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

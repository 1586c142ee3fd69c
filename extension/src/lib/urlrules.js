// URL rule matcher: the JavaScript twin of server/urlrules/ (same syntax, precedence, messages).
// Syntax and limits: docs/url-rules.md. tests/vectors/url_rules.json is run against both.
// No dependencies; runs in the MV3 service worker and in Node 20.

export const MAX_URL_BYTES = 8192;
export const MAX_PATTERN_CHARS = 2048;
export const MAX_REGEX_CHARS = 512;
export const MAX_SEGMENTS = 32;
export const MAX_CONDITIONS = 16;

const DEFAULT_PORTS = { "http:": 80, "https:": 443 };
// Separates path keys from fragment keys in an index walk (a canonical segment never holds NUL).
const FRAGMENT_MARK = "\u0000#";

export class InvalidRule extends Error {
  constructor(message, ruleId = null) {
    super(message);
    this.name = "InvalidRule";
    this.ruleId = ruleId;
  }
}

export class InvalidUrl extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidUrl";
  }
}

// ---------------------------------------------------------------------------------------------
// Canonical percent-encoding (see server/urlrules/url.py): one form per ASCII character. An
// escape of a character the component keeps as it is (`%24` for `$`) is decoded, except the
// component's own delimiters (path: `/`; query: `&`, `=`, `+`; fragment: `/`, `?`, `&`,
// `=`, `+`); other escapes get uppercase hex; everything outside a small safe set is encoded.

const UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const PATH_DECODE = new Set(UNRESERVED + "!$&'()*+,;=:@");
const QUERY_DECODE = new Set(UNRESERVED + "!$()*,;:@/?");
const FRAGMENT_DECODE = new Set(UNRESERVED + "!$'()*,;:@");
const PATH_RE = /%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/gu; // whole path: keeps "/"
const SEGMENT_RE = /%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@]/gu;
const QUERY_RE = /%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&()*+,;=:@/?]/gu;
const FRAGMENT_RE = /%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?]/gu;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

const canon = (decode) => (m) => {
  if (m.length === 3 && m[0] === "%") {
    const c = String.fromCharCode(parseInt(m.slice(1), 16));
    return decode.has(c) ? c : m.toUpperCase();
  }
  let out = "";
  for (const b of encoder.encode(m)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  return out;
};
const canonPath = canon(PATH_DECODE);
const canonQuery = canon(QUERY_DECODE);
const canonFragment = canon(FRAGMENT_DECODE);

const canonicalPathSegment = (s) => s.replace(SEGMENT_RE, canonPath);

const isHex = (c) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

/** Percent-decoding (no `+` rule), invalid escapes kept, bad UTF-8 replaced: as Python's
 * unquote_to_bytes(...).decode("utf-8", "replace"). */
export function percentDecode(s) {
  if (!s.includes("%")) return s;
  const bytes = [];
  for (let i = 0; i < s.length;) {
    if (s[i] === "%" && isHex(s[i + 1]) && isHex(s[i + 2])) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const ch = String.fromCodePoint(s.codePointAt(i));
      for (const b of encoder.encode(ch)) bytes.push(b);
      i += ch.length;
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** application/x-www-form-urlencoded decoding of one name or value. */
function formDecode(s) {
  return percentDecode(s.includes("+") ? s.replaceAll("+", " ") : s);
}

function parseParams(query) {
  const params = new Map();
  for (const part of query.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const name = formDecode(eq < 0 ? part : part.slice(0, eq));
    const value = formDecode(eq < 0 ? "" : part.slice(eq + 1));
    if (params.has(name)) params.get(name).push(value);
    else params.set(name, [value]);
  }
  return params;
}

/** Hash-router fragment to [route path, route query]; "id=7&model=x" is an empty route's query. */
function splitFragment(fragment) {
  if (fragment.startsWith("!")) fragment = fragment.slice(1);
  if (fragment.startsWith("/")) fragment = fragment.slice(1);
  const q = fragment.indexOf("?");
  if (q < 0 && fragment.includes("=") && !fragment.includes("/")) return ["", fragment];
  return q < 0 ? [fragment, ""] : [fragment.slice(0, q), fragment.slice(q + 1)];
}

function pathSegments(path) {
  if (path.endsWith("/")) path = path.slice(0, -1);
  return path ? path.split("/") : [];
}

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** A normalised http(s) URL; components are canonical, query and fragment omit "?"/"#". */
export class ParsedUrl {
  constructor(scheme, host, port, path, query, fragment) {
    Object.assign(this, { scheme, host, port, path, query, fragment });
    this._cache = {};
  }

  _lazy(name, make) {
    if (!(name in this._cache)) this._cache[name] = make();
    return this._cache[name];
  }

  get segments() {
    return this._lazy("segments", () => pathSegments(this.path.slice(1)));
  }

  get params() {
    return this._lazy("params", () => parseParams(this.query));
  }

  get fragmentSegments() {
    // Route segments are path segments: "=" and "%3D" are the same character there.
    return this._lazy("fsegs", () =>
      pathSegments(splitFragment(this.fragment)[0]).map(canonicalPathSegment),
    );
  }

  get fragmentParams() {
    return this._lazy("fparams", () => parseParams(splitFragment(this.fragment)[1]));
  }

  get keys() {
    return this._lazy("keys", () => [...this.segments, FRAGMENT_MARK, ...this.fragmentSegments]);
  }

  /** The URL as `re:` rules see it: pure ASCII, no userinfo, no default port. */
  get normalized() {
    return this._lazy("normalized", () => {
      const port = DEFAULT_PORTS[this.scheme + ":"] === this.port ? "" : `:${this.port}`;
      const query = this.query ? `?${this.query}` : "";
      const fragment = this.fragment ? `#${this.fragment}` : "";
      return `${this.scheme}://${this.host}${port}${this.path}${query}${fragment}`;
    });
  }
}

/** Parse and normalise an http(s) URL (WHATWG, via URL); throw InvalidUrl otherwise. */
export function parseUrl(url) {
  if (typeof url !== "string") throw new InvalidUrl("URL is not a string");
  if (url.length > MAX_URL_BYTES || utf8Length(url) > MAX_URL_BYTES) {
    throw new InvalidUrl(`URL longer than ${MAX_URL_BYTES} bytes`);
  }
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidUrl("not a valid absolute URL");
  }
  const defaultPort = DEFAULT_PORTS[u.protocol];
  if (defaultPort === undefined)
    throw new InvalidUrl(`scheme '${u.protocol.slice(0, -1)}' is not http or https`);
  // "crm.example.com." is crm.example.com; "127.1.." becomes an IPv4 address as in host.py.
  let host = u.hostname;
  if (host.endsWith(".")) {
    host = host.replace(/\.+$/, "");
    if (host && endsInNumber(host)) host = urlHostname(host) ?? "";
  }
  if (!host) throw new InvalidUrl(`invalid host '${u.hostname}'`);
  return new ParsedUrl(
    u.protocol.slice(0, -1),
    host,
    u.port ? Number(u.port) : defaultPort,
    u.pathname.replace(PATH_RE, canonPath),
    u.search.slice(1).replace(QUERY_RE, canonQuery),
    u.hash.slice(1).replace(FRAGMENT_RE, canonFragment),
  );
}

// ---------------------------------------------------------------------------------------------
// Segment patterns (see server/urlrules/segments.py).

class Glob {
  constructor(pieces, nonempty = false) {
    this.prefix = pieces[0];
    this.middles = pieces.slice(1, -1).filter((p) => p);
    this.suffix = pieces[pieces.length - 1];
    const total = pieces.reduce((n, p) => n + p.length, 0);
    this.minLen = Math.max(total, nonempty ? 1 : 0);
  }

  matches(text) {
    if (text.length < this.minLen) return false;
    if (!text.startsWith(this.prefix) || !text.endsWith(this.suffix)) return false;
    let pos = this.prefix.length;
    const end = text.length - this.suffix.length;
    for (const piece of this.middles) {
      const i = text.indexOf(piece, pos);
      if (i < 0 || i + piece.length > end) return false;
      pos = i + piece.length;
    }
    return true;
  }
}

// Typed segments (see Typed in server/urlrules/segments.py): a tiny matcher that keeps the set of
// positions its items can end at, so it runs in O(segment x items) whatever the input.
const CLASSES = {
  digits: /^[0-9]$/,
  hex: /^[0-9A-Fa-f]$/,
  alnum: /^[0-9A-Za-z]$/,
  any: null,
};
const GUID_GROUPS = [8, 4, 4, 4, 12];
const HEX_RE = /^[0-9A-Fa-f]$/;

const startsAt = (chars, lit, pos) => {
  if (pos + lit.length > chars.length) return false;
  for (let i = 0; i < lit.length; i++) if (chars[pos + i] !== lit[i]) return false;
  return true;
};

function guidEnds(chars, pos) {
  let close = null;
  if (chars[pos] === "{") {
    pos += 1;
    close = ["}"];
  } else if (startsAt(chars, ["%", "7", "B"], pos)) {
    pos += 3;
    close = ["%", "7", "D"];
  }
  for (let i = 0; i < GUID_GROUPS.length; i++) {
    if (i) {
      if (chars[pos] !== "-") return [];
      pos += 1;
    }
    for (let k = 0; k < GUID_GROUPS[i]; k++) if (!HEX_RE.test(chars[pos + k] ?? "")) return [];
    pos += GUID_GROUPS[i];
  }
  if (close) {
    if (!startsAt(chars, close, pos)) return [];
    pos += close.length;
  }
  return [pos];
}

function runEnds(item, chars, positions) {
  const n = chars.length;
  let span = null;
  if (item.cls !== null) {
    span = new Array(n + 1).fill(0);
    for (let i = n - 1; i >= 0; i--) if (item.cls.test(chars[i])) span[i] = span[i + 1] + 1;
  }
  const out = [];
  let top = -1;
  for (const p of positions) {
    let longest = span === null ? n - p : span[p];
    if (item.hi !== null && item.hi < longest) longest = item.hi;
    if (longest < item.lo) continue;
    const start = Math.max(p + item.lo, top + 1);
    const end = p + longest;
    if (start <= end) {
      for (let q = start; q <= end; q++) out.push(q);
      top = end;
    }
  }
  return out;
}

class Typed {
  // items: {lit: [characters]} | {run: type, cls, lo, hi} | {guid: true}
  constructor(items) {
    this.items = items;
    let lo = 0;
    let hi = 0;
    this.stars = 0;
    for (const it of items) {
      if (it.lit) {
        lo += it.lit.length;
        if (hi >= 0) hi += it.lit.length;
      } else if (it.guid) {
        lo += 36;
        if (hi >= 0) hi += 42;
      } else {
        if (it.run === "*") this.stars += 1;
        lo += it.lo;
        hi = hi < 0 || it.hi === null ? -1 : hi + it.hi;
      }
    }
    this.minLen = lo;
    this.maxLen = hi < 0 ? null : hi;
  }

  matches(text) {
    // Lengths count code points, as in Python (path segments are ASCII anyway).
    // eslint-disable-next-line no-control-regex -- "is it ASCII"
    const chars = /^[\x00-\x7f]*$/.test(text) ? text : Array.from(text);
    const n = chars.length;
    if (n < this.minLen || (this.maxLen !== null && n > this.maxLen)) return false;
    let positions = [0];
    for (const it of this.items) {
      if (it.lit) {
        const size = it.lit.length;
        positions = positions.filter((p) => startsAt(chars, it.lit, p)).map((p) => p + size);
      } else if (it.guid) {
        const ends = new Set(positions.flatMap((p) => guidEnds(chars, p)));
        positions = [...ends].sort((a, b) => a - b);
      } else positions = runEnds(it, chars, positions);
      if (!positions.length) return false;
    }
    return positions[positions.length - 1] === n;
  }
}

const DEEP = Object.freeze({ deep: true });
const ANY_SEGMENT = new Glob(["", ""], true);

const tokenMatches = (t, seg) => (typeof t === "string" ? t === seg : t.matches(seg));

function groupAt(group, segs, start) {
  for (let i = 0; i < group.length; i++) if (!tokenMatches(group[i], segs[start + i])) return false;
  return true;
}

class SegmentPattern {
  constructor(tokens) {
    this.tokens = tokens;
    const groups = [[]];
    for (const t of tokens) {
      if (t === DEEP) groups.push([]);
      else groups[groups.length - 1].push(t);
    }
    this.head = groups[0];
    this.deep = groups.length > 1;
    this.tail = this.deep ? groups[groups.length - 1] : [];
    this.middles = groups.slice(1, -1).filter((g) => g.length);
    this.minLen = groups.reduce((n, g) => n + g.length, 0);
  }

  get literalCount() {
    return this.tokens.filter((t) => typeof t === "string").length;
  }

  get typedCount() {
    return this.tokens.filter((t) => t instanceof Typed).length;
  }

  get wildcardCount() {
    let n = 0;
    for (const t of this.tokens) {
      if (t === DEEP) n += 1;
      else if (t instanceof Glob) n += t.middles.length + 1;
      else if (t instanceof Typed) n += t.stars;
    }
    return n;
  }

  literalPrefix() {
    const prefix = [];
    for (const t of this.tokens) {
      if (typeof t !== "string") break;
      prefix.push(t);
    }
    return prefix;
  }

  matches(segs) {
    const n = segs.length;
    if (!this.deep) return n === this.head.length && groupAt(this.head, segs, 0);
    if (n < this.minLen || !groupAt(this.head, segs, 0)) return false;
    const end = n - this.tail.length;
    if (!groupAt(this.tail, segs, end)) return false;
    let pos = this.head.length;
    for (const group of this.middles) {
      const lastStart = end - group.length;
      while (pos <= lastStart && !groupAt(group, segs, pos)) pos++;
      if (pos > lastStart) return false;
      pos += group.length;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Portable regex subset (see server/urlrules/regex.py; same checks, same messages).

const PORTABLE_LETTER_ESCAPES = new Set("bBdDfnrsStvwWxu");

function checkPortable(src) {
  if (!src) throw new InvalidRule("empty regex after 're:'");
  if (src.length > MAX_REGEX_CHARS)
    throw new InvalidRule(`regex longer than ${MAX_REGEX_CHARS} characters`);
  let inClass = false;
  for (let i = 0; i < src.length;) {
    const c = src[i];
    const next = src[i + 1];
    if (c === "\\") {
      if (i + 1 >= src.length) throw new InvalidRule("regex ends with a lone backslash");
      const e = next;
      if ("AZz".includes(e)) throw new InvalidRule(`'\\${e}' is Python-only; use '^' or '$'`);
      if (/^[A-Za-z]$/.test(e) && !PORTABLE_LETTER_ESCAPES.has(e)) {
        throw new InvalidRule(`'\\${e}' escape is not portable`);
      }
      if (e === "x" || e === "u") {
        const nHex = e === "x" ? 2 : 4;
        if (!new RegExp(`^[0-9A-Fa-f]{${nHex}}$`).test(src.slice(i + 2, i + 2 + nHex))) {
          throw new InvalidRule(`'\\${e}' must be followed by exactly ${nHex} hex digits`);
        }
      }
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      else if (c === "[")
        throw new InvalidRule("'[' inside a character class is not portable; escape it as '\\['");
      else if ("-&~|".includes(c) && next === c) {
        throw new InvalidRule(`'${c}${c}' inside a character class is not portable`);
      }
      i += 1;
      continue;
    }
    if (c === "[") {
      inClass = true;
      const j = i + 1 + (next === "^" ? 1 : 0);
      if (src[j] === "]") {
        throw new InvalidRule("']' right after '[' or '[^' is not portable; escape it as '\\]'");
      }
      i = j;
      continue;
    }
    if (c === "(" && next === "?") checkGroup(src.slice(i + 2, i + 4));
    else if (c === "{" && next === ",")
      throw new InvalidRule("'{,n}' quantifiers are not portable; write '{0,n}'");
    else if ("*+?}".includes(c) && next === "+" && i > 0) {
      throw new InvalidRule("possessive quantifiers ('*+', '++', '?+', '}+') are not portable");
    }
    i += 1;
  }
}

function checkGroup(nxt) {
  if (nxt.startsWith("P"))
    throw new InvalidRule("named groups '(?P<name>...)' are Python-only; use a plain group");
  if (nxt.startsWith("<") && nxt[1] !== "=" && nxt[1] !== "!") {
    throw new InvalidRule("named groups '(?<name>...)' are not portable; use a plain group");
  }
  if (nxt.startsWith("#")) throw new InvalidRule("comments '(?#...)' are not portable");
  if (nxt.startsWith(">")) throw new InvalidRule("atomic groups '(?>...)' are not portable");
  if (nxt.startsWith("("))
    throw new InvalidRule("conditional groups '(?(...)...)' are not portable");
  if (!":=!<".includes(nxt[0] ?? "x"))
    throw new InvalidRule("inline flags like '(?i)' are not portable");
}

function compilePortable(src) {
  checkPortable(src);
  try {
    return new RegExp(src, "u");
  } catch {
    // The u flag is stricter about escapes like '\:'; on the pure-ASCII normalised URL the
    // legacy mode means the same thing.
    try {
      return new RegExp(src);
    } catch (e) {
      throw new InvalidRule(`regex does not compile: ${e.message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rule syntax (see server/urlrules/syntax.py; same messages).

const HOST_EXACT = 0;
const HOST_WILDCARD = 1; // "*.suffix", or any host when the suffix is ""
const HOST_REGEX = 2;
const COND_PRESENT = 0;
const COND_ABSENT = 1;
const COND_EQUALS = 2;

const SCHEMES = { http: ["http"], https: ["https"], "*": ["http", "https"] };
const HOST_CHARS_RE = /^[a-z0-9\-_.]+$/;
const BAD_ESCAPE_RE = /%(?![0-9A-Fa-f]{2})/;
export const MAX_PLACEHOLDER_LENGTH = 1000;
const LENGTH_RE = /^([0-9]{1,4})(?:-([0-9]{1,4}))?$/;
const TYPES_HINT =
  "use {digits}, {hex}, {alnum}, {guid} or {any}, optionally with a length: {digits:6} or " +
  "{alnum:12-15} (write %7B and %7D for literal braces)";

function placeholder(inner, where) {
  const colonAt = inner.indexOf(":");
  const name = colonAt < 0 ? inner : inner.slice(0, colonAt);
  if (name !== "guid" && !Object.hasOwn(CLASSES, name))
    throw new InvalidRule(`unknown placeholder '{${inner}}' in the ${where}: ` + TYPES_HINT);
  if (colonAt < 0)
    return name === "guid" ? { guid: true } : { run: name, cls: CLASSES[name], lo: 1, hi: null };
  if (name === "guid") throw new InvalidRule(`'{guid}' takes no length in the ${where}`);
  const m = LENGTH_RE.exec(inner.slice(colonAt + 1));
  const lo = m ? Number(m[1]) : 0;
  const hi = m && m[2] !== undefined ? Number(m[2]) : lo;
  if (!(lo >= 1 && lo <= hi && hi <= MAX_PLACEHOLDER_LENGTH)) {
    throw new InvalidRule(
      `bad length in '{${inner}}' in the ${where}: write {${name}:N} or {${name}:N-M} ` +
        `with 1 <= N <= M <= ${MAX_PLACEHOLDER_LENGTH}`,
    );
  }
  return { run: name, cls: CLASSES[name], lo, hi };
}

/** A segment or value with placeholders: `006{alnum:12-15}`, `INV-{digits}-*`. */
function typed(text, where, literalOf) {
  const items = [];
  const addText = (chunk) => {
    if (chunk.includes("}")) throw new InvalidRule(`unmatched '}' in the ${where}: ` + TYPES_HINT);
    chunk.split("*").forEach((piece, i) => {
      if (i) items.push({ run: "*", cls: null, lo: 0, hi: null });
      if (piece) items.push({ lit: Array.from(literalOf(piece)) });
    });
  };
  let pos = 0;
  for (;;) {
    const start = text.indexOf("{", pos);
    if (start < 0) break;
    addText(text.slice(pos, start));
    const end = text.indexOf("}", start);
    if (end < 0) throw new InvalidRule(`unclosed '{' in the ${where}: ` + TYPES_HINT);
    items.push(placeholder(text.slice(start + 1, end), where));
    pos = end + 1;
  }
  addText(text.slice(pos));
  return new Typed(items);
}
const isAscii = (s) => [...s].every((c) => c.charCodeAt(0) < 0x80);
// Control characters, Unicode spaces and lone surrogates (the same class as syntax.py).
const SPACE_RE = new RegExp(
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  "[\\x00-\\x20\\x7f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\ud800-\\udfff]",
  "u",
);

function endsInNumber(domain) {
  const parts = domain.split(".");
  if (parts[parts.length - 1] === "") {
    if (parts.length === 1) return false;
    parts.pop();
  }
  const last = parts[parts.length - 1];
  return /^[0-9]+$/.test(last) || /^0[xX][0-9A-Fa-f]*$/.test(last);
}

function urlHostname(host) {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return null;
  }
}

function canonicalHost(host, wildcard) {
  if (host.startsWith("[")) {
    if (wildcard) throw new InvalidRule("host wildcard not allowed on an IP address");
    const parsed = urlHostname(host);
    if (parsed === null) throw new InvalidRule("invalid IPv6 address in host");
    return parsed;
  }
  if (host.includes("%")) throw new InvalidRule("percent-escapes are not allowed in a rule host");
  let ascii = isAscii(host) ? host.toLowerCase() : urlHostname(host);
  if (ascii === null) throw new InvalidRule("invalid internationalised host name");
  if (ascii.endsWith(".")) ascii = ascii.slice(0, -1);
  if (!ascii) throw new InvalidRule("empty host");
  if (!HOST_CHARS_RE.test(ascii)) {
    const bad = [...ascii].find((c) => !HOST_CHARS_RE.test(c));
    throw new InvalidRule(`invalid character '${bad}' in host`);
  }
  const labels = ascii.split(".");
  if (labels.some((l) => !l)) throw new InvalidRule("empty label in host");
  if (labels.some((l) => l.length > 63))
    throw new InvalidRule("host label longer than 63 characters");
  if (endsInNumber(ascii)) {
    if (wildcard) throw new InvalidRule("host wildcard not allowed on an IP address");
    const ipv4 = urlHostname(ascii);
    if (ipv4 === null) throw new InvalidRule("invalid IPv4 address in host");
    return ipv4;
  }
  return ascii;
}

function parsePort(text) {
  if (text === null || text === "*") return null;
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new InvalidRule("port must be a number from 1 to 65535 or '*'");
  }
  return Number(text);
}

function parseAuthority(authority) {
  if (authority.includes("@"))
    throw new InvalidRule("userinfo ('user@') is not allowed in a rule host");
  let host = authority;
  let portText = null;
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end < 0) throw new InvalidRule("unterminated IPv6 address in host");
    host = authority.slice(0, end + 1);
    const tail = authority.slice(end + 1);
    if (tail) {
      if (!tail.startsWith(":")) throw new InvalidRule("unexpected text after the IPv6 address");
      portText = tail.slice(1);
    }
  } else if (authority.includes(":")) {
    const i = authority.indexOf(":");
    host = authority.slice(0, i);
    portText = authority.slice(i + 1);
  }
  const port = parsePort(portText);
  if (!host) throw new InvalidRule("empty host");
  if (host === "*") return [HOST_WILDCARD, "", port];
  const wildcard = host.startsWith("*.");
  if (wildcard) host = host.slice(2);
  if (host.includes("*")) throw new InvalidRule("host wildcard only allowed as a leading '*.'");
  return [wildcard ? HOST_WILDCARD : HOST_EXACT, canonicalHost(host, wildcard), port];
}

function literal(text, where) {
  if (BAD_ESCAPE_RE.test(text))
    throw new InvalidRule(`invalid percent-escape in the ${where} (write %25 for '%')`);
  return canonicalPathSegment(text);
}

function parseRoute(text, where) {
  if (text.length > 1 && text.endsWith("/")) text = text.slice(0, -1);
  if (!text) return new SegmentPattern([]);
  const raw = text.split("/");
  if (raw.length > MAX_SEGMENTS)
    throw new InvalidRule(`more than ${MAX_SEGMENTS} segments in the ${where}`);
  const tokens = [];
  for (const seg of raw) {
    if (!seg) throw new InvalidRule(`empty segment ('//') in the ${where}`);
    if (seg === "." || seg === "..") {
      throw new InvalidRule(`dot segments ('.' or '..') are not allowed in the ${where}`);
    }
    if (seg === "**") tokens.push(DEEP);
    else if (seg.includes("**"))
      throw new InvalidRule(`'**' must be a whole segment in the ${where}`);
    else if (seg === "*") tokens.push(ANY_SEGMENT);
    else if (seg.includes("{") || seg.includes("}"))
      tokens.push(typed(seg, where, (p) => literal(p, where)));
    else if (seg.includes("*")) {
      tokens.push(
        new Glob(
          seg.split("*").map((p) => literal(p, where)),
          true,
        ),
      );
    } else tokens.push(literal(seg, where));
  }
  return new SegmentPattern(tokens);
}

function parseConditions(text, where) {
  if (!text)
    throw new InvalidRule(`empty ${where}: omit '?' or give conditions like '?a=1&b=*&!c'`);
  if (BAD_ESCAPE_RE.test(text))
    throw new InvalidRule(`invalid percent-escape in the ${where} (write %25 for '%')`);
  const conditions = [];
  for (const item of text.split("&")) {
    if (!item) throw new InvalidRule(`empty condition ('&&') in the ${where}`);
    const eqAt = item.indexOf("=");
    let name = eqAt < 0 ? item : item.slice(0, eqAt);
    const value = eqAt < 0 ? "" : item.slice(eqAt + 1);
    const negate = name.startsWith("!");
    if (negate) {
      if (eqAt >= 0)
        throw new InvalidRule(
          `'!${name.slice(1)}' means absent and takes no value in the ${where}`,
        );
      name = name.slice(1);
    }
    if (!name) throw new InvalidRule(`empty parameter name in the ${where}`);
    if (name.includes("*"))
      throw new InvalidRule(`wildcard not allowed in a parameter name in the ${where}`);
    if (name.includes("{") || name.includes("}")) {
      throw new InvalidRule(
        `placeholder not allowed in a parameter name in the ${where} ` +
          "(write %7B and %7D for literal braces)",
      );
    }
    const decoded = formDecode(name);
    if (negate) conditions.push({ name: decoded, kind: COND_ABSENT, value: "" });
    else if (eqAt < 0 || value === "*")
      conditions.push({ name: decoded, kind: COND_PRESENT, value: "" });
    else if (value.includes("{") || value.includes("}"))
      conditions.push({ name: decoded, kind: COND_EQUALS, value: typed(value, where, formDecode) });
    else if (value.includes("*")) {
      const glob = new Glob(value.split("*").map(formDecode));
      conditions.push({ name: decoded, kind: COND_EQUALS, value: glob });
    } else conditions.push({ name: decoded, kind: COND_EQUALS, value: formDecode(value) });
  }
  return conditions;
}

function conditionHolds(c, params) {
  const values = params.get(c.name);
  if (c.kind === COND_PRESENT) return values !== undefined;
  if (c.kind === COND_ABSENT) return values === undefined;
  if (values === undefined) return false;
  return typeof c.value === "string"
    ? values.includes(c.value)
    : values.some((v) => c.value.matches(v));
}

function parseFragment(text) {
  if (!text) throw new InvalidRule("empty fragment: omit '#' to ignore the URL fragment");
  if (text.includes("#")) throw new InvalidRule("'#' may appear only once in a pattern");
  // "#?model=x" and "#model=x&id=*" are conditions on the fragment's parameters (empty route).
  const [routeText, queryText] = splitFragment(text);
  const route = parseRoute(routeText, "fragment");
  const hasQuery = queryText !== "" || text.endsWith("?");
  const conditions = hasQuery ? parseConditions(queryText, "fragment query") : [];
  return { route, conditions };
}

const plural = (n, noun) => (n === 1 ? `${n} ${noun}` : `${n} ${noun}s`);

/** Compare two strings by code point (as Python does), not by UTF-16 unit. */
function compareCodePoints(a, b) {
  if (a === b) return 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0) - y.value.codePointAt(0);
    if (d) return d < 0 ? -1 : 1;
  }
}

function compareKeys(a, b) {
  for (let i = 0; i < 8; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return compareCodePoints(a[8], b[8]);
}

/** A compiled rule: its checks, its index keys, its sort key and its Match. */
export class CompiledRule {
  constructor(
    rule,
    { schemes, hostKind, host, port, path, conditions = [], fragment = null, regex = null },
  ) {
    Object.assign(this, { rule, schemes, hostKind, host, port, path, conditions, fragment, regex });
    let literal = 0;
    let typedCount = 0;
    let wildcards = 0;
    if (path !== null) {
      literal = path.literalCount + (fragment ? fragment.route.literalCount : 0);
      typedCount = path.typedCount + (fragment ? fragment.route.typedCount : 0);
      wildcards = path.wildcardCount + (fragment ? fragment.route.wildcardCount : 0);
      wildcards += (hostKind === HOST_WILDCARD ? 1 : 0) + (schemes.length > 1 ? 1 : 0);
    }
    const queries = conditions.length + (fragment ? fragment.conditions.length : 0);
    const labels = host ? host.split(".").length : 0;
    const priority = rule.priority ?? 0;
    this.sortKey = [
      -priority,
      hostKind,
      -labels,
      -literal,
      -typedCount,
      -queries,
      wildcards,
      regex ? 1 : 0,
      rule.id,
    ];
    this.match = Object.freeze({
      rule_id: rule.id,
      target: rule.target,
      pattern: rule.pattern,
      reason: this._reason(literal, typedCount, queries, wildcards, priority),
    });
    [this.indexKeys, this.indexExact] = this._indexKeys();
  }

  _reason(literal, typedCount, queries, wildcards, priority) {
    if (this.hostKind === HOST_REGEX)
      return `regular expression (ranks after pattern rules), priority ${priority}`;
    let host;
    if (this.hostKind === HOST_EXACT) host = `exact host ${this.host}`;
    else host = this.host ? `wildcard host *.${this.host}` : "any host";
    const where = this.fragment ? "path and fragment" : "path";
    const parts = [host, plural(literal, `literal ${where} segment`)];
    if (typedCount) parts.push(plural(typedCount, `typed ${where} segment`));
    if (queries) parts.push(plural(queries, "query condition"));
    if (wildcards) parts.push(plural(wildcards, "wildcard"));
    parts.push(`priority ${priority}`);
    return parts.join(", ");
  }

  _indexKeys() {
    if (this.path === null) return [[], false];
    const prefix = this.path.literalPrefix();
    if (prefix.length < this.path.tokens.length) return [prefix, false];
    if (!this.fragment) return [[...prefix, FRAGMENT_MARK], false];
    const route = this.fragment.route;
    const fprefix = route.literalPrefix();
    return [[...prefix, FRAGMENT_MARK, ...fprefix], fprefix.length === route.tokens.length];
  }

  /** The whole test of this rule against a ParsedUrl. */
  matches(url) {
    if (this.regex !== null) return this.regex.test(url.normalized);
    if (!this.schemes.includes(url.scheme)) return false;
    if (this.hostKind === HOST_EXACT) {
      if (url.host !== this.host) return false;
    } else if (this.host && url.host !== this.host && !url.host.endsWith("." + this.host))
      return false;
    if (this.port !== null && url.port !== this.port) return false;
    if (!this.path.matches(url.segments)) return false;
    if (this.conditions.length) {
      const params = url.params;
      if (!this.conditions.every((c) => conditionHolds(c, params))) return false;
    }
    const fragment = this.fragment;
    if (fragment) {
      if (!fragment.route.matches(url.fragmentSegments)) return false;
      if (fragment.conditions.length) {
        const params = url.fragmentParams;
        return fragment.conditions.every((c) => conditionHolds(c, params));
      }
    }
    return true;
  }
}

/** Compile one rule `{id, pattern, target, priority?}`; throw InvalidRule saying what is wrong. */
export function compileRule(rule) {
  const pattern = rule.pattern;
  if (typeof pattern !== "string" || !pattern) throw new InvalidRule("empty pattern");
  if (pattern.length > MAX_PATTERN_CHARS)
    throw new InvalidRule(`pattern longer than ${MAX_PATTERN_CHARS} characters`);
  if (pattern.startsWith("re:")) {
    const regex = compilePortable(pattern.slice(3));
    return new CompiledRule(rule, {
      schemes: [],
      hostKind: HOST_REGEX,
      host: "",
      port: null,
      path: null,
      regex,
    });
  }
  if (SPACE_RE.test(pattern)) {
    throw new InvalidRule("whitespace or control characters in pattern (write %20 for a space)");
  }
  if (pattern.includes("\\")) throw new InvalidRule("backslash in pattern (use '/')");
  const sepAt = pattern.indexOf("://");
  if (sepAt < 0) throw new InvalidRule("missing '://' after the scheme (or 're:' for a regex)");
  const schemes = Object.hasOwn(SCHEMES, pattern.slice(0, sepAt).toLowerCase())
    ? SCHEMES[pattern.slice(0, sepAt).toLowerCase()]
    : null;
  if (schemes === null) throw new InvalidRule("scheme must be 'http', 'https' or '*'");
  let rest = pattern.slice(sepAt + 3);
  const cuts = ["/", "?", "#"].map((c) => rest.indexOf(c)).filter((i) => i >= 0);
  const cut = cuts.length ? Math.min(...cuts) : rest.length;
  const authority = rest.slice(0, cut);
  rest = rest.slice(cut);
  if (!rest.startsWith("/")) {
    throw new InvalidRule(
      "missing path after the host: use '/' for the root page or '/**' for every page",
    );
  }
  const [hostKind, host, port] = parseAuthority(authority);
  const hashAt = rest.indexOf("#");
  const fragmentText = hashAt < 0 ? null : rest.slice(hashAt + 1);
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const qAt = rest.indexOf("?");
  const path = parseRoute((qAt < 0 ? rest : rest.slice(0, qAt)).slice(1), "path");
  const conditions = qAt < 0 ? [] : parseConditions(rest.slice(qAt + 1), "query");
  const fragment = fragmentText === null ? null : parseFragment(fragmentText);
  if (conditions.length + (fragment ? fragment.conditions.length : 0) > MAX_CONDITIONS) {
    throw new InvalidRule(`more than ${MAX_CONDITIONS} query conditions`);
  }
  return new CompiledRule(rule, { schemes, hostKind, host, port, path, conditions, fragment });
}

// ---------------------------------------------------------------------------------------------
// Matching: the naive reference and the indexed RuleSet (see server/urlrules/matcher.py).

function tryParse(url) {
  try {
    return parseUrl(url);
  } catch (e) {
    if (e instanceof InvalidUrl) return null;
    throw e;
  }
}

/** Every compiled rule tested in turn; the reference RuleSet must agree with. */
export function naiveMatch(compiledRules, url) {
  const parsed = tryParse(url);
  if (parsed === null) return [];
  const hits = [...compiledRules].filter((r) => r.matches(parsed));
  hits.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  return hits.map((r) => r.match);
}

const newNode = () => ({ children: new Map(), partial: [], exact: [] });

function collect(node, keys, out) {
  out.push(...node.partial);
  for (const key of keys) {
    node = node.children.get(key);
    if (node === undefined) return;
    out.push(...node.partial);
  }
  out.push(...node.exact);
}

/** An indexed set of rules; `match(url)` returns every matching rule's Match, best first. */
export class RuleSet {
  constructor(rules) {
    this._exact = new Map();
    this._wildcard = new Map();
    this._regex = [];
    this._compiled = [];
    const seen = new Set();
    for (const rule of rules) {
      if (seen.has(rule.id)) throw new InvalidRule(`rule '${rule.id}': duplicate rule id`, rule.id);
      seen.add(rule.id);
      let compiled;
      try {
        compiled = compileRule(rule);
      } catch (e) {
        if (e instanceof InvalidRule)
          throw new InvalidRule(`rule '${rule.id}': ${e.message}`, rule.id);
        throw e;
      }
      this._add(compiled);
    }
  }

  _add(rule) {
    this._compiled.push(rule);
    if (rule.hostKind === HOST_REGEX) {
      this._regex.push(rule);
      return;
    }
    const hosts = rule.hostKind === HOST_EXACT ? this._exact : this._wildcard;
    let node = hosts.get(rule.host);
    if (node === undefined) hosts.set(rule.host, (node = newNode()));
    for (const key of rule.indexKeys) {
      let child = node.children.get(key);
      if (child === undefined) node.children.set(key, (child = newNode()));
      node = child;
    }
    (rule.indexExact ? node.exact : node.partial).push(rule);
  }

  get size() {
    return this._compiled.length;
  }

  [Symbol.iterator]() {
    return this._compiled[Symbol.iterator]();
  }

  match(url) {
    const parsed = tryParse(url);
    return parsed === null ? [] : this.matchParsed(parsed);
  }

  matchParsed(url) {
    const candidates = [];
    const keys = url.keys;
    const root = this._exact.get(url.host);
    if (root !== undefined) collect(root, keys, candidates);
    if (this._wildcard.size) {
      let host = url.host;
      for (;;) {
        const node = this._wildcard.get(host);
        if (node !== undefined) collect(node, keys, candidates);
        const dot = host.indexOf(".");
        if (dot < 0) break;
        host = host.slice(dot + 1);
      }
      const any = this._wildcard.get("");
      if (any !== undefined) collect(any, keys, candidates);
    }
    candidates.push(...this._regex);
    const hits = candidates.filter((r) => r.matches(url));
    hits.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    return hits.map((r) => r.match);
  }
}

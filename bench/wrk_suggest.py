"""Write a wrk Lua script that POSTs a Zipf mix of page contexts to /api/v1/suggest."""

from __future__ import annotations

import json
import random


def lua_script(
    pages: list[dict[str, object]], token: str, n: int = 2000, seed: int = 3, unique: bool = False
) -> str:
    """Zipf mix of `pages`; with `unique`, each request's title gets a fresh word, so no request
    is answered from the result cache (the uncached latency)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(pages))]
    order = rng.choices(range(len(pages)), weights, k=n)
    if unique:
        # a title word no aid has: a new cache key, the same app, contexts and Whoosh query
        pages = [{**p, "title": f"{p['title']} ZQSUFFIX"} for p in pages]
    bodies = ",\n".join(json.dumps(json.dumps(p)) for p in pages)
    seq = ",".join(str(i + 1) for i in order)
    return f"""
local bodies = {{
{bodies}
}}
local order = {{{seq}}}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local n = 0
request = function()
  i = i % #order + 1
  n = n + 1
  local body = string.gsub(bodies[order[i]], "ZQSUFFIX", "zq" .. n .. "x" .. math.random(1, 1e9))
  return wrk.format(nil, "/api/v1/suggest", nil, body)
end
"""

"""How fast the side panel follows the page: navigation -> panel showing the new page's aids.

    python bench/bench_panel.py [--rounds 20] [--warm 1]

Starts the real backend (demo content) and drives Debian's Chromium with the unpacked extension,
signed in through the real Keycloak (`make keycloak`), exactly as tests/browser/ do. The panel page
is open in its own tab; the demo apps in another. Each navigation is one of: an SPA pushState (the
CRM's own links), a hash route (the expenses app) or a full page load (the HR portal, app to app).

Time is measured in the browser: from just before the navigation starts in the demo tab to the
moment the panel's `main[data-shown]` names the new page (the panel sets it when that page's
results are on screen, not while loading). "loading shown" is when the panel first says it is
updating (the old results stay, with a loading bar). The sequence is run `--warm` times untimed
first (server caches and Chromium's code caches warm), then `--rounds` navigations are timed.
Prints p50/p95 per kind and overall; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    KEYCLOAK_URL,
    Browser,
    launch,
    make_backend,
)

# (kind, target): "push" = an in-app link of the CRM (history.pushState), "hash" = a hash route of
# the expenses app, "load" = a full page load. Consecutive targets always differ.
SEQUENCE: tuple[tuple[str, str], ...] = (
    ("push", "/demo/crm/opportunities/new"),
    ("push", "/demo/crm/"),
    ("push", "/demo/crm/opportunities/1042"),
    ("push", "/demo/crm/accounts/"),
    ("load", "/demo/expenses/#/reports"),
    ("hash", "#/reports/new"),
    ("hash", "#/receipts"),
    ("hash", "#/approvals"),
    ("hash", "#/mileage"),
    ("load", "/demo/hr/timeoff.html"),
    ("load", "/demo/hr/benefits.html"),
    ("load", "/demo/hr/payslips.html"),
    ("load", "/demo/crm/reports"),
    ("push", "/demo/crm/opportunities/new"),
    ("push", "/demo/crm/"),
    ("load", "/demo/expenses/#/receipts"),
    ("hash", "#/reports"),
    ("hash", "#/reports/123/edit"),
    ("load", "/demo/hr/onboarding.html"),
    ("load", "/demo/crm/"),
)
START = "/demo/crm/"

# Panel side: record when main[data-shown] first names `url` (pageKey = tabId \n url \n title),
# and when the panel first shows it is loading after the navigation.
WATCH = """(url) => {
  const main = document.querySelector("main");
  window.__shownAt = null;
  window.__loadingAt = null;
  const now = () => performance.timeOrigin + performance.now();
  const check = () => {
    if (window.__loadingAt === null && main.getAttribute("aria-busy") === "true")
      window.__loadingAt = now();
    if (window.__shownAt === null && (main.dataset.shown || "").split("\\n")[1] === url)
      window.__shownAt = now();
  };
  window.__watch?.disconnect();
  window.__watch = new MutationObserver(check);
  window.__watch.observe(main, { attributes: true, attributeFilter: ["data-shown", "aria-busy"] });
}"""

# Demo side: note the time, then navigate the way the app (or the user) would.
NAVIGATE = """([kind, target]) => {
  const t0 = performance.timeOrigin + performance.now();
  if (kind === "hash") {
    location.hash = target;
  } else if (kind === "push") {
    const want = new URL(target, location.href).href;
    const link = [...document.querySelectorAll("a[href]")].find((a) => a.href === want);
    if (link) link.click();
    else {
      history.pushState({}, "", want);
      dispatchEvent(new PopStateEvent("popstate"));
    }
  } else {
    setTimeout(() => location.assign(target), 0);
  }
  return t0;
}"""


def keycloak_up() -> bool:
    try:
        with urllib.request.urlopen(f"{KEYCLOAK_URL}/realms/inflow", timeout=3) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round((len(values) - 1) * p))]


# A page load: when its DOMContentLoaded handlers were done (the content script runs right after).
DOM_READY = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return nav ? performance.timeOrigin + nav.domContentLoadedEventEnd : null;
}"""


def navigate(
    b: Browser, demo: Any, panel: Any, kind: str, target: str
) -> tuple[float, float, float]:
    """One navigation; ms to panel updated, to loading shown (NaN if not) and, for a page load,
    to the page's own DOMContentLoaded end (NaN for the others)."""
    base = b.backend.url
    url = (
        demo.evaluate("(h) => new URL(h, location.href).href", target)
        if kind == "hash"
        else f"{base}{target}"
    )
    panel.evaluate(WATCH, url)
    t0 = demo.evaluate(NAVIGATE, [kind, target])
    # Poll from here (the panel's CSP forbids wait_for_function's eval); the time is taken in the
    # panel by the observer, so the polling interval does not blur it.
    deadline = time.monotonic() + 15
    while panel.evaluate("window.__shownAt === null"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the panel never showed {url} ({kind})")
        time.sleep(0.01)
    ready = float("nan")
    if kind == "load":
        demo.wait_for_load_state("load")
        ready = demo.evaluate(DOM_READY) - t0
    shown, loading = panel.evaluate("[window.__shownAt, window.__loadingAt]")
    return shown - t0, (loading - t0) if loading is not None else float("nan"), ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warm", type=int, default=1, help="untimed passes first")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} not installed (apt-get install chromium)")
        return
    if not keycloak_up():
        subprocess.run(["make", "-s", "keycloak"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="inflow-bench-panel-") as tmp:
        backend = make_backend(Path(tmp) / "backend", request_log=False)
        backend.start()
        try:
            with launch(CHROMIUM, backend, Path(tmp) / "profile") as b:
                demo = b.open_demo(START)
                panel = b.open_panel()
                b.sign_in(panel)
                b.state(panel, "ready")
                visible = demo.evaluate("document.visibilityState")
                steps = [SEQUENCE[i % len(SEQUENCE)] for i in range(args.warm * len(SEQUENCE))]
                for kind, target in steps:
                    navigate(b, demo, panel, kind, target)
                times: dict[str, list[float]] = {"push": [], "hash": [], "load": []}
                loading: list[float] = []
                dom_ready: list[float] = []
                for i in range(args.rounds):
                    kind, target = SEQUENCE[i % len(SEQUENCE)]
                    took, bar, ready = navigate(b, demo, panel, kind, target)
                    times[kind].append(took)
                    if ready == ready:  # not NaN
                        dom_ready.append(ready)
                    if bar == bar:  # not NaN
                        loading.append(bar)
        finally:
            backend.stop()
    every = [t for ts in times.values() for t in ts]
    print(
        f"panel speed: {len(every)} navigations (demo tab {visible}): navigation -> panel updated"
    )
    for kind, ts in times.items():
        if ts:
            print(
                f"  {kind:<5} n={len(ts):2d}  p50 {statistics.median(ts):6.0f} ms"
                f"  p95 {pct(ts, 0.95):6.0f} ms  max {max(ts):6.0f} ms"
            )
    print(
        f"  all   n={len(every):2d}  p50 {statistics.median(every):6.0f} ms"
        f"  p95 {pct(every, 0.95):6.0f} ms  (target: p50 <= 150 ms, p95 <= 300 ms)"
    )
    if dom_ready:
        print(
            f"  (of a page load, the page's own DOMContentLoaded: p50"
            f" {statistics.median(dom_ready):.0f} ms, p95 {pct(dom_ready, 0.95):.0f} ms)"
        )
    if loading:
        print(
            f"  loading bar shown: p50 {statistics.median(loading):6.0f} ms"
            f"  (n={len(loading)}; not shown when results came first)"
        )


if __name__ == "__main__":
    main()

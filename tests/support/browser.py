"""Helpers for the browser tests (headless Chromium through Playwright): a signed-in session,
the Content-Security-Policy violations a page reports, and how far a page overflows sideways."""

import shutil
from typing import TYPE_CHECKING, Any

from tests.support.sessions import session_key_for

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam  # add_cookies(): not re-exported

# Debian's chromium-headless-shell: Chromium's headless mode as a program of its own (what
# Playwright runs headless tests on), the same Blink and V8 as Debian's chromium without the
# desktop browser around them. A walk of the demo costs it half the CPU the full browser's
# headless mode does (docs/benchmarks.md). The full browser where only it is installed; tests
# marked `browser` are skipped where neither is (tests/conftest.py).
CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Registered before any page script runs, so a violation during the first paint counts too.
COLLECT_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


def csp_collect(context: Any, page: Any) -> None:
    """Collect the CSP violations of every page `page` shows: what the page's own listener
    (added to `context`) sees, and what Chromium logs to the console. Read with
    csp_violations(page); call before the first goto."""
    context.add_init_script(COLLECT_CSP_VIOLATIONS)
    page.console_csp = []
    page.on(
        "console",
        lambda m: "Content Security Policy" in m.text and page.console_csp.append(m.text),
    )


def csp_violations(page: Any) -> list[str]:
    """The violations of the page shown now, and every one logged since csp_collect."""
    return list(page.evaluate("window.__cspViolations || []")) + page.console_csp


def horizontal_overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 or less: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def session_cookie(user: Any, url: str) -> "SetCookieParam":
    return {"name": "sessionid", "value": session_key_for(user), "url": url}

"""Headless Chromium for the browser tests: the system build Playwright drives (its own download
fails here), a browser wallet shim, and a recorder of Content-Security-Policy violations."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

WALLET_SHIM = """
window.ethereum = {
  isMetaMask: false,
  request: async ({ method, params }) => {
    if (method === "eth_requestAccounts") return [window.__walletAddress.toLowerCase()];
    if (method === "personal_sign") return await window.walletSign(params[0], params[1]);
    throw new Error("unsupported method " + method);
  },
};
"""


# Records every Content-Security-Policy violation a page reports, before any page script runs.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def csp_violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__cspViolations || []"))

// Crowdmint contributor pages: wallet sign-in (EIP-1193 + EIP-4361), keyboard-first labeling, uploads.
// Talks only to the REST API, with the session cookie and Django's CSRF token.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function api(path, options = {}) {
    const headers = Object.assign({ "X-CSRFToken": csrf() }, options.headers || {});
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options, { headers }));
    let body = null;
    if (response.status !== 204) {
      try { body = await response.json(); } catch (_) { body = null; }
    }
    // ``date``: the server's clock (the Date header), to read its times on this device's clock.
    return { status: response.status, ok: response.ok, body, date: response.headers.get("Date") };
  }

  // An API error's message; a proxy's HTML error page has none.
  function detailOf(result) {
    const detail = result.body && result.body.detail;
    return typeof detail === "string" ? detail : `the server answered ${result.status}`;
  }

  function siweMessage({ domain, address, uri, chainId, nonce, issuedAt }) {
    return `${domain} wants you to sign in with your Ethereum account:\n${address}\n\n` +
      `Sign in to Crowdmint.\n\nURI: ${uri}\nVersion: 1\nChain ID: ${chainId}\n` +
      `Nonce: ${nonce}\nIssued At: ${issuedAt}`;
  }

  async function signInWithWallet(statusEl, next) {
    if (!window.ethereum) {
      statusEl.textContent = "No browser wallet found. Install one (e.g. MetaMask) to sign in.";
      return;
    }
    statusEl.textContent = "Waiting for your wallet…";
    const [account] = await window.ethereum.request({ method: "eth_requestAccounts" });
    const challenge = await api(`/api/v1/auth/nonce?address=${encodeURIComponent(account)}`);
    if (!challenge.ok) { statusEl.textContent = `Sign-in failed: ${detailOf(challenge)}`; return; }
    const message = siweMessage({
      domain: challenge.body.domain,
      address: challenge.body.address,
      uri: window.location.origin + "/",
      chainId: challenge.body.chain_id,
      nonce: challenge.body.nonce,
      // The server's time, not this device's: a clock running five minutes fast would make the
      // message "issued in the future", and refused.
      issuedAt: challenge.body.issued_at || new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    });
    const signature = await window.ethereum.request({ method: "personal_sign", params: [message, account] });
    const result = await api("/api/v1/auth/siwe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message, signature }),
    });
    if (!result.ok) { statusEl.textContent = `Sign-in refused: ${detailOf(result)}`; return; }
    statusEl.textContent = `Signed in as ${result.body.address}`;
    // Only a path on this site (the server already checks it): never "//host", "/\\host" or "javascript:".
    const sameSite = typeof next === "string" && next.startsWith("/") && !/^\/[\/\\]/.test(next);
    window.location.assign(sameSite ? next : "/");
  }

  function initSignIn() {
    const button = document.getElementById("wallet-signin");
    const statusEl = document.getElementById("signin-status");
    button.addEventListener("click", () => {
      // One sign-in at a time: a double click would ask the wallet to sign twice.
      if (button.disabled) return;
      button.disabled = true;
      signInWithWallet(statusEl, button.dataset.next)
        .catch((err) => {
          statusEl.textContent = `Sign-in failed: ${err.message || err}`;
        })
        .finally(() => {
          button.disabled = false;
        });
    });
  }

  // Shared with the page scripts (labeling.js, contribute.js), which load after this one.
  window.Crowdmint = { api, csrf, siweMessage, initSignIn };

  // The pages carry no inline script (Content-Security-Policy): each names itself in <body data-page>.
  const pages = { "sign-in": initSignIn };
  const init = pages[document.body.dataset.page];
  if (init) init();
})();

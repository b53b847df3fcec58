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
    return { status: response.status, ok: response.ok, body };
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
    if (!challenge.ok) { statusEl.textContent = challenge.body.detail; return; }
    const message = siweMessage({
      domain: challenge.body.domain,
      address: challenge.body.address,
      uri: window.location.origin + "/",
      chainId: challenge.body.chain_id,
      nonce: challenge.body.nonce,
      issuedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    });
    const signature = await window.ethereum.request({ method: "personal_sign", params: [message, account] });
    const result = await api("/api/v1/auth/siwe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message, signature }),
    });
    if (!result.ok) { statusEl.textContent = `Sign-in refused: ${result.body.detail}`; return; }
    statusEl.textContent = `Signed in as ${result.body.address}`;
    // Only a path on this site (the server already checks it): never "//host", "/\\host" or "javascript:".
    const sameSite = typeof next === "string" && next.startsWith("/") && !/^\/[\/\\]/.test(next);
    window.location.assign(sameSite ? next : "/");
  }

  function initSignIn() {
    const button = document.getElementById("wallet-signin");
    const statusEl = document.getElementById("signin-status");
    button.addEventListener("click", () => {
      signInWithWallet(statusEl, button.dataset.next).catch((err) => {
        statusEl.textContent = `Sign-in failed: ${err.message || err}`;
      });
    });
  }

  function initLabeling() {
    const section = document.getElementById("task");
    const projectId = section.dataset.project;
    const classes = JSON.parse(document.getElementById("classes-data").textContent);
    const content = document.getElementById("task-content");
    const choices = document.getElementById("choices");
    const statusEl = document.getElementById("task-status");
    const doneEl = document.getElementById("done-count");
    let current = null;
    let busy = false;

    classes.forEach((name, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.label = name;
      button.innerHTML = `<kbd>${i + 1}</kbd> `;
      button.appendChild(document.createTextNode(name));
      button.addEventListener("click", () => submit(name));
      choices.appendChild(button);
    });
    const skipButton = document.createElement("button");
    skipButton.type = "button";
    skipButton.className = "skip";
    skipButton.innerHTML = "<kbd>S</kbd> ";
    skipButton.appendChild(document.createTextNode("Skip"));
    skipButton.addEventListener("click", () => skip());
    choices.appendChild(skipButton);

    function show(item) {
      current = item;
      content.replaceChildren();
      if (!item) {
        content.textContent = "No tasks left in this project. Thank you!";
        choices.hidden = true;
        return;
      }
      choices.hidden = false;
      if (item.image_url) {
        const img = document.createElement("img");
        img.src = item.image_url;
        img.alt = `item ${item.id}`;
        content.appendChild(img);
      } else {
        const p = document.createElement("p");
        p.className = "text-item";
        p.textContent = item.text;
        content.appendChild(p);
      }
      content.dataset.item = item.id;
    }

    async function loadNext() {
      let next;
      try {
        next = await api(`/api/v1/projects/${projectId}/next-task/`);
      } catch (err) {
        statusEl.textContent = `Could not reach the server (${err.message || err}); reload to retry.`;
        return;
      }
      if (next.status === 204) return show(null);
      if (!next.ok) { statusEl.textContent = next.body ? next.body.detail : "Could not load a task."; return; }
      show(next.body);
    }

    // One request about the item on screen at a time. Offline or with the server unreachable, the
    // item stays on screen so the key can be pressed again; otherwise the next item is loaded.
    async function act(path, options, onDone, failure) {
      if (!current || busy) return;
      busy = true;
      let result;
      try {
        result = await api(path, Object.assign({ method: "POST" }, options));
      } catch (err) {
        statusEl.textContent = `Could not reach the server (${err.message || err}); try again.`;
        return;
      } finally {
        busy = false;
      }
      if (result.ok) onDone();
      else statusEl.textContent = result.body ? result.body.detail : failure;
      await loadNext();
    }

    function submit(label) {
      const id = current && current.id;
      return act(`/api/v1/items/${id}/annotations/`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ label }),
      }, () => {
        doneEl.textContent = String(Number(doneEl.textContent) + 1);
        statusEl.textContent = `Saved “${label}” for item ${id}.`;
      }, "Could not save the label.");
    }

    function skip() {
      const id = current && current.id;
      return act(`/api/v1/items/${id}/skip`, {}, () => {
        statusEl.textContent = `Skipped item ${id}.`;
      }, "Could not skip the item.");
    }

    document.addEventListener("keydown", (event) => {
      if (event.target.closest && event.target.closest("input, textarea")) return;
      if (event.key === "s" || event.key === "S") {
        event.preventDefault();
        skip();
        return;
      }
      const n = Number(event.key);
      if (Number.isInteger(n) && n >= 1 && n <= classes.length) {
        event.preventDefault();
        submit(classes[n - 1]);
      }
    });
    loadNext();
  }

  function initContribute() {
    const form = document.getElementById("contribute");
    const statusEl = document.getElementById("contribute-status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const url = `/api/v1/projects/${form.dataset.project}/items/`;
      let result;
      const accepted = form.elements.licence_accepted.checked;
      if (form.dataset.kind === "text") {
        result = await api(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text: form.elements.text.value, licence_accepted: accepted }),
        });
      } else {
        const data = new FormData();
        data.append("file", form.elements.file.files[0]);
        data.append("licence_accepted", accepted ? "true" : "false");
        result = await api(url, { method: "POST", body: data });
      }
      statusEl.textContent = result.ok ? `Uploaded as item ${result.body.id}.` : `Refused: ${result.body.detail}`;
      if (result.ok) {
        form.elements[form.dataset.kind === "text" ? "text" : "file"].value = "";
      }
    });
  }

  window.Crowdmint = { initSignIn, initLabeling, initContribute, siweMessage };

  // The pages carry no inline script (Content-Security-Policy): each names itself in <body data-page>.
  const pages = { "sign-in": initSignIn, labeling: initLabeling, contribute: initContribute };
  const init = pages[document.body.dataset.page];
  if (init) init();
})();

// The upload page: several images at once (picked or dropped), each with its own progress and
// its own error in plain words; texts one at a time; and the list of my uploads with where each
// stands. The API takes one item per request.
"use strict";
(function () {
  const form = document.getElementById("contribute");
  if (!form || !window.Crowdmint) return;
  const { api, csrf } = window.Crowdmint;
  const $ = (id) => document.getElementById(id);

  const statusEl = $("contribute-status");
  const button = $("upload-button");
  const queueEl = $("upload-queue");
  const dropzone = $("dropzone");
  const fileInput = $("file-input");
  const offlineEl = $("offline-banner");
  const uploadsEl = $("my-uploads");
  const projectId = form.dataset.project;
  const maxBytes = Number(form.dataset.maxBytes);
  const url = `/api/v1/projects/${projectId}/items/`;
  const texts = form.dataset.kind === "text"; // a text project's queue holds .txt files
  const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"];
  const STATES = {
    waiting: "Waiting for labels",
    labeling: "Being labeled",
    accepted: "Accepted",
    rejected: "Rejected",
  };
  let uploading = false;
  const queue = []; // { file, row, bar, note, state: ready | uploading | done | refused | failed }

  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function say(text) {
    statusEl.textContent = text;
  }

  function megabytes(bytes) {
    const value = Number(bytes) / (1024 * 1024);
    if (value >= 10) return `${Math.round(value)} MB`;
    return `${value.toFixed(1).replace(/\.0$/, "")} MB`;
  }

  function sizeInWords(bytes) {
    if (bytes < 1024) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
    return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : megabytes(bytes);
  }

  function detailOf(result) {
    return result && result.body && typeof result.body.detail === "string" ? result.body.detail : "";
  }

  function signedOut(result) {
    return result.status === 401 || (result.status === 403 && /credentials were not provided/i.test(detailOf(result)));
  }

  // The API's messages are for developers ("the file is 11534344 bytes; the limit is
  // 10485760"); contributors read these.
  function inWords(result) {
    const detail = detailOf(result);
    let m;
    if (signedOut(result)) return "Your session has ended: sign in again (your choices stay on this page), then press Upload.";
    if (result.status === 403 && /CSRF/i.test(detail)) return "This page was open across a sign-in: reload it, then press Upload again.";
    if (result.status === 413) return `This file is too large; the limit is ${megabytes(maxBytes)}.`;
    if (result.status === 429) {
      m = /try again in (.+)$/.exec(detail);
      if (m) return `You have reached today's upload limit for this project; try again in ${m[1]}.`;
      m = /(\d+) second/.exec(detail);
      return `Too many uploads at once: wait ${m ? `${m[1]} s` : "a moment"}, then press Upload again.`;
    }
    if (result.status === 409) {
      const id = result.body && result.body.existing_id;
      return /near duplicate/.test(detail)
        ? `Not uploaded: a near duplicate of item ${id}, which this project already has (a resized, re-encoded, mirrored or rotated copy, or the same text but for case, spacing or punctuation).`
        : `Not uploaded: a duplicate of item ${id}, which this project already has.`;
    }
    if ((m = /is (\d+) bytes; the limit is (\d+)/.exec(detail))) return `This file is ${megabytes(m[1])}; the limit is ${megabytes(m[2])}.`;
    if (/not an image|unsupported image format/.test(detail)) return "This isn't an image we can read. Use a JPEG, PNG or WebP file.";
    if (/damaged or truncated/.test(detail)) return "This image seems damaged or cut short. Save it again and retry.";
    if ((m = /has (\d+) pixels; the limit is (\d+)/.exec(detail))) {
      return `This image has too many pixels (${(m[1] / 1e6).toFixed(1)} million; the limit is ${(m[2] / 1e6).toFixed(1)} million). Make it smaller.`;
    }
    if (/too many pixels/.test(detail)) return "This image has too many pixels. Make it smaller.";
    if (/the file is empty/.test(detail)) return "This file is empty.";
    if (/licence_accepted/.test(detail)) return "Tick the licence box first.";
    if ((m = /is (\d+) characters long; the limit is (\d+)/.exec(detail))) return `This text is ${m[1]} characters long; the limit is ${m[2]}.`;
    if (/NUL character/.test(detail)) return "The text contains a character that can't be stored (NUL).";
    if (/is empty/.test(detail)) return "The text is empty.";
    if (/of a pair are the same/.test(detail)) return "The two sides of the pair are the same: choose two different ones.";
    if (result.status >= 500) return "Something went wrong on our side. Try again in a minute.";
    return detail ? `Not uploaded: ${detail}.` : "Not uploaded.";
  }

  // XMLHttpRequest rather than fetch: only it reports upload progress.
  function send(body, onProgress, contentType) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrf());
      if (contentType) xhr.setRequestHeader("Content-Type", contentType);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let parsed = null;
        try {
          parsed = JSON.parse(xhr.responseText);
        } catch (_) {
          parsed = null;
        }
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, body: parsed });
      });
      xhr.addEventListener("error", () => reject(new Error("the connection failed")));
      xhr.addEventListener("abort", () => reject(new Error("aborted")));
      xhr.send(body);
    });
  }

  // ---- the queue of images -------------------------------------------------------------------

  function setState(entry, state, note) {
    entry.state = state;
    entry.row.dataset.state = state;
    entry.note.textContent = note;
  }

  function addFiles(files) {
    for (const file of Array.from(files)) {
      const bar = h("progress", { max: "1", value: "0" });
      const note = h("span", { class: "note", "data-testid": "upload-note" });
      const thumb = !texts && IMAGE_TYPES.includes(file.type)
        ? h("img", { class: "thumb", alt: "", src: URL.createObjectURL(file) })
        : h("span", { class: "thumb" });
      thumb.addEventListener("error", () => thumb.replaceWith(h("span", { class: "thumb" })));
      const remove = h("button", { type: "button", class: "link-button", "aria-label": `Remove ${file.name}` }, "Remove");
      const row = h(
        "li",
        { class: "upload-row", "data-testid": "upload-row" },
        thumb,
        h("span", { class: "file-name" }, h("strong", {}, file.name), " ", h("span", { class: "meta" }, sizeInWords(file.size))),
        bar,
        note,
        remove
      );
      const entry = { file, row, bar, note, state: "ready" };
      remove.addEventListener("click", (event) => {
        event.currentTarget.blur();
        if (entry.state === "uploading") return;
        queue.splice(queue.indexOf(entry), 1);
        row.remove();
      });
      queue.push(entry);
      queueEl.append(row);
      if (texts) {
        const plain = file.type.startsWith("text/") || /\.txt$/i.test(file.name);
        setState(entry, plain ? "ready" : "refused", plain ? "Ready" : "This isn't a text file: use .txt files, one text each.");
      } else if (file.size > maxBytes) {
        setState(entry, "refused", `This file is ${megabytes(file.size)}; the limit is ${megabytes(maxBytes)}.`);
      } else if (file.type && !IMAGE_TYPES.includes(file.type)) {
        setState(entry, "refused", "This isn't an image we can read. Use a JPEG, PNG or WebP file.");
      } else {
        setState(entry, "ready", "Ready");
      }
    }
    say("");
  }

  async function uploadOne(entry) {
    setState(entry, "uploading", "Uploading…");
    let result;
    try {
      const progress = (share) => {
        entry.bar.value = share;
      };
      if (texts) {
        const body = JSON.stringify({ text: await entry.file.text(), licence_accepted: true });
        result = await send(body, progress, "application/json");
      } else {
        const data = new FormData();
        data.append("file", entry.file);
        data.append("licence_accepted", "true");
        result = await send(data, progress);
      }
    } catch (_) {
      setState(entry, "failed", navigator.onLine ? "Could not reach the server: not uploaded. Press Upload to retry." : "You are offline: not uploaded. Press Upload to retry once you are back online.");
      return false;
    }
    if (result.ok) {
      entry.bar.value = 1;
      setState(entry, "done", `Uploaded as item ${result.body.id}.`);
      return true;
    }
    // A network-ish or session problem can be retried; a refusal of the file can't.
    const retry = signedOut(result) || result.status >= 500 || (result.status === 429 && !/today/.test(detailOf(result)));
    entry.bar.value = 0;
    setState(entry, retry ? "failed" : "refused", inWords(result));
    return false;
  }

  async function uploadQueue() {
    const todo = queue.filter((entry) => entry.state === "ready" || entry.state === "failed");
    if (!todo.length) {
      say(queue.length ? "Nothing left to upload: add more files." : `Choose or drop some ${texts ? "texts" : "images"} first.`);
      return;
    }
    let uploaded = 0;
    for (const [i, entry] of todo.entries()) {
      say(`Uploading ${i + 1} of ${todo.length}…`);
      if (await uploadOne(entry)) uploaded++;
    }
    const failed = todo.length - uploaded;
    say(`${uploaded} of ${todo.length} uploaded${failed ? `; ${failed} not: see the reasons beside each file` : ""}.`);
    if (todo.some((entry) => /session has ended/.test(entry.note.textContent))) {
      statusEl.append(" ", h("a", { href: form.dataset.login }, "Sign in again"));
    }
  }

  // ---- texts, and pairs of images ------------------------------------------------------------

  async function uploadSingle() {
    const elements = form.elements;
    let result;
    try {
      if (form.dataset.kind === "text") {
        const body = { text: elements.text.value, licence_accepted: true };
        if (elements.text_b) body.text_b = elements.text_b.value;
        result = await api(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      } else {
        const [a, b] = [elements.file.files[0], elements.file_b.files[0]];
        if (!a || !b) {
          say("Choose both images of the pair.");
          return;
        }
        for (const file of [a, b]) {
          if (file.size > maxBytes) {
            say(`${file.name}: this file is ${megabytes(file.size)}; the limit is ${megabytes(maxBytes)}.`);
            return;
          }
        }
        const data = new FormData();
        data.append("file", a);
        data.append("file_b", b);
        data.append("licence_accepted", "true");
        result = await send(data, (share) => say(`Uploading… ${Math.round(share * 100)}%`));
      }
    } catch (_) {
      say(navigator.onLine ? "Could not reach the server: nothing was uploaded. Try again." : "You are offline: nothing was uploaded. Try again once you are back online.");
      return;
    }
    if (result.ok) {
      say(`Uploaded as item ${result.body.id}.`);
      for (const name of ["text", "text_b", "file", "file_b"]) {
        if (elements[name]) elements[name].value = "";
      }
      return;
    }
    say(inWords(result));
    if (signedOut(result)) statusEl.append(" ", h("a", { href: form.dataset.login }, "Sign in again"));
  }

  // ---- the form ------------------------------------------------------------------------------

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    // Set before anything awaits: a double click (or Enter twice) uploads once.
    if (uploading) return;
    if (!navigator.onLine) {
      say("You are offline: nothing was uploaded. Try again once you are back online.");
      return;
    }
    if (!form.elements.licence_accepted.checked) {
      say("Tick the licence box first: you accept the project's licence for what you upload.");
      return;
    }
    uploading = true;
    button.disabled = true;
    button.textContent = "Uploading…";
    try {
      // A text project takes the text typed in, and .txt files queued; an image project its queue.
      const typed = texts && form.elements.text.value.trim() !== "";
      const queued = queueEl && queue.some((entry) => entry.state === "ready" || entry.state === "failed");
      if (queueEl && (!texts || queued || !typed)) await uploadQueue();
      if (!queueEl || typed) await uploadSingle();
    } finally {
      uploading = false;
      button.disabled = false;
      button.textContent = "Upload";
    }
    loadUploads();
  });

  if (fileInput) {
    fileInput.addEventListener("change", () => {
      addFiles(fileInput.files);
      fileInput.value = "";
    });
  }
  if (dropzone) {
    for (const name of ["dragenter", "dragover"]) {
      dropzone.addEventListener(name, (event) => {
        event.preventDefault();
        dropzone.classList.add("over");
      });
    }
    dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
    dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropzone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
    });
  }

  function showOnline() {
    offlineEl.hidden = navigator.onLine;
  }
  window.addEventListener("online", showOnline);
  window.addEventListener("offline", showOnline);
  showOnline();

  // ---- my uploads ----------------------------------------------------------------------------

  async function loadUploads() {
    let result;
    try {
      result = await api(`/api/v1/me/uploads/?project=${projectId}`);
    } catch (_) {
      return;
    }
    if (!result.ok || !Array.isArray(result.body)) return;
    const rows = result.body.map((row) =>
      h(
        "li",
        { class: "upload", "data-testid": `upload-${row.id}` },
        row.image_url
          ? h("img", { class: "thumb", src: row.image_url, alt: `Item ${row.id}`, loading: "lazy" })
          : h("span", { class: "preview-text" }, row.preview_text),
        h(
          "span",
          { class: "upload-meta" },
          h("strong", {}, `Item ${row.id}`),
          " ",
          h("span", { class: `badge ${row.state}`, "data-testid": "upload-state" }, STATES[row.state] || row.state),
          " ",
          h("time", { class: "meta", datetime: row.created_at }, new Date(row.created_at).toLocaleDateString())
        )
      )
    );
    uploadsEl.replaceChildren(...(rows.length ? rows : [h("li", { class: "meta" }, "Nothing uploaded yet.")]));
  }

  loadUploads();
})();

// The labeling page: one item at a time, leased by the server, answered by keyboard or mouse.
// Every task has an editor: classify (one class), multilabel (toggles), boxes (drawn on a
// canvas over the image), spans (text selection) and pairwise (A or B). The next item is
// preloaded; the last answer can be undone; an answer given while signed out is kept in this
// tab's session storage and sent after sign-in.
"use strict";
(function () {
  const section = document.getElementById("task");
  if (!section || !window.Crowdmint) return;
  const { api } = window.Crowdmint;
  const $ = (id) => document.getElementById(id);

  const projectId = section.dataset.project;
  const taskKind = section.dataset.task;
  const spansMayOverlap = section.dataset.overlap === "yes";
  const undoSeconds = Number(section.dataset.undoSeconds || "0");
  // A phone or tablet: selections are made with handles, and shortcuts have no keys.
  const touchFirst = Boolean(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
  // On a phone the guidelines, open, would push the answer's buttons below the fold: there they
  // start folded (a tap on "Guidelines" opens them); a desktop shows them open.
  const guidelinesEl = $("guidelines");
  if (guidelinesEl && window.matchMedia && window.matchMedia("(max-width: 640px), (max-height: 500px)").matches) {
    guidelinesEl.open = false;
  }
  const classes = JSON.parse($("classes-data").textContent);
  const content = $("task-content");
  const answerEl = $("answer");
  const statusEl = $("task-status");
  const submitButton = $("submit-button");
  const skipButton = $("skip-button");
  const undoButton = $("undo-button");
  // The same, on the "no tasks left" card (the task section, and its button, are hidden there).
  const emptyUndoButton = $("empty-undo-button");
  const feedbackEl = $("feedback");
  const emptyEl = $("empty");
  const promptEl = $("signin-prompt");
  const historyEl = $("history");
  const PENDING_KEY = `crowdmint.pending.${projectId}`;
  // My last answer or skip while it can still be taken back, kept across a reload of the page.
  const UNDO_KEY = `crowdmint.undo.${projectId}`;
  const MULTI_PART = ["multilabel", "boxes", "spans"].includes(taskKind);
  // The same nine colours as .c0 … .c8 in style.css.
  const PALETTE = ["#0b7a5a", "#c2410c", "#1d4ed8", "#a21caf", "#b45309", "#0e7490", "#be123c", "#4d7c0f", "#6d28d9"];
  const ITEM_STATUS = {
    open: "waiting for consensus",
    review: "in review",
    accepted: "accepted",
    rejected: "rejected",
  };

  let current = null; // the item on screen
  let preloaded = null; // the next one, already leased and fetched
  let preloading = null; // the preload's request while it is in flight
  let editor = null;
  let busy = false;
  let feedbackOpen = false;
  let signedOut = false;
  let lastAnswer = null; // { id, item, value, undoUntil } of my last answer, or { skip: true, item, undoUntil }
  let undoTimer = null;

  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A clicked button gives its focus back at once: Space or Enter must not press it again on
  // the next item.
  function onClick(button, action) {
    button.addEventListener("click", (event) => {
      event.currentTarget.blur();
      action(event);
    });
    return button;
  }

  function keyButton(key, text, action, props = {}) {
    return onClick(h("button", Object.assign({ type: "button" }, props), h("kbd", {}, key), " ", text), action);
  }

  function say(text) {
    statusEl.textContent = text;
  }

  // Said after what is already there ("Saved …"), not instead of it.
  function sayToo(text) {
    statusEl.textContent = statusEl.textContent ? `${statusEl.textContent} ${text}` : text;
  }

  function detailOf(result, fallback) {
    return result && result.body && typeof result.body.detail === "string" ? result.body.detail : fallback;
  }

  function classIndex(label) {
    const i = classes.indexOf(label);
    return i < 0 ? 0 : i % PALETTE.length;
  }

  function describe(value) {
    if (!value || typeof value !== "object") return String(value);
    if ("label" in value) return String(value.label);
    if ("choice" in value) return String(value.choice).toUpperCase();
    if ("labels" in value) return value.labels.length ? value.labels.join(", ") : "none of the classes";
    if ("boxes" in value) {
      const n = value.boxes.length;
      return n ? `${n} box${n === 1 ? "" : "es"} (${value.boxes.map((b) => b.label).join(", ")})` : "no boxes";
    }
    if ("spans" in value) {
      const n = value.spans.length;
      return n ? `${n} span${n === 1 ? "" : "s"} (${value.spans.map((s) => s.label).join(", ")})` : "no spans";
    }
    return JSON.stringify(value);
  }

  function timeAgo(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return new Date(iso).toLocaleDateString();
  }

  // The session ended (expired, or signed out in another tab): DRF answers 401 or 403 with
  // "Authentication credentials were not provided."
  function isSignedOut(result) {
    if (result.status === 401) return true;
    return result.status === 403 && /credentials were not provided|not authenticated/i.test(detailOf(result, ""));
  }

  // Signing in again in another tab rotates the CSRF token: this page's copy is then stale.
  function csrfFailed(result) {
    return result.status === 403 && /CSRF/i.test(detailOf(result, ""));
  }

  function showSignInPrompt(keptAnswer = false) {
    signedOut = true;
    $("signin-detail").textContent = keptAnswer
      ? "Your answer is kept in this tab and will be sent once you sign in again."
      : "Sign in again to go on.";
    promptEl.hidden = false;
    section.classList.add("paused");
    say("");
  }

  // ---- showing items -------------------------------------------------------------------------

  function textBlock(text, extra = {}) {
    return h("p", Object.assign({ class: "text-item" }, extra), text);
  }

  // ---- zoom and pan on images ----------------------------------------------------------------

  const ZOOM_MIN = 1;
  const ZOOM_MAX = 8;
  const ZOOM_STEP = 1.25; // one press of + or −
  const ZOOM_KEYS = new Set(["+", "=", "-", "_", "0"]);
  let zooms = []; // the zoomable images of the item on screen
  let spaceHeld = false; // Space+drag pans the boxes' image (a plain drag draws there)

  // Zoom (1×–8×) and pan of ``target`` inside ``frame``, which clips it and is never transformed
  // itself: the wheel (or a trackpad's pinch) zooms around the pointer, + and − around the
  // centre, 0 resets (the keyboard handler below), two fingers pinch and move it. The caller
  // wires one-pointer drags (on the boxes' image a plain drag draws). ``onChange`` is told after
  // every change (the boxes' canvas redraws). ``view``: the target's scale ``s`` and its offset
  // ``tx``, ``ty`` in CSS pixels of the frame.
  function zoomable(frame, target, onChange) {
    const view = { s: 1, tx: 0, ty: 0 };
    target.classList.add("zoom-target");
    target.setAttribute("draggable", "false"); // the browser's own image drag would steal a pan

    function apply() {
      const w = frame.clientWidth;
      const tall = frame.clientHeight;
      view.s = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, view.s));
      // The image always covers the frame: no panning it out of sight.
      view.tx = Math.min(0, Math.max(w - w * view.s, view.tx));
      view.ty = Math.min(0, Math.max(tall - tall * view.s, view.ty));
      target.style.transform = view.s === 1 ? "" : `translate(${view.tx}px, ${view.ty}px) scale(${view.s})`;
      frame.classList.toggle("zoomed", view.s > 1);
      frame.dataset.zoom = String(Math.round(view.s * 100) / 100);
      if (onChange) onChange();
    }

    // ``x``, ``y``: the point that stays put, in CSS pixels of the frame (its centre if absent).
    function zoomAt(factor, x, y) {
      const s = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, view.s * factor));
      if (s === view.s) return;
      const px = x === undefined ? frame.clientWidth / 2 : x;
      const py = y === undefined ? frame.clientHeight / 2 : y;
      view.tx = px - ((px - view.tx) * s) / view.s;
      view.ty = py - ((py - view.ty) * s) / view.s;
      view.s = s;
      apply();
    }

    function panBy(dx, dy) {
      if (view.s <= ZOOM_MIN) return;
      view.tx += dx;
      view.ty += dy;
      apply();
    }

    function reset() {
      Object.assign(view, { s: 1, tx: 0, ty: 0 });
      apply();
    }

    function local(event) {
      const rect = frame.getBoundingClientRect();
      return { x: event.clientX - rect.left, y: event.clientY - rect.top };
    }

    frame.addEventListener(
      "wheel",
      (event) => {
        // Out at 1× is the page's: the page scrolls on past the image as it always did.
        if (!event.deltaY || (event.deltaY > 0 && view.s <= ZOOM_MIN && !event.ctrlKey)) return;
        event.preventDefault(); // nor the page's scroll, nor (Ctrl: a trackpad's pinch) its zoom
        const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
        // A pinch comes in many small steps; a wheel's notch is about 100 pixels (×1.22).
        const rate = event.ctrlKey ? 0.01 : 0.002;
        const p = local(event);
        zoomAt(Math.exp(-event.deltaY * unit * rate), p.x, p.y);
      },
      { passive: false }
    );

    // Two fingers: their spread zooms around their midpoint, which drags the image along.
    const fingers = new Map();
    let pinch = null;
    function measure() {
      const [a, b] = [...fingers.values()];
      return { d: Math.hypot(a.x - b.x, a.y - b.y) || 1, m: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
    }
    const touch = {
      // Both return whether a pinch is on (the caller's own drag then stops).
      down(event) {
        if (event.pointerType !== "touch") return pinch !== null;
        fingers.set(event.pointerId, local(event));
        pinch = fingers.size === 2 ? measure() : null;
        return pinch !== null;
      },
      move(event) {
        if (!fingers.has(event.pointerId)) return false;
        fingers.set(event.pointerId, local(event));
        if (!pinch || fingers.size !== 2) return pinch !== null;
        const now = measure();
        zoomAt(now.d / pinch.d, now.m.x, now.m.y);
        panBy(now.m.x - pinch.m.x, now.m.y - pinch.m.y);
        pinch = now;
        return true;
      },
      up(event) {
        fingers.delete(event.pointerId);
        if (fingers.size < 2) pinch = null;
      },
      pinching: () => pinch !== null,
    };

    const zoom = { view, zoomAt, panBy, reset, apply, touch };
    zooms.push(zoom);
    return zoom;
  }

  // An image of a classify, multilabel or pairwise item, in its zoom frame: there a drag (one
  // finger on a touch screen) pans the zoomed image.
  function zoomImage(img) {
    const frame = h("div", { class: "zoom-frame", "data-testid": "zoom-frame" }, img);
    const zoom = zoomable(frame, img);
    let pan = null;
    frame.addEventListener("pointerdown", (event) => {
      if (zoom.touch.down(event)) {
        pan = null;
        frame.setPointerCapture(event.pointerId);
        return;
      }
      if (zoom.view.s <= ZOOM_MIN || (event.pointerType === "mouse" && event.button > 1)) return;
      event.preventDefault();
      frame.setPointerCapture(event.pointerId);
      pan = { pointer: event.pointerId, x: event.clientX, y: event.clientY };
    });
    frame.addEventListener("pointermove", (event) => {
      if (zoom.touch.move(event) || !pan || event.pointerId !== pan.pointer) return;
      zoom.panBy(event.clientX - pan.x, event.clientY - pan.y);
      pan.x = event.clientX;
      pan.y = event.clientY;
    });
    const lift = (event) => {
      zoom.touch.up(event);
      if (pan && event.pointerId === pan.pointer) pan = null;
    };
    frame.addEventListener("pointerup", lift);
    frame.addEventListener("pointercancel", lift);
    return frame;
  }

  function zoomHint() {
    hint(
      touchFirst
        ? "Pinch the image with two fingers to zoom in; drag the zoomed image to look around."
        : "Zoom: the wheel or a trackpad's pinch (around the pointer), + and −; drag the zoomed image to pan; 0 resets."
    );
  }

  function renderPlain(item) {
    if (item.image_url) {
      content.append(zoomImage(h("img", { src: item.image_url, alt: `Item ${item.id}`, class: "item-image" })));
    } else {
      content.append(textBlock(item.text));
    }
  }

  function hint(text) {
    answerEl.append(h("p", { class: "hint key-hint" }, text));
  }

  // Shows the item; returns the page's "shown" report (its response, or null if it failed).
  function show(item, prefill) {
    if (editor && editor.destroy) editor.destroy();
    editor = null;
    current = item;
    zooms = [];
    hideFeedback();
    content.replaceChildren();
    answerEl.replaceChildren();
    if (!item) {
      section.hidden = true;
      emptyEl.hidden = false;
      delete content.dataset.item;
      return Promise.resolve(null);
    }
    section.hidden = false;
    emptyEl.hidden = true;
    content.dataset.item = item.id;
    submitButton.hidden = !MULTI_PART;
    const make = EDITORS[taskKind] || classifyEditor;
    editor = make(item, prefill || null);
    // The answer's button is gone: a screen reader would be left on nothing. The new item
    // takes the focus (not a control: the shortcut keys still work as they did).
    if (!document.activeElement || document.activeElement === document.body) {
      content.focus({ preventScroll: true });
    }
    // The first report also gives the lease its full time from now (a preloaded item's lease
    // ran while it waited); a 409 says I no longer hold it (see advance).
    return api(`/api/v1/items/${item.id}/shown`, { method: "POST" }).catch(() => null);
  }

  function warm(item) {
    for (const url of [item.image_url, item.image_b_url]) {
      if (url) new Image().src = url;
    }
  }

  // The next item leased to me: ``after`` asks for another than the one on screen (to preload).
  // Returns the item, null when nothing is left, undefined when it failed (said on screen).
  async function fetchTask(after) {
    let result;
    try {
      result = await api(`/api/v1/projects/${projectId}/next-task/${after ? `?after=${after}` : ""}`);
    } catch (err) {
      if (!after) say(`Could not reach the server (${err.message || err}); reload to retry.`);
      return undefined;
    }
    if (isSignedOut(result)) {
      if (!after) showSignInPrompt();
      return undefined;
    }
    if (result.status === 204) return null;
    if (!result.ok) {
      if (!after) say(detailOf(result, "Could not load a task; reload to retry."));
      return undefined;
    }
    const item = result.body;
    // When the lease ends on this device's clock: the server's time is read against its own
    // clock (the response's Date header), so a device whose clock is off still counts right.
    const serverNow = Date.parse(result.date || "");
    const left = Date.parse(item.lease_expires_at) - (Number.isNaN(serverNow) ? Date.now() : serverNow);
    item.leaseDeadline = Number.isNaN(left) ? null : Date.now() + left;
    return item;
  }

  // A preloaded item whose lease has less than this left is not shown as it is: the "shown"
  // report that renews it could arrive after it lapsed.
  const LEASE_MARGIN_MS = 10000;

  function leaseRunsOut(item) {
    return typeof item.leaseDeadline === "number" && item.leaseDeadline - Date.now() < LEASE_MARGIN_MS;
  }

  async function preload(afterId) {
    const request = fetchTask(afterId);
    preloading = request;
    const item = await request;
    if (preloading === request) preloading = null;
    if (item && current && current.id === afterId) {
      preloaded = item;
      warm(item);
    }
  }

  // ``refused`` is an answer the server refused for good ({ item, body, status, detail }): if the next item is
  // that same one (its lease had run out, and the server leased it to me again), it comes back
  // with that answer on screen, to be sent again rather than given again from scratch.
  async function advance(fresh = false, refused = null) {
    // Never two next-task calls at once: the server reads my leases and the items left in
    // separate statements, so a call racing the preload's could be told "nothing left" while
    // the preload leases the last item.
    if (preloading) await preloading;
    let next = fresh ? null : preloaded;
    preloaded = null;
    if (next && current && next.id === current.id) next = null;
    // The preloaded item was leased when the last one was shown: a long look at that one, and
    // its lease has lapsed (its place may be someone else's now) or is about to. It is asked
    // for again: the server gives it back if it is still mine or still free, or another one.
    let lapsed = null;
    if (next && leaseRunsOut(next)) {
      lapsed = next;
      next = null;
    }
    if (!next) {
      next = await fetchTask(null);
      if (next === undefined) return;
    }
    const back = Boolean(next && refused && next.id === refused.item.id);
    const shown = show(next, back ? refused.body : null);
    if (lapsed && (!next || next.id !== lapsed.id)) {
      sayToo(`Item ${lapsed.id}, loaded while you worked on the one before, was held for you too long and may be someone else's now: ${next ? `here is item ${next.id} instead` : "nothing else is left"}.`);
    }
    if (next && !back) watchLease(next, shown);
    if (back) {
      // A 400 is the answer's fault (one resent after signing in is checked only then): it
      // comes back to be corrected. Anything else refused an item I hold again: my lease ran out.
      say(refused.status === 400
        ? `Not saved: ${refused.detail}. Item ${next.id} is yours again, with your answer on screen: correct it and send it again.`
        : `Not saved: your time on item ${next.id} ran out. It is yours again, with your answer on screen: send it again.`);
    }
    if (next) preload(next.id);
  }

  // The "shown" report found no live lease on the item (it lapsed between its fetch and now):
  // never labeled in vain, it is asked for again, once, and the page says why.
  let lapsedOnce = null;

  async function watchLease(item, shown) {
    const result = await shown;
    if (result && result.ok) item.leaseDeadline = null; // renewed: the server knows until when
    if (!result || result.status !== 409 || current !== item) return;
    if (busy || feedbackOpen || signedOut || lapsedOnce === item.id) {
      say(`Your hold on item ${item.id} has run out (someone else may have it now): an answer to it may be refused. Skip it, or reload the page.`);
      return;
    }
    lapsedOnce = item.id;
    await advance(true);
    sayToo(
      current && current.id === item.id
        ? `Your hold on item ${item.id} had run out before it was shown; it is yours again.`
        : `Your hold on item ${item.id} ran out before it was shown (someone else may have it now): ${current ? `here is item ${current.id} instead` : "nothing else is left"}.`
    );
  }

  // ---- answering -----------------------------------------------------------------------------

  function keepPending(item, body) {
    try {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ item, body }));
    } catch (_) {
      /* storage full or off: the answer stays on screen */
    }
    showSignInPrompt(true);
  }

  function readPending() {
    try {
      return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    } catch (_) {
      return null;
    }
  }

  function setBusy(value) {
    busy = value;
    section.classList.toggle("busy", value);
  }

  // One request with the page busy meanwhile; null (and why, said) if the server can't be reached.
  async function busyCall(path, options, unreachable) {
    setBusy(true);
    try {
      return await api(path, options);
    } catch (err) {
      say(`Could not reach the server (${err.message || err}); ${unreachable}`);
      return null;
    } finally {
      setBusy(false);
    }
  }

  // Signed out, or this page open across a sign-in: says what to do, and whether it was so.
  function sessionLost(result, again) {
    if (isSignedOut(result)) {
      showSignInPrompt();
      return true;
    }
    if (csrfFailed(result)) {
      say(`This page was open across a sign-in: reload it, then ${again} again.`);
      return true;
    }
    return false;
  }

  async function submit(body) {
    if (!current || busy || feedbackOpen || signedOut) return;
    const item = current;
    const result = await busyCall(
      `/api/v1/items/${item.id}/annotations/`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
      "your answer is still here: try again.",
    );
    if (result) await answered(item, body, result, false);
  }

  async function answered(item, body, result, resent) {
    if (csrfFailed(result) && !resent) {
      // Kept, and sent again by the reloaded page with a fresh token.
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ item, body }));
      say("This page was open across a sign-in: reloading it to send your answer…");
      window.location.reload();
      return;
    }
    if (isSignedOut(result) || csrfFailed(result)) {
      keepPending(item, body);
      return;
    }
    sessionStorage.removeItem(PENDING_KEY);
    if (result.status === 201) {
      lastAnswer = {
        id: result.body.id,
        item,
        value: result.body.value,
        undoUntil: Date.parse(result.body.undo_until),
      };
      refreshUndo();
      const done = $("done-count");
      done.textContent = String(Number(done.textContent) + 1);
      say(`${resent ? "Sent the answer you gave before signing in: " : "Saved "}“${describe(result.body.value)}” for item ${item.id}.`);
      loadProgress();
      loadHistory();
      if (result.body.feedback) {
        showFeedback(result.body.feedback);
        return;
      }
      await advance();
      return;
    }
    if (result.status === 429) {
      // Too many answers too fast (a per-contributor rate): the answer stays to be sent again.
      const wait = /(\d+) second/.exec(detailOf(result, ""));
      say(`Not saved: you are answering faster than allowed. Wait ${wait ? `${wait[1]} s` : "a moment"}, then answer again.`);
      return;
    }
    if (result.status >= 500) {
      // The server failed, not the answer (a deploy, an overloaded database): like a dropped
      // connection, the answer stays on screen to be sent again.
      say(`Not saved: the server had an error (${result.status}); your answer is still here: try again.`);
      return;
    }
    if (result.status === 400 && !resent) {
      // The answer doesn't fit the project: it stays on screen to be corrected.
      say(`Not saved: ${detailOf(result, "the answer was refused")}.`);
      return;
    }
    // Refused for good (decided meanwhile, lease expired, already answered, not assigned to
    // me): this item is done with, unless its lease had only run out and it comes back to me.
    say(`Not saved: ${detailOf(result, "the answer was refused")}.`);
    await advance(true, { item, body, status: result.status, detail: detailOf(result, "the answer was refused") });
  }

  async function skip() {
    if (!current || busy || feedbackOpen || signedOut) return;
    const id = current.id;
    const skipped = current;
    const result = await busyCall(`/api/v1/items/${id}/skip`, { method: "POST" }, "try again.");
    if (!result || sessionLost(result, "skip")) return;
    const back = touchFirst ? "Undo brings it back." : "Z brings it back.";
    say(result.ok ? `Skipped item ${id}. ${back}` : `Could not skip: ${detailOf(result, "refused")}.`);
    if (result.ok) {
      // A skip by mistake (S is next to the keys of a class) is taken back like an answer.
      lastAnswer = { skip: true, item: skipped, undoUntil: Date.now() + undoSeconds * 1000 };
      refreshUndo();
    }
    loadProgress();
    await advance();
  }

  function refreshUndo() {
    clearTimeout(undoTimer);
    const left = lastAnswer ? lastAnswer.undoUntil - Date.now() : 0;
    try {
      if (left > 0) sessionStorage.setItem(UNDO_KEY, JSON.stringify(lastAnswer));
      else sessionStorage.removeItem(UNDO_KEY);
    } catch (err) {
      // Storage full or off: Undo still works until the page is left.
    }
    undoButton.disabled = !(left > 0);
    emptyUndoButton.hidden = !(left > 0);
    if (left > 0) {
      undoButton.title = `You can change your last answer for ${Math.ceil(left / 1000)} more seconds.`;
      emptyUndoButton.title = undoButton.title;
      undoTimer = setTimeout(refreshUndo, Math.min(left, 2147483647));
    } else {
      undoButton.title = "Nothing to undo.";
    }
  }

  async function undo() {
    if (busy || signedOut) return;
    if (!lastAnswer) {
      say("Nothing to undo.");
      return;
    }
    if (Date.now() > lastAnswer.undoUntil) {
      say("Too late to undo: an answer can only be changed in the first minute.");
      lastAnswer = null;
      refreshUndo();
      return;
    }
    if (lastAnswer.skip) {
      const { item } = lastAnswer;
      const back = await busyCall(`/api/v1/items/${item.id}/skip`, { method: "DELETE" }, "try again.");
      if (!back || sessionLost(back, "undo")) return;
      lastAnswer = null;
      refreshUndo();
      if (!back.ok) {
        say(`Could not bring it back: ${detailOf(back, "refused")}.`);
        return;
      }
      if (current && current.id !== item.id) preloaded = current;
      show(back.body, null);
      say(`Skip undone: item ${item.id} is back.`);
      loadProgress();
      return;
    }
    const { id, item, value } = lastAnswer;
    const result = await busyCall(`/api/v1/annotations/${id}`, { method: "DELETE" }, "try again.");
    if (!result || sessionLost(result, "undo")) return;
    lastAnswer = null;
    refreshUndo();
    if (result.status !== 204) {
      say(`Could not undo: ${detailOf(result, "refused")}.`);
      return;
    }
    // The item on screen becomes the next one again; the undone item comes back with my answer.
    if (current && current.id !== item.id) preloaded = current;
    show(item, value);
    const done = $("done-count");
    done.textContent = String(Math.max(0, Number(done.textContent) - 1));
    say(`Undone: item ${item.id} is back. Answer it again, or skip it.`);
    loadProgress();
    loadHistory();
  }

  function showFeedback(feedback) {
    feedbackOpen = true;
    $("feedback-expected").textContent = describe(feedback.expected);
    const explanation = $("feedback-explanation");
    explanation.textContent = feedback.explanation || "";
    explanation.hidden = !feedback.explanation;
    answerEl.hidden = true;
    $("actions").hidden = true;
    feedbackEl.hidden = false;
  }

  function hideFeedback() {
    feedbackOpen = false;
    feedbackEl.hidden = true;
    answerEl.hidden = false;
    $("actions").hidden = false;
  }

  async function continueAfterFeedback() {
    if (!feedbackOpen) return;
    hideFeedback();
    await advance();
  }

  // ---- progress and history ------------------------------------------------------------------

  async function loadProgress() {
    let result;
    try {
      result = await api(`/api/v1/projects/${projectId}/progress`);
    } catch (_) {
      return;
    }
    if (!result.ok || !result.body) return;
    $("left-count").textContent = String(result.body.left);
    $("open-count").textContent = String(result.body.open);
    $("done-count").textContent = String(result.body.labeled_today);
  }

  async function loadHistory() {
    let result;
    try {
      result = await api(`/api/v1/me/labels/?project=${projectId}`);
    } catch (_) {
      return;
    }
    if (!result.ok || !Array.isArray(result.body)) return;
    const rows = result.body.slice(0, 10).map((row) =>
      h(
        "li",
        { dataset: { annotation: row.id } },
        h("span", { class: "history-item" }, `Item ${row.item}`),
        " ",
        h("strong", {}, row.value && Object.keys(row.value).length ? describe(row.value) : row.label),
        " ",
        h("span", { class: `badge ${row.item_status}` }, ITEM_STATUS[row.item_status] || row.item_status),
        " ",
        h("time", { datetime: row.created_at, class: "meta" }, timeAgo(row.created_at))
      )
    );
    historyEl.replaceChildren(...(rows.length ? rows : [h("li", { class: "meta" }, "None yet.")]));
  }

  // ---- editors, one per task -----------------------------------------------------------------

  // A row of class buttons that picks the label new boxes or spans get (1–9).
  function labelPicker(onPick) {
    let active = 0;
    const buttons = classes.map((name, i) =>
      keyButton(i + 1, name, () => pick(i), {
        class: `pick c${i % PALETTE.length}`,
        "aria-pressed": i === 0 ? "true" : "false",
        dataset: { label: name },
      })
    );
    function pick(i) {
      if (i < 0 || i >= classes.length) return;
      active = i;
      buttons.forEach((b, j) => b.setAttribute("aria-pressed", j === i ? "true" : "false"));
      onPick(i);
    }
    answerEl.append(h("div", { class: "choices picker", role: "group", "aria-label": "Label" }, buttons));
    return { pick, buttons, active: () => classes[active] };
  }

  function classifyEditor(item, prefill) {
    renderPlain(item);
    hint(touchFirst ? "Tap a class." : `Press 1–${classes.length} or click a class.`);
    if (item.image_url) zoomHint();
    const row = h("div", { class: "choices" });
    classes.forEach((name, i) => {
      const chosen = prefill && prefill.label === name;
      row.append(keyButton(i + 1, name, () => submit({ label: name }), { class: chosen ? "choice was" : "choice", dataset: { label: name } }));
    });
    answerEl.append(row);
    return {
      digit(n) {
        if (n <= classes.length) submit({ label: classes[n - 1] });
      },
    };
  }

  function multilabelEditor(item, prefill) {
    renderPlain(item);
    hint(
      touchFirst
        ? "Tap every class that applies, then Submit. None is an answer too."
        : `Press 1–${classes.length} or click to toggle every class that applies, then Enter. None is an answer too.`
    );
    if (item.image_url) zoomHint();
    const chosen = new Set(prefill ? prefill.labels : []);
    const row = h("div", { class: "choices" });
    const buttons = classes.map((name, i) =>
      keyButton(i + 1, name, () => toggle(i), {
        class: "toggle",
        "aria-pressed": chosen.has(name) ? "true" : "false",
        dataset: { label: name },
      })
    );
    row.append(...buttons);
    answerEl.append(row);
    function toggle(i) {
      const name = classes[i];
      if (chosen.has(name)) chosen.delete(name);
      else chosen.add(name);
      buttons[i].setAttribute("aria-pressed", chosen.has(name) ? "true" : "false");
    }
    return {
      digit(n) {
        if (n <= classes.length) toggle(n - 1);
      },
      enter() {
        submit({ labels: classes.filter((name) => chosen.has(name)) });
      },
    };
  }

  function pairwiseEditor(item, prefill) {
    const was = (choice) => (prefill && prefill.choice === choice ? "choice was" : "choice");
    const side = (name, text, url) =>
      h(
        "figure",
        { class: "side", "data-testid": `side-${name}` },
        h("figcaption", {}, h("kbd", {}, name === "a" ? "1" : "2"), ` ${name.toUpperCase()}`),
        url ? zoomImage(h("img", { src: url, alt: `${name.toUpperCase()} of item ${item.id}`, class: "item-image" })) : textBlock(text)
      );
    content.append(h("div", { class: "pair" }, side("a", item.text, item.image_url), side("b", item.text_b, item.image_b_url)));
    hint(touchFirst ? "Tap A or B." : "Press 1 or A for the first, 2 or B for the second.");
    if (item.image_url) zoomHint();
    answerEl.append(
      h(
        "div",
        { class: "choices" },
        keyButton("1", "A", () => submit({ choice: "a" }), { class: was("a"), dataset: { choice: "a" } }),
        keyButton("2", "B", () => submit({ choice: "b" }), { class: was("b"), dataset: { choice: "b" } })
      )
    );
    return {
      digit(n) {
        if (n === 1 || n === 2) submit({ choice: n === 1 ? "a" : "b" });
      },
      letter(key) {
        if (key !== "a" && key !== "b") return false;
        submit({ choice: key });
        return true;
      },
    };
  }

  // Offsets: the API counts characters (code points); JavaScript strings count UTF-16 units.
  function toCodePoints(text, index) {
    return Array.from(text.slice(0, index)).length;
  }

  function fromCodePoints(text, count) {
    return Array.from(text).slice(0, count).join("").length;
  }

  function spansEditor(item, prefill) {
    const text = item.text || "";
    let spans = (prefill ? prefill.spans : []).map((s) => ({
      start: fromCodePoints(text, s.start),
      end: fromCodePoints(text, s.end),
      label: s.label,
    }));
    let justMarked = false;
    // Keyboard marking: the text takes focus (Tab); arrows move a word cursor, Shift+arrows
    // extend it, a digit marks the words under it with that label, Delete removes the marks
    // it touches. Words: runs of letters and digits (with inner apostrophes and hyphens); each
    // other visible character is a word of its own ("London." is "London" and ".").
    const words = [...text.matchAll(/[\p{L}\p{N}\p{M}]+(?:['’-][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu)].map((m) => ({
      start: m.index,
      end: m.index + m[0].length,
    }));
    let cursor = null; // {anchor, head}: word indexes, while the text has focus
    const textEl = h("p", {
      class: "text-item span-text",
      "data-testid": "span-text",
      tabindex: "0",
      "aria-label": "Text to mark. Arrow keys move between words, Shift+arrows select more words, a digit marks them with that label, Delete removes a mark.",
    });
    content.append(textEl);
    hint(
      touchFirst
        ? "Select words in the text, then tap a label to mark them. Tap a mark to remove it."
        : "Pick a label (1–9), then select words to mark them; or Tab to the text, move with the arrows (Shift selects) and press a digit. Click a mark to remove it; Enter submits."
    );
    // A tapped label marks the selection (on a phone, selecting takes adjusting the handles:
    // marking as the finger lifts cut every name to one word).
    const picker = labelPicker(() => capture());
    picker.buttons.forEach((b) => b.addEventListener("pointerdown", (e) => e.preventDefault()));
    const list = h("ul", { class: "mark-list", "data-testid": "span-list" });
    answerEl.append(list);

    function remove(i) {
      spans.splice(i, 1);
      render();
    }

    function cursorRange() {
      if (!cursor || !words.length) return null;
      const [a, b] = [Math.min(cursor.anchor, cursor.head), Math.max(cursor.anchor, cursor.head)];
      return { start: words[a].start, end: words[b].end };
    }

    function render() {
      const range = cursorRange();
      const bounds = range ? [range.start, range.end] : [];
      const points = [...new Set([0, text.length, ...bounds, ...spans.flatMap((s) => [s.start, s.end])])].sort((a, b) => a - b);
      const parts = [];
      for (let i = 0; i + 1 < points.length; i++) {
        const [a, b] = [points[i], points[i + 1]];
        const covering = spans.map((s, j) => j).filter((j) => spans[j].start <= a && spans[j].end >= b);
        const underCursor = range && range.start <= a && range.end >= b;
        let part;
        if (!covering.length) {
          part = underCursor ? h("span", { class: "word-cursor" }, text.slice(a, b)) : document.createTextNode(text.slice(a, b));
        } else {
          const top = covering[covering.length - 1];
          part = h(
            "mark",
            {
              class: `c${classIndex(spans[top].label)}${underCursor ? " word-cursor" : ""}`,
              title: `${covering.map((j) => spans[j].label).join(", ")}: click to remove`,
              dataset: { span: top },
            },
            text.slice(a, b)
          );
          part.addEventListener("click", () => {
            if (!justMarked) remove(top);
          });
        }
        parts.push(part);
      }
      textEl.replaceChildren(...parts);
      list.replaceChildren(
        ...spans.map((s, i) =>
          h(
            "li",
            {},
            h("span", { class: `swatch c${classIndex(s.label)}` }),
            ` ${s.label}: “${text.slice(s.start, s.end)}” `,
            onClick(h("button", { type: "button", class: "link-button", "aria-label": `Remove span ${i + 1}` }, "Remove"), () => remove(i))
          )
        )
      );
    }

    function offsetOf(node, offset) {
      const range = document.createRange();
      range.setStart(textEl, 0);
      range.setEnd(node, offset);
      return range.toString().length;
    }

    function mark(start, end, label) {
      while (start < end && /\s/.test(text[start])) start++;
      while (end > start && /\s/.test(text[end - 1])) end--;
      if (end <= start) return false;
      if (!spansMayOverlap && spans.some((s) => s.start < end && start < s.end)) {
        say("That overlaps a span you marked, and this project doesn't allow overlaps: remove the other one first.");
        return false;
      }
      spans.push({ start, end, label });
      spans.sort((a, b) => a.start - b.start || a.end - b.end);
      justMarked = true;
      setTimeout(() => {
        justMarked = false;
      }, 0);
      render();
      say(`Marked “${text.slice(start, end)}” as ${label}.`);
      return true;
    }

    function capture() {
      const selection = window.getSelection();
      if (!selection || selection.isCollapsed || !selection.rangeCount) return;
      const range = selection.getRangeAt(0);
      if (!textEl.contains(range.startContainer) || !textEl.contains(range.endContainer)) return;
      const start = offsetOf(range.startContainer, range.startOffset);
      const end = offsetOf(range.endContainer, range.endOffset);
      selection.removeAllRanges();
      mark(start, end, picker.active());
    }

    function moveCursor(step, extend) {
      if (!words.length) return;
      const head = cursor ? Math.min(words.length - 1, Math.max(0, cursor.head + step)) : 0;
      cursor = { anchor: extend && cursor ? cursor.anchor : head, head };
      render();
      const range = cursorRange();
      say(text.slice(range.start, range.end));
    }

    textEl.addEventListener("mouseup", () => {
      if (!touchFirst) capture();
    });
    textEl.addEventListener("focus", () => {
      // Reached with Tab only: a click focuses the text too, and re-rendering then would drop
      // the selection the mouse is making.
      if (!cursor && words.length && textEl.matches(":focus-visible")) {
        cursor = { anchor: 0, head: 0 };
        render();
      }
    });
    textEl.addEventListener("blur", () => {
      cursor = null;
      render();
    });
    textEl.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 1, ArrowUp: -1, Home: -words.length, End: words.length };
      if (event.key in steps) {
        event.preventDefault();
        moveCursor(steps[event.key], event.shiftKey);
      }
    });
    render();
    return {
      digit(n) {
        picker.pick(n - 1); // marks a selection, if there is one
        const range = document.activeElement === textEl ? cursorRange() : null; // the keyboard's
        if (range && n <= classes.length) {
          mark(range.start, range.end, picker.active());
          cursor = { anchor: cursor.head, head: cursor.head };
          render();
        }
      },
      remove() {
        const range = document.activeElement === textEl ? cursorRange() : null;
        if (!range) return;
        const before = spans.length;
        spans = spans.filter((s) => !(s.start < range.end && range.start < s.end));
        if (spans.length < before) {
          render();
          say(`Removed ${before - spans.length} mark(s).`);
        }
      },
      enter() {
        submit({
          spans: spans.map((s) => ({ start: toCodePoints(text, s.start), end: toCodePoints(text, s.end), label: s.label })),
        });
      },
    };
  }

  function boxesEditor(item, prefill) {
    const W = item.width;
    const H = item.height;
    const img = h("img", { src: item.image_url, alt: `Item ${item.id}`, class: "box-image", draggable: "false" });
    // Focusable, so boxes can be drawn with the keyboard alone (see its keydown below).
    const canvas = h("canvas", {
      class: "box-canvas",
      "data-testid": "box-canvas",
      tabindex: "0",
      role: "application",
      "aria-roledescription": "box editor",
      "aria-label": touchFirst
        ? "Draw boxes on the image"
        : "Draw boxes on the image. N adds a box; arrows move the selected box (Shift: by 10%); " +
          "Alt+arrows resize it (right and down grow, left and up shrink); Tab and Shift+Tab select " +
          "the next or previous box; Escape deselects, then Tab leaves the image; Delete removes the " +
          "selected box; 1–9 picks the label; Enter submits. The wheel, + and − zoom the image; " +
          "Space+drag pans it; 0 resets the zoom.",
    });
    const stage = h("div", { class: "box-stage" }, img, canvas);
    // Only the image is scaled (a CSS transform); the canvas stays the stage's size and draws
    // through the same view, so its bitmap never grows with the zoom, and boxes stay in pixels
    // of the stored image (``point`` undoes the view).
    const zoom = zoomable(stage, img, () => draw());
    // As wide as the page allows, as tall as 65% of the screen: small images are scaled up
    // too, so boxes can be drawn precisely (the answer is in stored pixels either way).
    stage.style.width = `min(100%, ${((65 * W) / H).toFixed(3)}vh)`;
    content.append(stage);
    hint(
      touchFirst
        ? "Drag a finger on the image to draw a box. Drag a box to move it, its corners to resize it; a tapped label relabels the selected box. Remove a box from the list below; Submit sends them."
        : "Drag on the image to draw a box. Drag a box to move it, its corners to resize it; Delete removes the selected box; 1–9 picks the label. Enter submits. " +
            "By keyboard: N adds a box; arrows move it (Shift: 10%), Alt+arrows resize it; Tab selects the next box, Escape deselects."
    );
    hint(
      touchFirst
        ? "Pinch the image with two fingers to zoom in and move it; one finger draws."
        : "Zoom: the wheel or a trackpad's pinch (around the pointer), + and −; Space+drag or the middle button pans; 0 resets."
    );
    let boxes = (prefill ? prefill.boxes : []).map((b) => Object.assign({}, b));
    let selected = -1;
    let drag = null;
    // Escape deselected: the next Tab leaves the image instead of selecting a box again (no
    // keyboard trap). Cleared when the image gets the focus again.
    let released = false;
    let announceTimer = null;
    const picker = labelPicker((i) => {
      if (selected >= 0) {
        boxes[selected].label = classes[i];
        update();
      }
    });
    const list = h("ul", { class: "mark-list", "data-testid": "box-list" });
    answerEl.append(list);

    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    // Image px per screen px, at the zoom of the moment.
    const perPixel = () => W / ((canvas.getBoundingClientRect().width || W) * zoom.view.s);

    function fit() {
      // The image's box on screen is scaled by the zoom (its transform): the canvas, which is
      // not, takes its size unzoomed.
      const rect = img.getBoundingClientRect();
      if (!rect.width) return;
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round((rect.width / zoom.view.s) * dpr);
      canvas.height = Math.round((rect.height / zoom.view.s) * dpr);
      zoom.apply(); // a new size: the view is clamped to it again, and drawn
    }

    // The pointer in pixels of the stored image, whatever the zoom.
    function point(event) {
      const rect = canvas.getBoundingClientRect();
      const { s, tx, ty } = zoom.view;
      return {
        x: clamp(((event.clientX - rect.left - tx) * W) / (rect.width * s), 0, W),
        y: clamp(((event.clientY - rect.top - ty) * H) / (rect.height * s), 0, H),
      };
    }

    function spanOf(a, b) {
      return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
    }

    function corners(b) {
      return [
        { x: b.x, y: b.y },
        { x: b.x + b.w, y: b.y },
        { x: b.x, y: b.y + b.h },
        { x: b.x + b.w, y: b.y + b.h },
      ];
    }

    function cornerAt(b, p, tolerance) {
      return corners(b).findIndex((c) => Math.abs(c.x - p.x) <= tolerance && Math.abs(c.y - p.y) <= tolerance);
    }

    function boxAt(p) {
      for (let i = boxes.length - 1; i >= 0; i--) {
        const b = boxes[i];
        if (p.x >= b.x && p.x <= b.x + b.w && p.y >= b.y && p.y <= b.y + b.h) return i;
      }
      return -1;
    }

    function draw() {
      const ctx = canvas.getContext("2d");
      const dpr = window.devicePixelRatio || 1;
      const { s, tx, ty } = zoom.view;
      const scale = (canvas.width / W) * s;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      // The view's offset; lines, handles and tags keep their screen size at any zoom.
      ctx.translate((tx * canvas.width) / (canvas.clientWidth || 1), (ty * canvas.height) / (canvas.clientHeight || 1));
      ctx.font = `${12 * dpr}px system-ui, sans-serif`;
      boxes.forEach((b, i) => {
        const colour = PALETTE[classIndex(b.label)];
        ctx.strokeStyle = colour;
        ctx.lineWidth = (i === selected ? 3 : 2) * dpr;
        ctx.setLineDash([]);
        ctx.strokeRect(b.x * scale, b.y * scale, b.w * scale, b.h * scale);
        const tag = `${i + 1} ${b.label}`;
        const width = ctx.measureText(tag).width + 6 * dpr;
        const top = b.y * scale >= 16 * dpr ? b.y * scale - 16 * dpr : b.y * scale;
        ctx.fillStyle = colour;
        ctx.fillRect(b.x * scale, top, width, 16 * dpr);
        ctx.fillStyle = "#fff";
        ctx.fillText(tag, b.x * scale + 3 * dpr, top + 12 * dpr);
        if (i === selected) {
          for (const c of corners(b)) {
            ctx.fillStyle = "#fff";
            ctx.fillRect(c.x * scale - 5 * dpr, c.y * scale - 5 * dpr, 10 * dpr, 10 * dpr);
            ctx.strokeRect(c.x * scale - 5 * dpr, c.y * scale - 5 * dpr, 10 * dpr, 10 * dpr);
          }
        }
      });
      if (drag && drag.mode === "draw" && drag.rect) {
        const r = drag.rect;
        ctx.strokeStyle = PALETTE[classIndex(picker.active())];
        ctx.lineWidth = 2 * dpr;
        ctx.setLineDash([6 * dpr, 4 * dpr]);
        ctx.strokeRect(r.x * scale, r.y * scale, r.w * scale, r.h * scale);
      }
    }

    function update() {
      list.replaceChildren(
        ...boxes.map((b, i) =>
          h(
            "li",
            { class: i === selected ? "selected" : "" },
            h("span", { class: `swatch c${classIndex(b.label)}` }),
            ` ${i + 1}. ${b.label}: ${Math.round(b.w)} × ${Math.round(b.h)} px at (${Math.round(b.x)}, ${Math.round(b.y)}) `,
            onClick(h("button", { type: "button", class: "link-button", "aria-label": `Delete box ${i + 1}` }, "Delete"), () => {
              boxes.splice(i, 1);
              selected = -1;
              update();
            })
          )
        )
      );
      draw();
    }

    // One pointer draws: a second finger (a pinch, a palm) cancels what the first was doing,
    // and neither draws again until both are lifted.
    const down = new Set();

    function cancelDrag() {
      if (!drag) return;
      if (drag.mode === "move" || drag.mode === "resize") Object.assign(boxes[selected], drag.original); // moved back
      drag = null;
      update();
    }

    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 && event.button !== 1) return;
      event.preventDefault();
      // Captured, every pointer: its pointerup comes here wherever it is lifted.
      canvas.setPointerCapture(event.pointerId);
      down.add(event.pointerId);
      zoom.touch.down(event); // two fingers pinch
      if (down.size > 1) {
        cancelDrag();
        return;
      }
      // Space+drag or the middle button pans (a plain drag draws).
      if (event.button === 1 || spaceHeld) {
        drag = { mode: "pan", pointer: event.pointerId, x: event.clientX, y: event.clientY };
        canvas.style.cursor = "grabbing";
        return;
      }
      if (event.button !== 0) return;
      const p = point(event);
      // A fingertip lands a dozen pixels off the corner it aims at: a wider grip for touch.
      const tolerance = (event.pointerType === "touch" ? 22 : 8) * perPixel();
      const pointer = event.pointerId;
      if (selected >= 0) {
        const corner = cornerAt(boxes[selected], p, tolerance);
        if (corner >= 0) {
          const anchor = corners(boxes[selected])[3 - corner]; // the opposite corner stays
          drag = { mode: "resize", pointer, anchor, original: Object.assign({}, boxes[selected]) };
          return;
        }
      }
      const hit = boxAt(p);
      if (hit >= 0) {
        selected = hit;
        drag = { mode: "move", pointer, start: p, original: Object.assign({}, boxes[hit]) };
      } else {
        selected = -1;
        drag = { mode: "draw", pointer, start: p, rect: null };
      }
      update();
    });

    canvas.addEventListener("pointermove", (event) => {
      if (zoom.touch.move(event)) return;
      if (drag ? event.pointerId !== drag.pointer : down.size) return;
      if (drag && drag.mode === "pan") {
        zoom.panBy(event.clientX - drag.x, event.clientY - drag.y);
        drag.x = event.clientX;
        drag.y = event.clientY;
        return;
      }
      const p = point(event);
      if (!drag) {
        const tolerance = (event.pointerType === "touch" ? 22 : 8) * perPixel();
        const onCorner = selected >= 0 && cornerAt(boxes[selected], p, tolerance) >= 0;
        canvas.style.cursor = spaceHeld ? "grab" : onCorner ? "nwse-resize" : boxAt(p) >= 0 ? "move" : "crosshair";
        return;
      }
      if (drag.mode === "draw") {
        drag.rect = spanOf(drag.start, p);
      } else if (drag.mode === "move") {
        const o = drag.original;
        const b = boxes[selected];
        b.x = clamp(o.x + p.x - drag.start.x, 0, W - o.w);
        b.y = clamp(o.y + p.y - drag.start.y, 0, H - o.h);
      } else if (drag.mode === "resize") {
        Object.assign(boxes[selected], spanOf(drag.anchor, p));
      }
      draw();
    });

    function release() {
      if (!drag) return;
      if (drag.mode === "pan") {
        drag = null;
        canvas.style.cursor = spaceHeld ? "grab" : "crosshair";
        return;
      }
      const minimum = 4 * perPixel(); // a click or a slip is not a box
      if (drag.mode === "draw" && drag.rect && drag.rect.w >= minimum && drag.rect.h >= minimum) {
        boxes.push(Object.assign({}, drag.rect, { label: picker.active() }));
        selected = boxes.length - 1;
      } else if (drag.mode === "resize") {
        const b = boxes[selected];
        b.w = Math.max(b.w, 1);
        b.h = Math.max(b.h, 1);
      }
      drag = null;
      update();
    }
    function lift(event) {
      down.delete(event.pointerId);
      zoom.touch.up(event);
      if (drag && event.pointerId === drag.pointer) release();
    }
    canvas.addEventListener("pointerup", lift);
    canvas.addEventListener("pointercancel", lift);
    canvas.addEventListener("mousedown", (event) => {
      if (event.button === 1) event.preventDefault(); // the middle button pans: no autoscroll
    });

    // ---- the keyboard: N adds, arrows move, Alt+arrows resize, Tab selects, Escape deselects --

    function announce(i) {
      if (i < 0 || i >= boxes.length) {
        say(boxes.length ? "No box selected." : "No boxes.");
        return;
      }
      const b = answer()[i];
      say(`Box ${i + 1} of ${boxes.length}: ${b.label}, x ${b.x} y ${b.y} w ${b.w} h ${b.h}`);
    }

    // Moves come in bursts (a held arrow): only where the box ends up is said.
    function announceSoon() {
      clearTimeout(announceTimer);
      const i = selected;
      announceTimer = setTimeout(() => {
        if (i === selected) announce(i);
      }, 400);
    }

    function select(i) {
      clearTimeout(announceTimer);
      selected = i;
      update();
      announce(i);
    }

    function addBox() {
      // A quarter of each side of what is in view, centred there, of the label picked now.
      const { s, tx, ty } = zoom.view;
      const rect = canvas.getBoundingClientRect();
      const w = W / 4 / s;
      const tall = H / 4 / s;
      const cx = rect.width ? ((rect.width / 2 - tx) * W) / (rect.width * s) : W / 2;
      const cy = rect.height ? ((rect.height / 2 - ty) * H) / (rect.height * s) : H / 2;
      boxes.push({ x: clamp(cx - w / 2, 0, W - w), y: clamp(cy - tall / 2, 0, H - tall), w, h: tall, label: picker.active() });
      released = false;
      if (document.activeElement !== canvas) canvas.focus({ preventScroll: true });
      select(boxes.length - 1);
    }

    const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

    function nudge(key, big, resize) {
      const b = boxes[selected];
      const [dx, dy] = ARROWS[key];
      const stepX = (dx * W) / (big ? 10 : 100); // 1% of the image's side, 10% with Shift
      const stepY = (dy * H) / (big ? 10 : 100);
      if (resize) {
        // Right and down grow, left and up shrink; never under 1 px nor past the image's edge.
        b.w = clamp(b.w + stepX, 1, W - b.x);
        b.h = clamp(b.h + stepY, 1, H - b.y);
      } else {
        b.x = clamp(b.x + stepX, 0, W - b.w);
        b.y = clamp(b.y + stepY, 0, H - b.h);
      }
      update();
      announceSoon();
    }

    canvas.addEventListener("focus", () => {
      released = false;
    });
    canvas.addEventListener("keydown", (event) => {
      // Ctrl and Meta chords are the browser's (Alt is ours here: Alt+arrows resize).
      if (event.ctrlKey || event.metaKey || event.isComposing || drag) return;
      const key = event.key;
      if (key in ARROWS) {
        if (selected < 0) return; // nothing to move: the page scrolls as usual
        event.preventDefault();
        nudge(key, event.shiftKey, event.altKey);
      } else if (event.altKey) {
        return;
      } else if (key === "Tab") {
        if (!boxes.length || (selected < 0 && released)) return; // the focus moves on
        event.preventDefault();
        const n = boxes.length;
        if (event.shiftKey) select(selected < 0 ? n - 1 : (selected - 1 + n) % n);
        else select(selected < 0 ? 0 : (selected + 1) % n);
      } else if (key === "Escape") {
        released = true;
        if (selected < 0) return;
        event.preventDefault();
        select(-1);
      }
    });

    const observer = new ResizeObserver(fit);
    observer.observe(img);
    img.addEventListener("load", fit);
    if (img.complete) fit();
    update();

    // Sent in pixels of the stored image, whole numbers, inside it.
    function answer() {
      return boxes.map((b) => {
        const x = clamp(Math.round(b.x), 0, W - 1);
        const y = clamp(Math.round(b.y), 0, H - 1);
        return {
          x,
          y,
          w: clamp(Math.round(b.w), 1, W - x),
          h: clamp(Math.round(b.h), 1, H - y),
          label: b.label,
        };
      });
    }

    return {
      digit(n) {
        picker.pick(n - 1);
      },
      letter(key) {
        if (key !== "n") return false;
        addBox();
        return true;
      },
      remove() {
        if (selected < 0) return;
        const gone = selected;
        boxes.splice(selected, 1);
        selected = -1;
        update();
        if (document.activeElement === canvas) say(`Removed box ${gone + 1}; ${boxes.length} left.`);
      },
      enter() {
        submit({ boxes: answer() });
      },
      destroy() {
        observer.disconnect();
        clearTimeout(announceTimer);
      },
    };
  }

  const EDITORS = {
    classify: classifyEditor,
    multilabel: multilabelEditor,
    pairwise: pairwiseEditor,
    spans: spansEditor,
    boxes: boxesEditor,
  };

  // ---- keyboard ------------------------------------------------------------------------------

  document.addEventListener("keydown", (event) => {
    // Ctrl+S saves the page, Ctrl+Z undoes typing: shortcuts never take modified keys.
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;
    if (target && target.closest) {
      if (target.closest("input, textarea, select, [contenteditable]")) return;
      // A focused control (reached with Tab) is pressed by Enter and Space natively.
      if (target.closest("button, a, summary") && (event.key === "Enter" || event.key === " ")) return;
    }
    const key = event.key;
    // Zoom (held, + and − repeat): + (or =) in, − out, around the centre; 0 back to the whole image.
    if (zooms.length && !signedOut && ZOOM_KEYS.has(key)) {
      event.preventDefault();
      for (const zoom of zooms) {
        if (key === "0") zoom.reset();
        else zoom.zoomAt(key === "+" || key === "=" ? ZOOM_STEP : 1 / ZOOM_STEP);
      }
      return;
    }
    // Space held: a drag on the boxes' image pans it (not the page's scroll meanwhile).
    if (key === " " && taskKind === "boxes" && zooms.length) {
      event.preventDefault();
      spaceHeld = true;
      return;
    }
    if (event.repeat || signedOut) return;
    if (feedbackOpen) {
      if (key === "Enter") {
        event.preventDefault();
        continueAfterFeedback();
      }
      return;
    }
    if (key === "z" || key === "Z") {
      event.preventDefault();
      undo();
      return;
    }
    if (!current || !editor) return;
    if (key === "s" || key === "S") {
      event.preventDefault();
      skip();
      return;
    }
    if (key === "Enter" && editor.enter) {
      event.preventDefault();
      editor.enter();
      return;
    }
    if ((key === "Delete" || key === "Backspace") && editor.remove) {
      event.preventDefault();
      editor.remove();
      return;
    }
    if (editor.letter && key.length === 1 && editor.letter(key.toLowerCase())) {
      event.preventDefault();
      return;
    }
    if (/^[1-9]$/.test(key) && editor.digit) {
      event.preventDefault();
      editor.digit(Number(key));
    }
  });

  document.addEventListener("keyup", (event) => {
    if (event.key === " ") spaceHeld = false;
  });
  window.addEventListener("blur", () => {
    spaceHeld = false;
  });

  onClick(submitButton, () => editor && editor.enter && editor.enter());
  onClick(skipButton, () => skip());
  onClick(undoButton, () => undo());
  onClick(emptyUndoButton, () => undo());
  onClick($("feedback-continue"), () => continueAfterFeedback());

  // ---- start: an answer kept while signed out goes first ------------------------------------

  function restoreUndo() {
    // A reload within the undo window keeps Undo (the server's window is still open).
    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(UNDO_KEY) || "null");
    } catch (err) {
      kept = null;
    }
    if (kept && kept.item && typeof kept.undoUntil === "number" && kept.undoUntil > Date.now()) {
      lastAnswer = kept;
    }
    refreshUndo();
  }

  async function start() {
    restoreUndo();
    loadHistory();
    const pending = readPending();
    if (pending && pending.item && pending.body) {
      // Shown with the answer, which stays there if the server fails (to be sent again).
      show(pending.item, pending.body);
      say(`Sending the answer you gave to item ${pending.item.id} before signing in…`);
      let result;
      try {
        result = await api(`/api/v1/items/${pending.item.id}/annotations/`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(pending.body),
        });
      } catch (err) {
        say(`Could not reach the server (${err.message || err}); reload to send your answer.`);
        return;
      }
      const retryable = result.status >= 500 || result.status === 429;
      if (result.status !== 201 && !retryable && !isSignedOut(result) && !csrfFailed(result)) {
        sessionStorage.removeItem(PENDING_KEY);
        say(`Your earlier answer to item ${pending.item.id} could not be saved: ${detailOf(result, "refused")}.`);
        await advance(true, { ...pending, status: result.status, detail: detailOf(result, "refused") });
        return;
      }
      await answered(pending.item, pending.body, result, true);
      return;
    }
    await advance(true);
  }

  start();
})();

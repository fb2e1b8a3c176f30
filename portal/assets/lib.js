// Shared pieces of the portal: building elements, the API client, the session, and
// small widgets. Every element is made with the DOM API, never from markup, so data from
// the API can only ever be text (the page's Trusted Types policy forbids markup sinks).

/** h builds an element: h("a", {href: "#/"}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let ids = 0;
/** uid is a unique element id, to tie labels and descriptions to their controls. */
export const uid = (p = "f") => `${p}-${++ids}`;

// ---- the session: kept in this module only, never stored or put in a URL ----

let session = null;
let onEnded = () => {};

/** apiBase is the API's root: the portal lives at <root>/portal/. */
const apiBase = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(res) {
  let code = "http_" + res.status, message = `The service answered ${res.status}.`;
  try {
    const body = await res.json();
    if (body?.error) ({ code, message } = body.error);
  } catch { /* not JSON: keep the generic message */ }
  return new ApiError(res.status, code, message);
}

const fetchOptions = { cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };

/** startSession exchanges the link token for a session token, held here in memory. */
export async function startSession(link, ended) {
  const res = await fetch(new URL("portal/exchange", apiBase), {
    ...fetchOptions, method: "POST", headers: { Authorization: "Bearer " + link },
  });
  if (!res.ok) throw await errorOf(res);
  session = await res.json();
  onEnded = ended;
  const left = Date.parse(session.expiresAt) - Date.now();
  setTimeout(() => endSession("Your portal session has ended."), Math.max(0, Math.min(left, 2 ** 31 - 1)));
  return session;
}

export function endSession(message) {
  if (!session) return;
  session = null;
  onEnded(message);
}

/** workflowLink is the Temporal Web UI page of a workflow run, or null when not configured. */
export function workflowLink(workflowId, runId) {
  if (!session?.workflowUrl || !workflowId) return null;
  return `${session.workflowUrl}/${encodeURIComponent(workflowId)}${runId ? "/" + encodeURIComponent(runId) : ""}/history`;
}

/** api calls the API with the session token; errors become ApiError. The answer is
 * decoded JSON, or with as = "text" the exact bytes as text. */
export async function api(method, path, body, as = "json") {
  if (!session) throw new ApiError(401, "no_session", "Your portal session has ended.");
  const headers = { Authorization: "Bearer " + session.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(new URL(path, apiBase), {
    ...fetchOptions, method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    const err = await errorOf(res);
    endSession(err.message);
    throw err;
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  return as === "text" ? res.text() : res.json();
}

/** text fetches one of the portal's own files as text. */
export async function text(path) {
  const res = await fetch(path, fetchOptions);
  if (!res.ok) throw new ApiError(res.status, "asset", `Could not load ${path}.`);
  return res.text();
}

// ---- formatting ----

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** time renders a timestamp as <time>, or a dash. */
export function time(iso, empty = "—") {
  if (!iso) return empty;
  return h("time", { datetime: iso }, dateFmt.format(new Date(iso)));
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function host(url) {
  try { return new URL(url).host; } catch { return url; }
}

/** status says a webhook's state in words, not only in colour. */
export function webhookState(w) {
  if (w.isActive) return { label: "Active", cls: "ok", reason: null };
  const paused = w.disabledReason === "paused by user";
  return { label: paused ? "Paused" : "Disabled", cls: paused ? "paused" : "bad", reason: w.disabledReason };
}

export function badge(label, cls) {
  return h("span", { class: "badge " + cls }, label);
}

const outcomeClass = { succeeded: "ok", failed: "bad", pending: "paused", skipped: "muted", filtered: "muted", missed: "muted" };
export function outcomeBadge(status) {
  return badge(status, outcomeClass[status] || "muted");
}

// ---- notices, errors, dialogs, copying ----

let flashed = "";
/** flash keeps a message for the next screen, as after a delete. */
export function flash(message) { flashed = message; }
export function takeFlash() { const m = flashed; flashed = ""; return m; }

/** notify announces a short message in the page's live region. */
export function notify(message) {
  const el = document.getElementById("notice");
  el.replaceChildren();
  if (!message) return;
  el.append(h("p", {}, message, " ", h("button", { type: "button", class: "link", onclick: () => el.replaceChildren() }, "Dismiss")));
}

/** errorBox is an alert for a failed action; focus it so it is read out. */
export function errorBox(err) {
  return h("div", { class: "error", role: "alert", tabindex: "-1" },
    h("strong", {}, "That did not work. "), err.message || String(err));
}

export function showError(container, err) {
  const box = errorBox(err);
  container.replaceChildren(box);
  box.focus();
}

/** confirm asks a yes/no question in a modal dialog; Escape or Cancel is no. */
export function confirm({ title, body, action, danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid("dlg"), bodyId = uid("dlg");
    const dlg = h("dialog", { "aria-labelledby": titleId, "aria-describedby": bodyId, class: "dialog" },
      h("h2", { id: titleId }, title),
      h("p", { id: bodyId }, body),
      h("div", { class: "actions" },
        h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => dlg.close("yes") }, action),
        h("button", { type: "button", onclick: () => dlg.close("no") }, "Cancel")));
    dlg.addEventListener("close", () => { dlg.remove(); resolve(dlg.returnValue === "yes"); });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector("button:last-child").focus();
  });
}

/** copyButton copies the value of input, saying so in status. */
export function copyButton(input, label, status) {
  return h("button", {
    type: "button",
    onclick: async () => {
      let ok = false;
      try {
        await navigator.clipboard.writeText(input.value);
        ok = true;
      } catch {
        // In a frame without clipboard-write permission: copy the selection instead.
        input.select();
        ok = document.execCommand("copy");
      }
      status.textContent = ok ? "Copied." : "Select the text and copy it.";
    },
  }, label);
}

/** secretPanel shows a secret once, with a copy button and a clear warning. */
export function secretPanel({ heading, secret, note }) {
  const id = uid("secret"), warn = uid("warn");
  const input = h("input", {
    id, type: "text", readOnly: true, value: secret, class: "mono secret",
    "aria-describedby": warn, spellcheck: "false", autocomplete: "off",
  });
  const status = h("span", { class: "copied", role: "status" });
  return h("section", { class: "secret-panel", "aria-labelledby": id + "-h" },
    h("h2", { id: id + "-h" }, heading),
    h("p", { id: warn, class: "warning" }, h("strong", {}, "Copy it now: you will not see this secret again."),
      " Store it where your receiver reads its configuration."),
    h("label", { for: id }, "Signing secret"),
    h("div", { class: "copy-row" }, input, copyButton(input, "Copy secret", status), status),
    note ? h("p", {}, note) : null);
}

/** field is a labelled control with an optional hint, tied by aria-describedby. */
export function field(label, control, hint) {
  const id = control.id || (control.id = uid());
  const hintId = hint ? id + "-hint" : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: id }, label), control, hint ? h("p", { id: hintId, class: "hint" }, hint) : null);
}

/** page sets the title and returns the page's heading, focusable for screen readers. */
export function heading(title, ...extra) {
  document.title = `${title} · Webhooks`;
  return h("h1", { tabindex: "-1" }, title, ...extra);
}

// The delivery screens: a webhook's delivery log (newest first, filtered, paged) and one
// delivery with its body, headers, attempts and redelivery.
import {
  h, api, time, duration, outcomeBadge, notify, flash, showError, heading, workflowLink, ApiError, copyButton,
} from "./lib.js";

const statuses = ["pending", "succeeded", "failed", "skipped", "filtered", "missed"];
const pageSize = 20;
const pollEvery = 2000;

/** signatureHeaders are the headers every delivery carries, as the API documents them. */
export const signatureHeaders = [
  ["X-AssetsUp-Signature", "sha256=<hex HMAC-SHA256 of the raw body, keyed with the whole secret>; during a rotation, new and old, comma-separated"],
  ["X-AssetsUp-Timestamp", "Unix seconds of this attempt"],
  ["X-AssetsUp-Delivery", "The delivery id: the same on every attempt; dedupe on it"],
  ["X-AssetsUp-Event", "The event name"],
  ["webhook-id", "Standard Webhooks: the event id"],
  ["webhook-timestamp", "Standard Webhooks: Unix seconds of this attempt"],
  ["webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body>"],
];

/** sleep waits ms, or until the screen is left. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

function tabs(id, current) {
  const link = (href, label) => h("a", { href, "aria-current": current === label ? "page" : null }, label);
  return h("nav", { class: "tabs", "aria-label": "This webhook" },
    link(`#/w/${id}`, "Overview"), link(`#/w/${id}/deliveries`, "Deliveries"), link(`#/w/${id}/verify`, "Verify signatures"));
}

export async function deliveriesList(ctx, id) {
  const w = await api("GET", `webhooks/${id}`);
  const status = statuses.includes(ctx.query.get("status")) ? ctx.query.get("status") : "";
  const event = ctx.query.get("event") || "";

  // The API filters by status and event and pages with its cursor.
  let cursor = null, done = false;
  const fetchMore = async () => {
    const q = new URLSearchParams({ limit: String(pageSize) });
    if (status) q.set("status", status);
    if (event) q.set("event", event);
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `webhooks/${id}/deliveries?${q}`);
    cursor = page.nextCursor;
    done = !cursor;
    return page.deliveries;
  };

  const row = (d) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/w/${id}/deliveries/${d.id}` }, time(d.createdAt))),
    h("td", { class: "mono" }, d.event),
    h("td", {}, d.kind),
    h("td", {}, outcomeBadge(d.status)),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", { class: "num" }, d.lastStatusCode ? String(d.lastStatusCode) : "—"),
    h("td", { class: "num" }, duration(d.durationMs)));
  const tbody = h("tbody", {});
  let shown = [];
  const show = (list) => { shown = list; tbody.replaceChildren(...list.map(row)); };
  show(await fetchMore());

  const more = h("button", {
    type: "button", hidden: done,
    onclick: async () => {
      more.disabled = true;
      try {
        const next = await fetchMore();
        tbody.append(...next.map(row));
        shown = shown.concat(next);
        more.hidden = done;
        tbody.querySelector(`tr:nth-child(${shown.length - next.length + 1}) a`)?.focus();
      } catch (err) { showError(errors, err); } finally { more.disabled = false; }
    },
  }, "Load older deliveries");
  const errors = h("div", {});

  const statusSel = h("select", { id: "filter-status" },
    h("option", { value: "" }, "Any status"), statuses.map((s) => h("option", { value: s, selected: s === status }, s)));
  const events = [...new Set([...w.events, "webhook.test", ...(event ? [event] : [])])];
  const eventSel = h("select", { id: "filter-event" },
    h("option", { value: "" }, "Any event"), events.map((e) => h("option", { value: e, selected: e === event }, e)));
  const filters = h("form", {
    class: "filters", "aria-label": "Filter deliveries",
    onsubmit: (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      if (statusSel.value) q.set("status", statusSel.value);
      if (eventSel.value) q.set("event", eventSel.value);
      location.hash = `#/w/${id}/deliveries${q.size ? "?" + q : ""}`;
    },
  },
  h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSel),
  h("div", { class: "field" }, h("label", { for: "filter-event" }, "Event"), eventSel),
  h("button", { type: "submit" }, "Show"));

  const refresh = async () => {
    cursor = null; done = false;
    const want = Math.max(shown.length, pageSize);
    let list = [];
    while (list.length < want && !done) list = list.concat(await fetchMore());
    show(list);
    more.hidden = done;
  };
  // While a delivery is still being tried, keep the list current.
  (async () => {
    while (!ctx.signal.aborted) {
      await sleep(pollEvery, ctx.signal);
      if (ctx.signal.aborted || !shown.some((d) => d.status === "pending")) continue;
      try { await refresh(); } catch { /* the next round tries again */ }
    }
  })();

  return h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Webhooks")),
    heading(`Deliveries of ${w.name}`),
    tabs(id, "Deliveries"),
    filters,
    errors,
    h("table", { class: "list" },
      h("caption", {}, shown.length ? "Newest first" : "No deliveries match."),
      h("thead", {}, h("tr", {}, ["When", "Event", "Kind", "Status", "Attempts", "Response", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
      tbody),
    h("p", { class: "actions" }, more,
      h("button", {
        type: "button",
        onclick: async (e) => {
          const btn = e.currentTarget;
          btn.disabled = true;
          try { await refresh(); notify("Deliveries refreshed."); } catch (err) { showError(errors, err); } finally { btn.disabled = false; }
        },
      }, "Refresh")));
}

/** prettyJSON indents JSON text without parsing its values, so every number and
 * string stays exactly as it was sent (JSON.parse would round large numbers). */
export function prettyJSON(text) {
  let out = "", depth = 0, inString = false, escaped = false;
  const nl = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
    if (c === '"') { inString = true; out += c; continue; }
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      let j = i + 1;
      while (" \n\r\t".includes(text[j])) j++;
      if (text[j] === close) { out += c + close; i = j; continue; }
      depth++; out += c + nl(); continue;
    }
    if (c === "}" || c === "]") { depth--; out += nl() + c; continue; }
    if (c === ",") { out += "," + nl(); continue; }
    if (c === ":") { out += ": "; continue; }
    out += c;
  }
  return out;
}

export async function deliveryPage(ctx, id, deliveryId) {
  const base = `webhooks/${id}/deliveries/${deliveryId}`;
  const [w, d] = await Promise.all([api("GET", `webhooks/${id}`), api("GET", base)]);
  let body = null, bodyNote = "";
  try {
    body = await api("GET", `${base}/body`, undefined, "text");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    bodyNote = err.message;
  }

  const out = h("div", { "aria-live": "polite" });
  const redeliver = h("button", {
    type: "button", class: "primary", disabled: body === null,
    onclick: async () => {
      redeliver.disabled = true;
      try {
        const r = await api("POST", `${base}/redeliver`);
        const next = `#/w/${id}/deliveries/${r.deliveryId}`;
        out.replaceChildren(h("p", {}, "Redelivery started: the same body goes out again as a new delivery…"));
        // Its log row appears with its first attempt: wait for it, then show it.
        for (let i = 0; i < 20 && !ctx.signal.aborted; i++) {
          try {
            await api("GET", `webhooks/${id}/deliveries/${r.deliveryId}`);
            flash("Redelivery started: the same body went out again as this new delivery.");
            location.hash = next;
            return;
          } catch (err) {
            if (!(err instanceof ApiError) || err.status !== 404) throw err;
          }
          await sleep(500, ctx.signal);
        }
        out.replaceChildren(h("p", {}, "Redelivery started. ", h("a", { href: next }, "Follow the redelivery"), "."));
      } catch (err) { showError(out, err); } finally { redeliver.disabled = false; }
    },
  }, "Redeliver");

  const wf = workflowLink(d.workflowId, d.runId);
  const row = (k, ...v) => [h("dt", {}, k), h("dd", {}, ...v)];
  const root = h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: `#/w/${id}/deliveries` }, "← Deliveries of ", w.name)),
    heading(`Delivery of ${d.event}`, " ", outcomeBadge(d.status)),
    tabs(id, ""),
    h("div", { class: "actions" }, redeliver),
    out,
    h("dl", { class: "facts" },
      row("Status", d.status, d.lastError && d.status !== "succeeded" ? ` — ${d.lastError}` : ""),
      row("Event", h("span", { class: "mono" }, d.event)),
      row("Event id", h("span", { class: "mono" }, d.eventId)),
      row("Delivery id", h("span", { class: "mono" }, d.id)),
      row("Kind", d.kind, d.redeliveryOf ? h("span", {}, " of ", h("a", { href: `#/w/${id}/deliveries/${d.redeliveryOf}` }, "the original delivery")) : ""),
      row("Created", time(d.createdAt)),
      row("Completed", time(d.completedAt, d.status === "pending" ? "Still being tried" : "—")),
      row("Workflow", wf ? h("a", { href: wf, target: "_blank", rel: "noopener noreferrer" }, d.workflowId, " (opens the Temporal Web UI)") : h("span", { class: "mono" }, d.workflowId))),
    h("section", { "aria-labelledby": "attempts-h" },
      h("h2", { id: "attempts-h" }, `Attempts: ${d.attempts}`),
      d.attempts === 0
        ? h("p", {}, "No request was sent.")
        : h("table", { class: "list" },
          h("caption", {}, "Every attempt, first to last, as the receiver answered it"),
          h("thead", {}, h("tr", {}, ["Attempt", "Finished", "Status code", "Duration", "Error", "Response excerpt"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, (d.attemptLog || []).map((a) => h("tr", {},
            h("th", { scope: "row" }, `${a.attempt} of ${d.attempts}`),
            h("td", {}, time(a.recordedAt, "—")),
            h("td", { class: "num" }, a.statusCode ? String(a.statusCode) : "no answer"),
            h("td", { class: "num" }, duration(a.durationMs)),
            h("td", {}, a.error || "—"),
            h("td", {}, a.responseExcerpt ? h("pre", { class: "excerpt" }, a.responseExcerpt) : "—")))))),
    h("section", { "aria-labelledby": "request-h" },
      h("h2", { id: "request-h" }, "What was sent"),
      h("h3", {}, "Headers"),
      h("ul", { class: "plain" },
        signatureHeaders.map(([n]) => h("li", { class: "mono" }, n)),
        (w.headers || []).map((x) => h("li", {}, h("span", { class: "mono" }, x.name), " (custom, fingerprint ", h("span", { class: "mono" }, x.fingerprint), ")"))),
      h("h3", {}, "Body"),
      body === null ? h("p", {}, bodyNote || "The body was not recorded.") : bodyView(body)));

  if (d.status === "pending") {
    (async () => {
      while (!ctx.signal.aborted) {
        await sleep(pollEvery, ctx.signal);
        if (ctx.signal.aborted) return;
        try {
          const now = await api("GET", base);
          if (now.status !== d.status || now.attempts !== d.attempts) {
            const fresh = await deliveryPage(ctx, id, deliveryId);
            if (!ctx.signal.aborted) { root.replaceWith(fresh); notify(`Delivery ${now.status}.`); }
            return;
          }
        } catch { /* the next round tries again */ }
      }
    })();
  }
  return root;
}

function bodyView(body) {
  let pretty = body;
  try { JSON.parse(body); pretty = prettyJSON(body); } catch { /* not JSON: shown as sent */ }
  const raw = h("textarea", { id: "raw-body", readOnly: true, class: "mono visually-hidden", tabindex: "-1", "aria-hidden": "true" });
  raw.value = body;
  const status = h("span", { role: "status", class: "copied" });
  return h("div", {},
    h("p", { class: "hint" }, `${new TextEncoder().encode(body).length} bytes, exactly as signed; shown indented.`),
    h("pre", { class: "body", tabindex: "0", "aria-label": "Request body" }, h("code", {}, pretty)),
    raw, h("p", {}, copyButton(raw, "Copy the exact body", status), status));
}

// The webhook screens: the list, create (with the secret shown once), the detail page
// with its actions (test, pause, resume, rotate, delete) and edit.
import {
  h, api, uid, time, host, webhookState, badge, notify, flash, showError, confirm,
  secretPanel, field, heading, duration,
} from "./lib.js";

export async function webhooksList() {
  const hooks = await api("GET", "webhooks");
  const rows = hooks.map((w) => {
    const st = webhookState(w);
    return h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/w/${w.id}` }, w.name)),
      h("td", { class: "mono" }, host(w.url)),
      h("td", {}, w.events.join(", ")),
      h("td", {}, badge(st.label, st.cls), st.reason && !w.isActive ? h("span", { class: "reason" }, " ", st.reason) : null),
      h("td", { class: "num" }, String(w.failureCount)),
      h("td", {}, time(w.lastTriggeredAt, "Never")));
  });
  return h("div", {},
    heading("Webhooks"),
    h("p", { class: "lead" }, "Endpoints that receive AssetsUp events, signed, with every delivery logged."),
    h("p", {}, h("a", { href: "#/new", class: "button primary" }, "New webhook")),
    hooks.length === 0
      ? h("p", { class: "empty" }, "No webhooks yet. Create one to start receiving events.")
      : h("table", { class: "list" },
        h("caption", {}, `${hooks.length} webhook${hooks.length === 1 ? "" : "s"}`),
        h("thead", {}, h("tr", {}, ["Name", "Endpoint", "Events", "Status", "Failures", "Last triggered"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows)));
}

// ---- the form, for create and edit ----

const fieldOfCode = {
  invalid_name: "name", invalid_url: "url", forbidden_url: "url", invalid_events: "events",
  invalid_headers: "headers", invalid_rate_limit: "rate", invalid_max_in_flight: "inflight", invalid_filter: "filter",
};

function headerRow(rows) {
  const name = h("input", { type: "text", class: "mono", autocomplete: "off", spellcheck: "false", "data-header": "name" });
  const value = h("input", { type: "text", class: "mono", autocomplete: "off", spellcheck: "false", "data-header": "value" });
  const row = h("div", { class: "header-row" },
    field("Header name", name), field("Value", value),
    h("button", { type: "button", class: "link", onclick: () => { row.remove(); rows.querySelector("input")?.focus(); } }, "Remove header"));
  return row;
}

function webhookForm({ existing, catalogue, submitLabel, onSubmit }) {
  const form = h("form", { class: "webhook-form", novalidate: true });
  const errors = h("div", { class: "form-errors" });
  const name = h("input", { type: "text", name: "name", required: true, maxLength: 100, autocomplete: "off", value: existing?.name ?? "" });
  const url = h("input", { type: "url", name: "url", required: true, class: "mono", autocomplete: "off", spellcheck: "false", value: existing?.url ?? "" });

  const subscribed = new Set(existing?.events ?? []);
  const legendId = uid("events");
  const eventsBox = h("fieldset", { class: "events", "data-field": "events", "aria-describedby": legendId + "-hint" },
    h("legend", { id: legendId }, "Events"),
    h("p", { class: "hint", id: legendId + "-hint" }, "The events this endpoint receives. Pick at least one."),
    catalogue.map((ev) => {
      const id = uid("ev");
      return h("div", { class: "check" },
        h("input", { type: "checkbox", id, value: ev.name, checked: subscribed.has(ev.name), "aria-describedby": id + "-d" }),
        h("label", { for: id, class: "mono" }, ev.name),
        h("p", { class: "hint", id: id + "-d" }, ev.description));
    }));

  // Custom headers: values are secrets the API never shows back, so an edit replaces the
  // whole set or leaves it alone.
  const headerRows = h("div", { class: "header-rows" });
  const addHeader = h("button", { type: "button", onclick: () => { const r = headerRow(headerRows); headerRows.append(r); r.querySelector("input").focus(); } }, "Add header");
  let replaceHeaders = !existing;
  const headerEditor = h("div", { hidden: !!existing }, headerRows, addHeader);
  const current = existing?.headers ?? [];
  const headersBox = h("fieldset", { class: "headers", "data-field": "headers" },
    h("legend", {}, "Custom headers"),
    h("p", { class: "hint" }, "Sent with every request, for example an API gateway's key. Values are kept sealed and never shown again: you see each header's name and a fingerprint of its value."),
    existing ? [
      current.length
        ? h("ul", { class: "plain" }, current.map((x) => h("li", {}, h("span", { class: "mono" }, x.name), " · fingerprint ", h("span", { class: "mono" }, x.fingerprint))))
        : h("p", {}, "None."),
      h("button", {
        type: "button",
        onclick: (e) => {
          replaceHeaders = true;
          headerEditor.hidden = false;
          e.target.remove();
          if (!headerRows.children.length) addHeader.click();
        },
      }, current.length ? "Replace headers" : "Add headers"),
      current.length ? h("p", { class: "hint" }, "Replacing sets the whole list: enter every header you want to keep, with its value. Leave it empty to remove them all.") : null,
    ] : null,
    headerEditor);

  const perSecond = h("input", { type: "number", min: "0", step: "any", inputMode: "decimal", value: existing?.rateLimit?.perSecond ?? "" });
  const burst = h("input", { type: "number", min: "1", step: "1", inputMode: "numeric", value: existing?.rateLimit ? existing.rateLimit.burst : "" });
  const inflight = h("input", { type: "number", min: "1", step: "1", inputMode: "numeric", value: existing?.maxInFlight ?? "" });
  const filter = h("textarea", { rows: 3, class: "mono", spellcheck: "false" });
  filter.value = existing?.filter ?? "";

  const options = h("details", { class: "options", open: !!(existing && (existing.rateLimit || existing.maxInFlight || existing.filter || current.length)) },
    h("summary", {}, "Delivery options: headers, rate limit, filter"),
    headersBox,
    h("fieldset", { "data-field": "rate" },
      h("legend", {}, "Rate limit"),
      field("Deliveries per second", perSecond, "Empty: no limit of its own (the service default applies). 0.5 is one every 2 seconds."),
      field("Burst", burst, "How many may go at once after a quiet spell (default 1).")),
    h("div", { "data-field": "inflight" }, field("At most this many requests at once", inflight, "Empty: no cap.")),
    h("div", { "data-field": "filter" }, field("Filter (CEL)", filter,
      'Only events for which this is true are delivered, e.g. event == "LOW_STOCK" && data.qty < 5. Empty: every subscribed event.')));

  const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
  form.append(
    errors,
    field("Name", name, "Shown in this portal only."),
    field("Endpoint URL", url, "Where events are POSTed: an https:// URL your server answers."),
    eventsBox, options,
    h("div", { class: "actions" }, submit, h("a", { href: existing ? `#/w/${existing.id}` : "#/", class: "button" }, "Cancel")));

  const read = () => {
    const body = {
      name: name.value.trim(),
      url: url.value.trim(),
      events: [...eventsBox.querySelectorAll("input:checked")].map((c) => c.value),
    };
    if (replaceHeaders) {
      const hs = {};
      for (const row of headerRows.children) {
        const n = row.querySelector('[data-header="name"]').value.trim();
        const v = row.querySelector('[data-header="value"]').value;
        if (n || v) hs[n] = v;
      }
      if (existing || Object.keys(hs).length) body.headers = hs;
    }
    const ps = perSecond.value.trim(), bs = burst.value.trim(), mi = inflight.value.trim(), fl = filter.value.trim();
    const rate = ps === "" ? null : { perSecond: Number(ps), ...(bs === "" ? {} : { burst: Number(bs) }) };
    if (!existing) {
      if (rate) body.rateLimit = rate;
      if (mi !== "") body.maxInFlight = Number(mi);
      if (fl !== "") body.filter = fl;
      return body;
    }
    const was = existing.rateLimit;
    const rateChanged = rate ? !was || rate.perSecond !== was.perSecond || (rate.burst ?? 1) !== was.burst : !!was;
    if (rateChanged) body.rateLimit = rate;
    if ((mi === "" ? null : Number(mi)) !== (existing.maxInFlight ?? null)) body.maxInFlight = mi === "" ? null : Number(mi);
    if ((fl || null) !== (existing.filter ?? null)) body.filter = fl || null;
    return body;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    submit.disabled = true;
    try {
      await onSubmit(read());
    } catch (err) {
      showError(errors, err);
      const target = fieldOfCode[err.code];
      if (target === "name") name.setAttribute("aria-invalid", "true");
      if (target === "url") url.setAttribute("aria-invalid", "true");
      if (target) form.querySelector(`[data-field="${target}"]`)?.setAttribute("aria-invalid", "true");
      if (["headers", "rate", "inflight", "filter"].includes(target)) options.open = true;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function webhookCreate() {
  const catalogue = await api("GET", "events");
  const root = h("div", {}, heading("New webhook"));
  root.append(webhookForm({
    catalogue, submitLabel: "Create webhook",
    onSubmit: async (body) => {
      const w = await api("POST", "webhooks", body);
      const done = h("div", {},
        heading("Webhook created"),
        h("p", {}, "Events for ", h("strong", {}, w.name), " go to ", h("span", { class: "mono" }, w.url), "."),
        secretPanel({ heading: "Its signing secret", secret: w.secret }),
        h("p", { class: "actions" },
          h("a", { href: `#/w/${w.id}`, class: "button primary" }, "Done: go to the webhook"),
          h("a", { href: `#/w/${w.id}/verify`, class: "button" }, "How to verify signatures")));
      root.replaceWith(done);
      done.querySelector(".secret").focus();
    },
  }));
  return root;
}

export async function webhookEdit(ctx, id) {
  const [w, catalogue] = await Promise.all([api("GET", `webhooks/${id}`), api("GET", "events")]);
  return h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: `#/w/${id}` }, "← ", w.name)),
    heading(`Edit ${w.name}`),
    webhookForm({
      existing: w, catalogue, submitLabel: "Save changes",
      onSubmit: async (body) => {
        await api("PATCH", `webhooks/${id}`, body);
        flash("Saved.");
        location.hash = `#/w/${id}`;
      },
    }));
}

// ---- the detail page ----

function describeRate(w) {
  if (!w.rateLimit) return "None of its own (the service default applies)";
  return `${w.rateLimit.perSecond} per second, burst ${w.rateLimit.burst}`;
}

function testOutcome(r, id) {
  const link = h("a", { href: `#/w/${id}/deliveries/${r.deliveryId}` }, "See the delivery");
  if (r.delivered === undefined) {
    return h("p", {}, badge("pending", "paused"), " Sent; the answer is not in yet. ", link, ".");
  }
  if (r.delivered) {
    return h("p", {}, badge("delivered", "ok"), ` Your endpoint answered ${r.statusCode} in ${duration(r.durationMs)}. `, link, ".");
  }
  return h("p", {}, badge("failed", "bad"),
    " Not delivered", r.statusCode ? `: your endpoint answered ${r.statusCode}` : "", r.error ? ` (${r.error})` : "", `, after ${duration(r.durationMs)}. `, link, ".");
}

export async function webhookDetail(ctx, id) {
  const w = await api("GET", `webhooks/${id}`);
  const st = webhookState(w);
  const out = h("div", { class: "outcome", "aria-live": "polite" });
  const reload = async (message) => {
    const fresh = await webhookDetail(ctx, id);
    root.replaceWith(fresh);
    notify(message);
    fresh.querySelector("h1").focus();
  };
  const act = (fn) => async (e) => {
    const btn = e.currentTarget;
    btn.disabled = true;
    try { await fn(btn); } catch (err) { showError(out, err); } finally { btn.disabled = false; }
  };

  const testBtn = h("button", {
    type: "button", class: "primary",
    onclick: act(async (btn) => {
      const label = btn.textContent;
      btn.textContent = "Sending…";
      out.replaceChildren(h("p", {}, "Sending a webhook.test event…"));
      try {
        out.replaceChildren(h("h2", {}, "Test result"), testOutcome(await api("POST", `webhooks/${id}/test`), id));
      } finally { btn.textContent = label; }
    }),
  }, "Send test event");
  const toggle = h("button", {
    type: "button",
    onclick: act(async () => {
      await api("PATCH", `webhooks/${id}`, { isActive: !w.isActive });
      await reload(w.isActive ? "Paused: no events are delivered until you resume." : "Resumed: events are delivered again.");
    }),
  }, w.isActive ? "Pause" : "Resume");
  const rotate = h("button", {
    type: "button",
    onclick: act(async () => {
      const ok = await confirm({
        title: "Rotate the signing secret?",
        body: "A new secret is issued and shown once. The current one keeps signing beside it for a grace period, so your receiver can switch without missing deliveries.",
        action: "Rotate secret",
      });
      if (!ok) return;
      const r = await api("POST", `webhooks/${id}/rotate-secret`);
      out.replaceChildren(secretPanel({
        heading: "New signing secret", secret: r.secret,
        note: h("span", {}, "The previous secret keeps signing until ", time(r.previousSecretExpiresAt), ": switch your receiver before then."),
      }));
      out.querySelector(".secret").focus();
    }),
  }, "Rotate secret");
  const del = h("button", {
    type: "button", class: "danger",
    onclick: act(async () => {
      const ok = await confirm({
        title: `Delete ${w.name}?`,
        body: "The webhook and its delivery log are deleted, and no more events are sent to it. This cannot be undone.",
        action: "Delete webhook", danger: true,
      });
      if (!ok) return;
      await api("DELETE", `webhooks/${id}`);
      flash(`Deleted ${w.name}.`);
      location.hash = "#/";
    }),
  }, "Delete");

  const row = (k, ...v) => [h("dt", {}, k), h("dd", {}, ...v)];
  const root = h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Webhooks")),
    heading(w.name, " ", badge(st.label, st.cls)),
    h("nav", { class: "tabs", "aria-label": "This webhook" },
      h("a", { href: `#/w/${id}`, "aria-current": "page" }, "Overview"),
      h("a", { href: `#/w/${id}/deliveries` }, "Deliveries"),
      h("a", { href: `#/w/${id}/verify` }, "Verify signatures")),
    h("div", { class: "actions", role: "group", "aria-label": "Actions" },
      testBtn, toggle, h("a", { href: `#/w/${id}/edit`, class: "button" }, "Edit"), rotate, del),
    out,
    h("dl", { class: "facts" },
      row("Endpoint", h("span", { class: "mono" }, w.url)),
      row("Events", w.events.join(", ")),
      row("Status", st.label, st.reason && !w.isActive ? ` — ${st.reason}` : "", w.disabledAt ? h("span", {}, " since ", time(w.disabledAt)) : ""),
      row("Failures in a row", String(w.failureCount)),
      row("Last triggered", time(w.lastTriggeredAt, "Never")),
      row("Created", time(w.createdAt)),
      row("Custom headers", w.headers?.length
        ? h("ul", { class: "plain" }, w.headers.map((x) => h("li", {}, h("span", { class: "mono" }, x.name), " · fingerprint ", h("span", { class: "mono" }, x.fingerprint))))
        : "None"),
      row("Rate limit", describeRate(w)),
      row("At most at once", w.maxInFlight ? String(w.maxInFlight) : "No cap"),
      row("Filter", w.filter ? h("code", {}, w.filter) : "None: every subscribed event")));
  return root;
}

// The verify panel: how a receiver checks that a delivery came from us, in Node and Go.
import { h, api, text, heading, uid, copyButton } from "./lib.js";
import { signatureHeaders } from "./deliveries.js";

function snippet(title, code) {
  const id = uid("code");
  const raw = h("textarea", { readOnly: true, class: "visually-hidden", tabindex: "-1", "aria-hidden": "true" });
  raw.value = code;
  const status = h("span", { role: "status", class: "copied" });
  return h("section", { "aria-labelledby": id },
    h("h2", { id }, title),
    h("pre", { class: "code", tabindex: "0", "aria-labelledby": id }, h("code", {}, code)),
    raw, h("p", {}, copyButton(raw, `Copy the ${title} code`, status), status));
}

export async function verifyPanel(ctx, id) {
  const [w, node, go] = await Promise.all([
    api("GET", `webhooks/${id}`), text("snippets/verify.mjs.txt"), text("snippets/verify.go.txt"),
  ]);
  return h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Webhooks")),
    heading(`Verify signatures from ${w.name}`),
    h("nav", { class: "tabs", "aria-label": "This webhook" },
      h("a", { href: `#/w/${id}` }, "Overview"),
      h("a", { href: `#/w/${id}/deliveries` }, "Deliveries"),
      h("a", { href: `#/w/${id}/verify`, "aria-current": "page" }, "Verify signatures")),
    h("p", { class: "lead" },
      "Every request is signed with this webhook's secret. Check the signature over the raw body, ",
      "before parsing it, and answer 2xx only once the event is safely stored."),
    h("table", { class: "list" },
      h("caption", {}, "Headers on every delivery"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Header"), h("th", { scope: "col" }, "Holds"))),
      h("tbody", {}, signatureHeaders.map(([n, d]) => h("tr", {}, h("th", { scope: "row", class: "mono" }, n), h("td", {}, d))),
        (w.headers || []).map((x) => h("tr", {}, h("th", { scope: "row", class: "mono" }, x.name), h("td", {}, `Your custom header (value fingerprint ${x.fingerprint})`))))),
    snippet("Node.js", node),
    snippet("Go", go),
    h("p", {}, "Prefer a library? The webhook-id, webhook-timestamp and webhook-signature headers follow the Standard Webhooks ",
      "specification, so its libraries verify them too, timestamp check included."));
}

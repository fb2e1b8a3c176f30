// The portal's entry point: take the link token out of the URL at once, exchange it for
// a session kept in memory, then route between the screens by the URL's fragment.
import { h, startSession, notify, heading, errorBox, takeFlash } from "./lib.js";
import { webhooksList, webhookCreate, webhookDetail, webhookEdit } from "./webhooks.js";
import { deliveriesList, deliveryPage } from "./deliveries.js";
import { verifyPanel } from "./verify.js";

const main = document.getElementById("main");
const uuid = "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})";
const routes = [
  [/^\/$/, webhooksList],
  [/^\/new$/, webhookCreate],
  [new RegExp(`^/w/${uuid}$`), webhookDetail],
  [new RegExp(`^/w/${uuid}/edit$`), webhookEdit],
  [new RegExp(`^/w/${uuid}/deliveries$`), deliveriesList],
  [new RegExp(`^/w/${uuid}/deliveries/${uuid}$`), deliveryPage],
  [new RegExp(`^/w/${uuid}/verify$`), verifyPanel],
];

let current = null; // the AbortController of the screen shown
let ended = false;

// The token must leave the address bar before anything else runs: replaceState keeps it
// out of the history, and it is never sent anywhere but the exchange.
const match = /^#link=([A-Za-z0-9_.-]+)$/.exec(location.hash);
history.replaceState(null, "", location.pathname + location.search + "#/");

/** stop shows a page that says why the portal cannot go on, and no data. */
function stop(title, message) {
  ended = true;
  current?.abort();
  document.getElementById("notice").replaceChildren();
  document.querySelector("nav")?.remove();
  main.replaceChildren(h("div", { class: "page-error", role: "alert" },
    heading(title),
    h("p", {}, message),
    h("p", {}, "Open the webhook portal again from the application you came from.")));
  main.setAttribute("aria-busy", "false");
  main.querySelector("h1").focus();
}

async function render() {
  if (ended) return;
  current?.abort();
  const ctl = new AbortController();
  current = ctl;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const route = routes.find(([re]) => re.test(path || "/"));
  main.setAttribute("aria-busy", "true");
  let view;
  try {
    if (!route) throw new Error("There is no such page in the portal.");
    const params = route[0].exec(path || "/").slice(1);
    view = await route[1]({ signal: ctl.signal, query: new URLSearchParams(query || "") }, ...params);
  } catch (err) {
    if (ended || ctl.signal.aborted) return;
    view = h("div", {}, heading("Something went wrong"), errorBox(err), h("p", {}, h("a", { href: "#/" }, "Back to your webhooks")));
  }
  if (ctl.signal.aborted || ended) return;
  main.replaceChildren(view);
  main.setAttribute("aria-busy", "false");
  notify(takeFlash());
  (main.querySelector("[data-autofocus]") || main.querySelector("h1"))?.focus();
  window.scrollTo(0, 0);
}

async function boot() {
  if (!match) {
    stop("No portal session", "This page was opened without a portal link, or reloaded: the session lives only in the page that opened it.");
    return;
  }
  try {
    await startSession(match[1], (message) => stop("Portal session ended", message));
  } catch (err) {
    stop("This portal link cannot be used", err.message);
    return;
  }
  window.addEventListener("hashchange", render);
  await render();
  // The first screen is up with its data: what "interactive" means for the budget.
  performance.mark("portal-interactive");
  document.documentElement.dataset.ready = "true";
}

boot();

// A small, axe-like accessibility check of the page as rendered, run by e2e/portal_test.go
// on every screen of the portal. It returns one line per violation, [] when none.
// Rules (after axe-core's of the same names): html-has-lang, document-title,
// duplicate-id, idref, label, button-name/link-name, link-href, page-has-heading-one,
// heading-order, empty-heading, th-has-scope, table-caption, tabindex,
// nested-interactive, fieldset-legend, landmark-one-main, landmark-unique, image-alt,
// aria-roles, aria-hidden-focus, color-contrast (WCAG 2 AA: 4.5:1, 3:1 for large text).
(() => {
  const out = [];
  const describe = (el) => {
    if (!el) return "document";
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
    return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${cls} "${(el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 40)}"`;
  };
  const fail = (rule, el, detail) => out.push(`${rule}: ${describe(el)}${detail ? " (" + detail + ")" : ""}`);
  const text = (el) => (el?.textContent || "").replace(/\s+/g, " ").trim();
  const byId = (id) => document.getElementById(id);
  const hidden = (el) => {
    for (let e = el; e; e = e.parentElement) if (e.getAttribute("aria-hidden") === "true") return true;
    return !el.checkVisibility({ visibilityProperty: true, opacityProperty: false });
  };
  const name = (el) => {
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    const byRef = ids.map((id) => text(byId(id))).join(" ").trim();
    if (byRef) return byRef;
    const aria = (el.getAttribute("aria-label") || "").trim();
    if (aria) return aria;
    if (el.labels?.length) return [...el.labels].map(text).join(" ").trim();
    if (["BUTTON", "A", "SUMMARY", "OPTION", "TH", "LEGEND", "CAPTION"].includes(el.tagName) || /^H\d$/.test(el.tagName)) return text(el);
    return (el.getAttribute("title") || "").trim();
  };
  const focusable = "a[href], button, input, select, textarea, summary, [tabindex]";

  if (!document.documentElement.lang) fail("html-has-lang", null);
  if (!document.title.trim()) fail("document-title", null);

  const seen = new Set();
  for (const el of document.querySelectorAll("[id]")) {
    if (seen.has(el.id)) fail("duplicate-id", el);
    seen.add(el.id);
  }
  for (const attr of ["aria-labelledby", "aria-describedby", "aria-controls", "for"]) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\s+/).filter(Boolean)) if (!byId(id)) fail("idref", el, `${attr}=${id}`);
    }
  }
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || hidden(el)) continue;
    if (!name(el)) fail("label", el);
  }
  for (const el of document.querySelectorAll("button, a, summary, [role=button]")) {
    if (hidden(el)) continue;
    if (!name(el)) fail(el.tagName === "A" ? "link-name" : "button-name", el);
    if (el.tagName === "A" && !el.hasAttribute("href")) fail("link-href", el);
  }

  const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].filter((h) => !hidden(h));
  const h1s = headings.filter((h) => h.tagName === "H1").length;
  if (h1s !== 1) fail("page-has-heading-one", null, `${h1s} h1`);
  let prev = 0;
  for (const h of headings) {
    const level = Number(h.tagName[1]);
    if (prev && level > prev + 1) fail("heading-order", h, `h${prev} then h${level}`);
    if (!text(h)) fail("empty-heading", h);
    prev = level;
  }

  for (const t of document.querySelectorAll("table")) {
    if (hidden(t)) continue;
    if (!t.querySelector("th")) fail("table-headers", t);
    if (!t.caption || !text(t.caption)) fail("table-caption", t);
    for (const th of t.querySelectorAll("th")) if (!["col", "row", "colgroup", "rowgroup"].includes(th.getAttribute("scope"))) fail("th-has-scope", th);
  }
  for (const el of document.querySelectorAll("[tabindex]")) if (el.tabIndex > 0) fail("tabindex", el);
  for (const el of document.querySelectorAll(focusable)) {
    const outer = el.parentElement?.closest("a[href], button");
    if (outer && el.matches("a[href], button, input, select, textarea")) fail("nested-interactive", el);
  }
  for (const f of document.querySelectorAll("fieldset")) if (!hidden(f) && !f.querySelector(":scope > legend")) fail("fieldset-legend", f);
  if (document.querySelectorAll("main").length !== 1) fail("landmark-one-main", null);
  const navs = [...document.querySelectorAll("nav")];
  if (navs.length > 1) for (const n of navs) if (!name(n)) fail("landmark-unique", n);
  for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) fail("image-alt", img);
  const roles = new Set(["alert", "status", "group", "dialog", "region", "navigation", "main", "note", "button", "log"]);
  for (const el of document.querySelectorAll("[role]")) if (!roles.has(el.getAttribute("role"))) fail("aria-roles", el);
  for (const el of document.querySelectorAll('[aria-hidden="true"]')) {
    for (const f of [el, ...el.querySelectorAll(focusable)]) {
      if (f.matches(focusable) && f.tabIndex >= 0 && !f.disabled) fail("aria-hidden-focus", f);
    }
  }

  // color-contrast: every element with its own visible text.
  const parse = (c) => {
    const m = c.match(/rgba?\(([\d.]+),?\s*([\d.]+),?\s*([\d.]+)(?:[,/]\s*([\d.]+%?))?\)/);
    if (!m) return null;
    let a = m[4] === undefined ? 1 : parseFloat(m[4]);
    if (m[4]?.endsWith("%")) a /= 100;
    return [Number(m[1]), Number(m[2]), Number(m[3]), a];
  };
  const over = (top, bottom) => top.slice(0, 3).map((v, i) => v * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) layers.push(c);
      if (c && c[3] === 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (const l of layers.reverse()) bg = over(l, bg);
    return bg;
  };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own || hidden(el) || el.closest(".visually-hidden") || el.disabled || el.closest("button:disabled")) continue;
    const cs = getComputedStyle(el);
    const fg = parse(cs.color);
    if (!fg) continue;
    const bg = background(el);
    const [l1, l2] = [lum(over(fg, bg)), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) fail("color-contrast", el, `${ratio.toFixed(2)}:1`);
  }
  return out;
})()

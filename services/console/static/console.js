// Draws what the server computed (services/console/view.py): the waterfall of one result's explanation and the A/B
// funnel. No framework and no build step: SVG by hand, every chart with a table beside it as its text alternative.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const fmt = (x) => (x >= 0 ? "+" : "") + x.toFixed(4);

function el(tag, attrs = {}, text = "") {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function waterfall(bars) {
  const row = 22, labelW = 260, plotW = 360, valueW = 80;
  const values = bars.flatMap((b) => [b.start, b.end, 0]);
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const x = (v) => labelW + ((v - lo) / span) * plotW;
  const svg = el("svg:svg", {class: "waterfall", role: "img", width: labelW + plotW + valueW, height: row * bars.length + 8,
    "aria-label": `Waterfall from the baseline ${bars[0].value.toFixed(4)} to the served score ` +
      `${bars[bars.length - 1].value.toFixed(4)}; the table below lists every step.`});
  svg.appendChild(el("svg:line", {x1: x(0), x2: x(0), y1: 0, y2: row * bars.length, class: "zero"}));
  bars.forEach((b, i) => {
    const y = i * row + 4, left = Math.min(x(b.start), x(b.end));
    const cls = b.kind === "evidence" || b.kind === "interaction" ? (b.value >= 0 ? "up" : "down") : b.kind;
    svg.appendChild(el("svg:rect", {x: left, y, width: Math.max(Math.abs(x(b.end) - x(b.start)), 1), height: row - 6,
      class: `bar ${cls}`, "data-kind": b.kind, "data-value": b.value, "data-start": b.start, "data-end": b.end}));
    const label = b.label.length > 38 ? b.label.slice(0, 37) + "…" : b.label;
    svg.appendChild(el("svg:text", {x: 4, y: y + row - 10, class: "label"}, label));
    svg.appendChild(el("svg:text", {x: labelW + plotW + 6, y: y + row - 10, class: "value"},
      b.kind === "evidence" || b.kind === "interaction" ? fmt(b.value) : b.value.toFixed(4)));
  });
  return svg;
}

function table(headers, rows, caption) {
  const t = el("table");
  t.appendChild(el("caption", {}, caption));
  const head = el("tr");
  headers.forEach((h) => head.appendChild(el("th", {scope: "col"}, h)));
  t.appendChild(el("thead")).appendChild(head);
  const body = t.appendChild(el("tbody"));
  rows.forEach((r) => {
    const tr = body.appendChild(el("tr"));
    r.forEach((c) => tr.appendChild(el("td", {}, String(c))));
  });
  return t;
}

function render(panel, data) {
  panel.replaceChildren();
  panel.appendChild(el("p", {class: "sentence", "data-testid": "sentence"}, data.sentence || "(no sentence)"));
  panel.appendChild(el("p", {class: "meta"}, `score ${data.score.toFixed(4)} = baseline ${data.baseline.toFixed(4)} ` +
    `+ evidence + interaction ${fmt(data.interaction)} · ${data.method} · arm ${data.variant} · ` +
    data.model_versions.join(", ")));
  panel.appendChild(waterfall(data.bars));
  panel.appendChild(table(["step", "contribution", "running score"],
    data.bars.map((b) => [b.label, b.kind === "baseline" || b.kind === "score" ? b.value.toFixed(4) : fmt(b.value),
      b.end.toFixed(4)]), "Every step of the waterfall"));
  if (data.timeline.length) {
    panel.appendChild(table(["past purchase", "orders", "last ordered", "contribution"],
      data.timeline.map((r) => [`${r.kind}: ${r.title}`, r.orders || "", r.last || "", fmt(r.contribution)]),
      "The customer's purchases this explanation measured, newest first"));
  }
}

async function toggle(button) {
  const panel = document.getElementById(button.getAttribute("aria-controls"));
  const open = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", String(!open));
  panel.hidden = open;
  if (open || panel.dataset.loaded) return;
  const card = button.closest(".card");
  const token = button.closest(".results").dataset.token;
  panel.textContent = "Explaining…";
  const resp = await fetch(`/why?token=${encodeURIComponent(token)}&product=${encodeURIComponent(card.dataset.product)}`,
    {credentials: "same-origin"});
  const data = await resp.json();
  if (!resp.ok) {
    panel.replaceChildren(el("p", {class: "error", role: "alert"}, data.error || `error ${resp.status}`));
    return;
  }
  render(panel, data);
  panel.dataset.loaded = "1";
}

function funnel(svg) {
  const rows = JSON.parse(svg.dataset.rows), row = 24, labelW = 220, plotW = 380;
  svg.setAttribute("width", labelW + plotW + 90);
  svg.setAttribute("height", row * rows.length + 8);
  const hi = Math.max(...rows.map((r) => r.high || 0), 0.01);
  const x = (v) => labelW + (v / hi) * plotW;
  rows.forEach((r, i) => {
    const y = i * row + 4;
    svg.appendChild(el("svg:text", {x: 4, y: y + row - 10, class: "label"}, `${r.arm} · ${r.stage}`));
    svg.appendChild(el("svg:rect", {x: labelW, y, width: Math.max(x(r.rate) - labelW, 1), height: row - 8, class: "bar up",
      "data-rate": r.rate}));
    svg.appendChild(el("svg:line", {x1: x(r.low), x2: x(r.high), y1: y + (row - 8) / 2, y2: y + (row - 8) / 2, class: "ci"}));
    svg.appendChild(el("svg:text", {x: labelW + plotW + 6, y: y + row - 10, class: "value"}, `${(100 * r.rate).toFixed(1)} %`));
  });
}

document.addEventListener("click", (e) => {
  const button = e.target.closest("button.why");
  if (button) toggle(button);
});
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  const panel = e.target.closest(".card")?.querySelector(".why-panel:not([hidden])");
  if (!panel) return;
  const button = panel.closest(".card").querySelector("button.why");
  button.setAttribute("aria-expanded", "false");
  panel.hidden = true;
  button.focus();
});
document.querySelectorAll("svg.funnel").forEach(funnel);

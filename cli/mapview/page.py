"""The HTML page around the map's SVG: styles, and the script for hover, zoom, pan, legend."""

from __future__ import annotations

import html
import json


def _script_json(value: object) -> str:
    """JSON safe to inline in a <script> element (no way to close the tag)."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, svg: str, thumbs: list[str | None]) -> str:
    """The whole HTML page: the SVG, its styles, and the script with the thumbnails inlined."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(title or "assetsearch map")}</title>
<style>
body {{ font-family: sans-serif; margin: 12px; }}
svg text {{ font-size: 13px; fill: #222; }}
svg .title {{ font-size: 16px; text-anchor: middle; }}
svg .tick {{ fill: #444; }}
svg .stepno {{ font-size: 11px; text-anchor: middle; font-weight: bold; }}
svg .legend {{ cursor: pointer; }}
svg .legend.off {{ opacity: 0.3; }}
svg .legendtitle {{ font-size: 14px; font-weight: bold; }}
#plot circle[data-i] {{ stroke: #fff; stroke-width: 0.5; }}
#plot circle.light {{ stroke: #777; stroke-width: 1; }}
#plot circle[data-i]:hover {{ stroke: #000; stroke-width: 2; }}
#map {{ cursor: grab; user-select: none; }}
#tip {{ position: fixed; display: none; pointer-events: none; background: #fff;
  border: 1px solid #888; padding: 4px 6px; font-size: 13px; max-width: 260px;
  box-shadow: 2px 2px 4px rgba(0,0,0,.2); overflow-wrap: anywhere; }}
#tip img {{ display: block; margin-top: 4px; max-width: 96px; max-height: 96px; }}
.help {{ color: #666; font-size: 12px; }}
</style></head><body>
{svg}
<div class="help">Hover a dot for details; wheel to zoom, drag to pan, double-click to reset,
click a legend entry to hide or show it.</div>
<div id="tip"></div>
<script>
{_SCRIPT.replace("__THUMBS__", _script_json(thumbs))}
</script>
</body></html>
"""


_SCRIPT = """
"use strict";
const THUMBS = __THUMBS__;
const svg = document.getElementById("map");
const plot = document.getElementById("plot");
const tip = document.getElementById("tip");
const dots = Array.from(plot.querySelectorAll("circle[data-i]"));
const steps = Array.from(plot.querySelectorAll("g.step"));
const R = dots.length ? parseFloat(dots[0].getAttribute("r")) : 4;
let view = {s: 1, x: 0, y: 0};
const ticks = document.getElementById("ticks");
function apply() {
  plot.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.s})`);
  // the axis values describe the unzoomed map only
  const home = view.s === 1 && view.x === 0 && view.y === 0;
  ticks.style.visibility = home ? "" : "hidden";
  for (const d of dots) d.setAttribute("r", R / Math.sqrt(view.s));
  for (const g of steps) {
    const t = g.getAttribute("transform").replace(/ scale\\(.*\\)$/, "");
    g.setAttribute("transform", `${t} scale(${1 / view.s})`);
  }
}
function svgPoint(ev) {
  const box = svg.getBoundingClientRect();
  return [(ev.clientX - box.left) * svg.viewBox.baseVal.width / box.width,
          (ev.clientY - box.top) * svg.viewBox.baseVal.height / box.height];
}
svg.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const [px, py] = svgPoint(ev);
  const f = ev.deltaY < 0 ? 1.2 : 1 / 1.2;
  const s = Math.min(50, Math.max(1, view.s * f));
  view.x = px - (px - view.x) * s / view.s;
  view.y = py - (py - view.y) * s / view.s;
  view.s = s;
  apply();
}, {passive: false});
let drag = null;
svg.addEventListener("mousedown", (ev) => { drag = [svgPoint(ev), view.x, view.y]; });
window.addEventListener("mouseup", () => { drag = null; });
svg.addEventListener("mousemove", (ev) => {
  if (!drag) return;
  const [px, py] = svgPoint(ev);
  view.x = drag[1] + px - drag[0][0];
  view.y = drag[2] + py - drag[0][1];
  apply();
});
svg.addEventListener("dblclick", () => { view = {s: 1, x: 0, y: 0}; apply(); });
plot.addEventListener("mouseover", (ev) => {
  const d = ev.target.closest("circle[data-i]");
  if (!d) return;
  tip.replaceChildren(document.createTextNode(d.dataset.label));
  const src = THUMBS[+d.dataset.i];
  if (src) { const img = new Image(); img.src = src; tip.appendChild(img); }
  tip.style.display = "block";
});
plot.addEventListener("mousemove", (ev) => {
  tip.style.left = (ev.clientX + 14) + "px";
  tip.style.top = (ev.clientY + 14) + "px";
});
plot.addEventListener("mouseout", (ev) => {
  if (ev.target.closest("circle[data-i]")) tip.style.display = "none";
});
for (const g of svg.querySelectorAll("g.legend")) {
  g.addEventListener("click", () => {
    const off = g.classList.toggle("off");
    for (const d of dots) if (d.dataset.c === g.dataset.c) d.style.display = off ? "none" : "";
  });
}
"""

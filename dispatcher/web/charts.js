/* Small inline-SVG bar charts for /ops. No library: a bar chart is a few rectangles, and a
   file of our own keeps the strict Content-Security-Policy (scripts from files only; the SVG
   carries inline styles, which the policy allows). Each chart is an image with a title and a
   description for screen readers, and the page puts the same numbers in a table beside it.
   Uses esc() from common.js. */
"use strict";

const charts = (() => {
  const GREEN = "#34d399", RED = "#f87171", BLUE = "#60a5fa", AMBER = "#fbbf24", INK = "#94a3b8";

  function frame(id, title, desc, w, h, body) {
    return `<svg class="chart" id="${esc(id)}" role="img" aria-labelledby="${esc(id)}-t ${esc(id)}-d"`
      + ` viewBox="0 0 ${w} ${h}" width="100%" preserveAspectRatio="xMinYMin meet" style="max-width:${w}px;display:block">`
      + `<title id="${esc(id)}-t">${esc(title)}</title><desc id="${esc(id)}-d">${esc(desc)}</desc>${body}</svg>`;
  }

  /* Promises kept per day: one bar per day, kept (green) under missed (red). */
  function daily(id, days) {
    const w = 600, h = 160, top = 12, bottom = 22, left = 26, right = 18;  // room for the last date
    const most = Math.max(1, ...days.map((d) => d.fixed));
    const step = (w - left - right) / days.length, bw = Math.max(2, step - 3);
    const y = (n) => (h - bottom) - (n / most) * (h - bottom - top);
    let body = `<line x1="${left}" y1="${h - bottom}" x2="${w}" y2="${h - bottom}" style="stroke:${INK};stroke-width:1"/>`
      + `<text x="${left - 4}" y="${top + 4}" style="fill:${INK};font-size:10px" text-anchor="end">${most}</text>`
      + `<text x="${left - 4}" y="${h - bottom}" style="fill:${INK};font-size:10px" text-anchor="end">0</text>`;
    days.forEach((d, n) => {
      const x = left + n * step + 1, missed = d.fixed - d.kept;
      body += `<g class="bar" data-day="${esc(d.day)}"><title>${esc(d.day)}: ${d.kept} of ${d.fixed} kept</title>`
        + `<rect x="${x}" y="${y(d.kept)}" width="${bw}" height="${(h - bottom) - y(d.kept)}" style="fill:${GREEN}"/>`
        + `<rect x="${x}" y="${y(d.fixed)}" width="${bw}" height="${y(d.kept) - y(d.fixed)}" style="fill:${RED}"/></g>`;
      if (n % 7 === days.length % 7 || n === days.length - 1) {
        body += `<text x="${x + bw / 2}" y="${h - 6}" style="fill:${INK};font-size:10px" text-anchor="middle">${esc(d.day.slice(5))}</text>`;
      }
    });
    const fixed = days.reduce((a, d) => a + d.fixed, 0), kept = days.reduce((a, d) => a + d.kept, 0);
    return frame(id, "Promises kept per day, last 30 days",
      `${kept} of ${fixed} fixes in the last ${days.length} days were within the promise; green kept, red missed.`,
      w, h, body);
  }

  /* Median and p90 per group: two horizontal bars per row (minutes). */
  function spread(id, title, rows) {
    const rowH = 34, left = 110, right = 130, w = 600, h = Math.max(1, rows.length) * rowH + 20;
    const most = Math.max(1, ...rows.map((r) => r.p90 || r.p50 || 0));
    const x = (s) => ((s || 0) / most) * (w - left - right);
    let body = `<text x="${left}" y="12" style="fill:${BLUE};font-size:11px">■ median</text>`
      + `<text x="${left + 70}" y="12" style="fill:${AMBER};font-size:11px">■ p90</text>`;
    rows.forEach((r, n) => {
      const y0 = 20 + n * rowH;
      body += `<text x="${left - 6}" y="${y0 + 18}" style="fill:#e2e8f0;font-size:12px" text-anchor="end">${esc(r.label)}</text>`
        + `<rect class="bar" data-key="${esc(r.label)}" data-q="p50" x="${left}" y="${y0 + 3}" width="${x(r.p50)}" height="12" style="fill:${BLUE}"><title>${esc(r.label)} median ${esc(minutes(r.p50))}</title></rect>`
        + `<rect class="bar" data-key="${esc(r.label)}" data-q="p90" x="${left}" y="${y0 + 17}" width="${x(r.p90)}" height="12" style="fill:${AMBER}"><title>${esc(r.label)} p90 ${esc(minutes(r.p90))}</title></rect>`
        + `<text x="${left + x(Math.max(r.p50 || 0, r.p90 || 0)) + 6}" y="${y0 + 20}" style="fill:${INK};font-size:11px">${esc(minutes(r.p50))} / ${esc(minutes(r.p90))}</text>`;
    });
    const words = rows.map((r) => `${r.label}: median ${minutes(r.p50)}, p90 ${minutes(r.p90)}`).join("; ");
    return frame(id, title, words || "No fixes in the period.", w, h, body);
  }

  function minutes(s) {  // seconds to "42 min" / "1 h 05 min"; "–" when there is no figure
    if (s === null || s === undefined) return "–";
    const m = Math.round(s / 60);
    return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  }

  return {daily, spread, minutes};
})();

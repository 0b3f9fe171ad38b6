'use strict';
/**
 * SVG charts of measured benchmark figures: grouped horizontal bars, one SVG per chart a suite
 * declares through common.js `chart()`. Plain SVG (no scripts, no web fonts, a white background so
 * it reads in GitHub's dark theme too), written by hand (~230 lines), no dependency.
 *
 * Results files (JSON lines, see common.js): a `meta` line that run.js writes first
 * ({ machine, date, scale }), then `chart` and `bar` lines from the suite.
 *
 * Re-render saved results (e.g. after changing this file) without measuring again:
 *   node benchmark/charts.js docs/charts/*.results.jsonl [--out docs/charts]
 */
const fs = require('node:fs');
const path = require('node:path');

const WIDTH = 820;
const PAD = 16;
const FONT = 'system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif';
const BAR = 15;
const BAR_GAP = 4;
const GROUP_GAP = 10;
const KINDS = {
  ours: { color: '#2f6fb3', label: 'checkpointer (ours)' },
  peer: { color: '#e8862a', label: 'other libraries (h5py, numpy, h5wasm)' },
  plain: { color: '#9a9a9a', label: 'plain fs calls, no format (fs.writeFileSync, …)' },
};

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Width of `s` in px at `size` px: an estimate (no font metrics in a plain SVG), generous so labels do not collide. */
const textWidth = (s, size, bold = false) => String(s).length * size * (bold ? 0.64 : 0.56);

/** Lines of at most `width` px, broken at spaces. */
function wrap(s, width, size, bold = false) {
  const lines = [];
  let line = '';
  for (const word of String(s).split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size, bold) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** A value as the tables print it: no decimals from 100 up, one from 10, else three significant digits. */
function formatValue(v) {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  return a === 0 ? '0' : String(Number(v.toPrecision(3)));
}

/** Axis ticks 0..max at 1/2/5 × 10^k steps (linear), or the powers of ten spanning [min, max] (log). */
function ticks(min, max, log) {
  if (log) {
    const out = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
    return out;
  }
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = 0; t <= max + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

/** Parses results files into charts: [{ id, spec, meta, groups: [{ label, bars: [...] }] }], in the order declared. */
function readResults(files) {
  const charts = new Map();
  for (const file of files) {
    let meta = {};
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line);
      if (r.type === 'meta') meta = r;
      else if (r.type === 'chart') {
        const { type, id, ...spec } = r;
        if (!charts.has(id)) charts.set(id, { id, spec, meta, groups: [] });
      } else if (r.type === 'bar') {
        const c = charts.get(r.chart);
        if (!c) throw new Error(`${file}: bar for undeclared chart ${r.chart}`);
        let g = c.groups.find((x) => x.label === r.group);
        if (!g) c.groups.push((g = { label: r.group, bars: [] }));
        g.bars.push({ label: r.label, value: r.value, kind: r.kind, note: r.note });
      }
    }
  }
  return [...charts.values()].filter((c) => c.groups.length > 0);
}

/**
 * One chart as an SVG document. Higher-is-better charts give each bar its speed relative to the
 * first plain-fs bar of its group (the tables' ratios); `spec.target` ({ value, label }) draws a
 * dashed line; `spec.log` a log axis (for groups spanning decades).
 */
function renderChart({ id, spec, meta = {}, groups }) {
  const { title, unit, better = 'higher', subtitle, log = false, target } = spec;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v !== null && Number.isFinite(v));
  if (target) values.push(target.value);
  const positive = values.filter((v) => v > 0);
  const tickValues = ticks(log ? Math.min(...positive, 1) : 0, Math.max(...values, log ? 10 : 1e-9), log);
  const lo = log ? tickValues[0] : 0;
  const hi = tickValues[tickValues.length - 1];

  const finite = (v) => v !== null && Number.isFinite(v);
  // The text at the end of each bar: value, unit, ratio to the group's plain bar, note.
  const valueText = new Map();
  for (const g of groups) {
    const base = better === 'higher' ? g.bars.find((b) => b.kind === 'plain' && b.value > 0) : undefined;
    for (const b of g.bars) {
      let t = finite(b.value) ? `${formatValue(b.value)} ${unit}` : 'n/a';
      if (finite(b.value) && base && b !== base) t += ` (${(b.value / base.value).toFixed(2)}x)`;
      valueText.set(b, b.note ? `${t}, ${b.note}` : t);
    }
  }
  const fraction = (v) => (log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi);
  const labelWidth = Math.min(360, Math.max(...groups.flatMap((g) => g.bars.map((b) => textWidth(b.label, 12)))) + 10);
  const x0 = PAD + labelWidth;
  // As wide as every bar's value text still fits to the right of its bar.
  let plotWidth = WIDTH - x0 - PAD - 40;
  for (const g of groups) {
    for (const b of g.bars) {
      const f = finite(b.value) ? fraction(b.value) : 0;
      if (f > 0) plotWidth = Math.min(plotWidth, (WIDTH - PAD - x0 - 5 - textWidth(valueText.get(b), 12)) / f);
    }
  }
  plotWidth = Math.max(plotWidth, 120);
  const xOf = (v) => x0 + plotWidth * fraction(v);

  const out = [];
  let y = PAD;
  // halo: a white outline under the letters, so a value stays legible where it crosses a grid or target line.
  const text = (x, yy, s, { size = 12, weight, anchor, fill = '#222', halo = false } = {}) => out.push(
    `<text x="${x.toFixed(1)}" y="${yy.toFixed(1)}" font-size="${size}"${weight ? ` font-weight="${weight}"` : ''}`
    + `${anchor ? ` text-anchor="${anchor}"` : ''} fill="${fill}"${halo ? ' stroke="#fff" stroke-width="3" paint-order="stroke"' : ''}>${esc(s)}</text>`);

  for (const line of wrap(title, WIDTH - 2 * PAD, 16, true)) { y += 18; text(PAD, y, line, { size: 16, weight: 'bold' }); }
  if (subtitle) for (const line of wrap(subtitle, WIDTH - 2 * PAD, 12)) { y += 15; text(PAD, y, line, { fill: '#444' }); }
  // Legend: the kinds of bar this chart has.
  y += 20;
  let lx = PAD;
  for (const [kind, k] of Object.entries(KINDS)) {
    if (!groups.some((g) => g.bars.some((b) => b.kind === kind))) continue;
    out.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${k.color}"/>`);
    text(lx + 17, y, k.label);
    lx += 17 + textWidth(k.label, 12) + 18;
  }
  y += 12;

  const plotTop = y;
  const rows = [];
  for (const g of groups) {
    y += 16;
    const headY = y;
    rows.push(() => text(PAD, headY, g.label, { weight: 'bold' }));
    for (const b of g.bars) {
      y += BAR_GAP;
      const top = y;
      const cy = top + BAR / 2 + 4;
      const ok = finite(b.value);
      const w = ok ? Math.max(1, xOf(b.value) - x0) : 0;
      const label = valueText.get(b);
      rows.push(() => {
        text(x0 - 8, cy, b.label, { anchor: 'end' });
        if (ok) out.push(`<rect x="${x0}" y="${top}" width="${w.toFixed(1)}" height="${BAR}" fill="${(KINDS[b.kind] ?? KINDS.ours).color}"><title>${esc(`${g.label} — ${b.label}: ${label}`)}</title></rect>`);
        text(x0 + w + 5, cy, label, { fill: ok ? '#222' : '#a00', halo: true });
      });
      y += BAR;
    }
    y += GROUP_GAP;
  }
  const plotBottom = y;

  // Grid and axis first, so the bars lie over them.
  for (const t of tickValues) {
    const x = xOf(t);
    out.push(`<line x1="${x.toFixed(1)}" y1="${plotTop}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="#e3e3e3"/>`);
    text(x, plotBottom + 15, String(Number(t.toPrecision(6))), { anchor: 'middle', size: 11, fill: '#555' });
  }
  out.push(`<line x1="${x0}" y1="${plotTop}" x2="${x0}" y2="${plotBottom}" stroke="#888"/>`);
  if (target) {
    const x = xOf(target.value);
    out.push(`<line x1="${x.toFixed(1)}" y1="${plotTop}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5 3"/>`);
    text(x + 4, plotTop + 11, target.label ?? `target ${formatValue(target.value)} ${unit}`, { size: 11, fill: '#c0392b', halo: true });
  }
  rows.forEach((draw) => draw());
  y = plotBottom + 32;
  text(x0 + plotWidth / 2, y, `${unit}${log ? ', log scale' : ''} — ${better} is better`, { anchor: 'middle', fill: '#333' });

  // Caption: where and when the figures were measured.
  const caption = [
    meta.date ? `Measured ${meta.date} by npm run bench` : 'Measured by npm run bench',
    meta.scale && meta.scale !== 1 ? ` (QUICK RUN: sizes scaled by ${meta.scale}; not representative)` : '',
    meta.machine ? ` on ${meta.machine}` : '',
  ].join('');
  y += 8;
  for (const line of wrap(caption, WIDTH - 2 * PAD, 11)) { y += 14; text(PAD, y, line, { size: 11, fill: '#555' }); }
  const height = Math.ceil(y + PAD);

  return `<?xml version="1.0" encoding="UTF-8"?>\n`
    + `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="${esc(id)}-title" font-family="${esc(FONT)}">\n`
    + `<title id="${esc(id)}-title">${esc(title)}</title>\n`
    + `<rect width="100%" height="100%" fill="#fff"/>\n${out.join('\n')}\n</svg>\n`;
}

/** Writes <outDir>/<id>.svg for every chart in the results files; returns the files written. */
function writeCharts(resultFiles, outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  return readResults(resultFiles).map((c) => {
    const file = path.join(outDir, `${c.id}.svg`);
    fs.writeFileSync(file, renderChart(c));
    return file;
  });
}

module.exports = { readResults, renderChart, writeCharts, formatValue, ticks };

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const outDir = at >= 0 ? args.splice(at, 2)[1] : path.join(__dirname, '..', 'docs', 'charts');
  if (args.length === 0) {
    console.error('usage: node benchmark/charts.js <results.jsonl>... [--out dir]');
    process.exitCode = 2;
  } else {
    for (const f of writeCharts(args, outDir)) console.log(path.relative(process.cwd(), f));
  }
}

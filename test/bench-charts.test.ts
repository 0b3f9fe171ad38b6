/**
 * The benchmark charts (benchmark/common.js `chart()` → results file → benchmark/charts.js SVG), on
 * synthetic figures: the SVG is well-formed XML (parsed by Python's xml.etree), holds the labels,
 * values, ratios, legend and caption it was given, scales its bars to the values, and has nothing a
 * GitHub image could not show (scripts, external references).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runPython, tempDir } from './helpers/python';

const bench = path.resolve(__dirname, '..', '..', 'benchmark');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chart } = require(path.join(bench, 'common.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readResults, renderChart, writeCharts, ticks } = require(path.join(bench, 'charts.js'));

const dir = tempDir('bench-charts-test-');
let n = 0;

/** Records through common.js exactly as a suite does, into a fresh results file with run.js's meta line. */
function record(fn: () => void, meta: object = { machine: '2× Test CPU, 4 GiB RAM, Node v20', date: '2026-12-06', scale: 1 }): string {
  const file = path.join(dir, `r${n++}.results.jsonl`);
  fs.writeFileSync(file, `${JSON.stringify({ type: 'meta', ...meta })}\n`);
  const before = process.env.CHECKPOINTER_BENCH_RESULTS;
  process.env.CHECKPOINTER_BENCH_RESULTS = file;
  try {
    fn();
  } finally {
    if (before === undefined) delete process.env.CHECKPOINTER_BENCH_RESULTS;
    else process.env.CHECKPOINTER_BENCH_RESULTS = before;
  }
  return file;
}

interface Parsed {
  root: string;
  texts: string[];
  rects: { width: number; fill: string; title: string }[];
  lines: { dash: string | null }[];
  tags: string[];
  attrs: string[];
}

/** Parses the SVG with xml.etree (raises on malformed XML) and lists what it draws. */
function parse(svg: string): Parsed {
  const file = path.join(dir, `c${n++}.svg`);
  fs.writeFileSync(file, svg);
  return runPython<Parsed>(`
import json, sys, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
ns = '{http://www.w3.org/2000/svg}'
texts = [''.join(t.itertext()) for t in root.iter(ns + 'text')]
rects = [{'width': float(r.get('width').rstrip('%')), 'fill': r.get('fill'), 'title': ''.join(r.find(ns + 'title').itertext()) if r.find(ns + 'title') is not None else ''}
         for r in root.iter(ns + 'rect') if r.find(ns + 'title') is not None]
lines = [{'dash': l.get('stroke-dasharray')} for l in root.iter(ns + 'line')]
tags = sorted({e.tag.replace(ns, '') for e in root.iter()})
attrs = sorted({a for e in root.iter() for a in e.attrib})
print(json.dumps({'root': root.tag, 'texts': texts, 'rects': rects, 'lines': lines, 'tags': tags, 'attrs': attrs}))`, file);
}

const hdf5Like = (): string => record(() => {
  const c = chart('hdf5-throughput', { title: 'HDF5: write one 256 MiB array', subtitle: 'Best of 5 rounds.', unit: 'MiB/s', better: 'higher' });
  c.bar('write, tmpfs', 'fs.writeFileSync', 1538, { kind: 'plain' });
  c.bar('write, tmpfs', 'ours set (async)', 1443);
  c.bar('write, tmpfs', 'h5py chunks=True', 547, { kind: 'peer' });
  c.bar('write, tmpfs', 'h5wasm', NaN, { kind: 'peer' });
  c.bar('read, tmpfs', 'fs.readFileSync', 923, { kind: 'plain' });
  c.bar('read, tmpfs', 'ours <get> & "more"', 1201, { note: 'ratio 1.46' });
});

describe('benchmark charts', () => {
  it('records bars in call order, groups by label, a non-finite value as null; nothing without a results file', () => {
    const [c] = readResults([hdf5Like()]);
    assert.equal(c.id, 'hdf5-throughput');
    assert.equal(c.meta.machine, '2× Test CPU, 4 GiB RAM, Node v20');
    assert.deepEqual(c.groups.map((g: any) => g.label), ['write, tmpfs', 'read, tmpfs']);
    assert.deepEqual(c.groups[0].bars.map((b: any) => [b.label, b.value, b.kind]), [
      ['fs.writeFileSync', 1538, 'plain'], ['ours set (async)', 1443, 'ours'], ['h5py chunks=True', 547, 'peer'], ['h5wasm', null, 'peer'],
    ]);
    delete process.env.CHECKPOINTER_BENCH_RESULTS;
    assert.doesNotThrow(() => chart('x', { title: 'x', unit: 'ms' }).bar('g', 'b', 1));
  });

  it('draws well-formed SVG with the labels, values, ratios, legend and caption given, and bars to scale', () => {
    const svg = renderChart(readResults([hdf5Like()])[0]);
    const p = parse(svg);
    assert.equal(p.root, '{http://www.w3.org/2000/svg}svg');
    for (const want of ['HDF5: write one 256 MiB array', 'Best of 5 rounds.', 'write, tmpfs', 'read, tmpfs', 'fs.writeFileSync', 'h5py chunks=True',
      'ours <get> & "more"', '1538 MiB/s', '1443 MiB/s (0.94x)', '547 MiB/s (0.36x)', 'n/a', '1201 MiB/s (1.30x), ratio 1.46',
      'checkpointer (ours)', 'MiB/s — higher is better']) {
      assert.ok(p.texts.includes(want), `missing text ${JSON.stringify(want)} in ${JSON.stringify(p.texts)}`);
    }
    assert.ok(p.texts.includes('other libraries (h5py, numpy, h5wasm)') && p.texts.some((t) => t.startsWith('plain fs calls')));
    const caption = p.texts.filter((t) => t.includes('Measured') || t.includes('Node v20')).join(' ');
    assert.match(caption, /Measured 2026-12-06 by npm run bench on 2× Test CPU/);
    assert.doesNotMatch(caption, /QUICK RUN/);
    // One rect per finite bar, coloured by kind, widths proportional to the values (linear axis from 0).
    assert.equal(p.rects.length, 5);
    const width = (label: string): number => p.rects.find((r) => r.title.includes(label))!.width;
    assert.ok(Math.abs(width('ours set (async)') / width('fs.writeFileSync') - 1443 / 1538) < 0.01);
    assert.ok(Math.abs(width('h5py chunks=True') / width('fs.writeFileSync') - 547 / 1538) < 0.01);
    assert.equal(new Set(p.rects.map((r) => r.fill)).size, 3);
    // Plain SVG only: what GitHub shows in an <img>.
    assert.deepEqual(p.tags.filter((t) => !['svg', 'title', 'rect', 'text', 'line'].includes(t)), []);
    assert.ok(!p.attrs.some((a) => /href|^on|style/.test(a)), p.attrs.join(' '));
    assert.doesNotMatch(svg, /<script|@import|url\(|@font-face/);
  });

  it('a quick run says so in the caption; a lower-is-better chart with a target and a log axis', () => {
    const file = record(() => {
      const c = chart('reads-frames', { title: 'Single-frame reads', unit: 'µs per read', better: 'lower', log: true, target: { value: 20, label: 'target < 20 µs' } });
      c.bar('gzip, random', 'ours readSync', 9.4);
      c.bar('gzip, random', 'h5py ds[i] loop', 3799.4, { kind: 'peer' });
      c.bar('gzip, random', 'ours, zstd', 3.1);
    }, { machine: 'm', date: '2026-12-06', scale: 0.01 });
    const p = parse(renderChart(readResults([file])[0]));
    for (const want of ['9.4 µs per read', '3799 µs per read', '3.1 µs per read', 'ours, zstd', 'target < 20 µs', 'µs per read, log scale — lower is better']) {
      assert.ok(p.texts.includes(want), `missing ${want}`);
    }
    assert.ok(p.texts.some((t) => t.includes('QUICK RUN: sizes scaled by 0.01')));
    assert.ok(p.lines.some((l) => l.dash));
    // Log axis: 9.4 → 3799 is 2.6 decades, 9.4 → 3.1 is −0.48 decade, measured from the axis's first tick (1).
    const w = (label: string): number => p.rects.find((r) => r.title.includes(label))!.width;
    assert.ok(Math.abs(w('h5py') / w('ours readSync') - Math.log10(3799.4) / Math.log10(9.4)) < 0.02);
    assert.deepEqual(ticks(3.1, 3799.4, true), [1, 10, 100, 1000, 10000]);
    assert.deepEqual(ticks(0, 1538, false), [0, 500, 1000, 1500, 2000]);
  });

  it('writeCharts writes one <id>.svg per chart recorded', () => {
    const file = record(() => {
      chart('a-chart', { title: 'A', unit: 'ms', better: 'lower' }).bar('g', 'x', 1);
      chart('b-chart', { title: 'B', unit: 'MiB/s' });
      chart('c-chart', { title: 'C', unit: 'MiB/s' }).bar('g', 'y', 2, { kind: 'plain' });
    });
    const out = path.join(dir, 'out');
    const files = writeCharts([file], out).map((f: string) => path.basename(f));
    assert.deepEqual(files, ['a-chart.svg', 'c-chart.svg']); // a chart without bars is not drawn
    assert.ok(parse(fs.readFileSync(path.join(out, 'c-chart.svg'), 'utf8')).texts.includes('2 MiB/s'));
  });
});

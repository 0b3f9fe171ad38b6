/**
 * The reliability suite (issue 9): SIGKILLs at random points of checkpoint and append loops,
 * mutation fuzzing of every format, leaks over many cycles, two writers on one file. Every
 * scenario that can crash, hang or be killed runs in child processes (test/reliability/).
 *
 * `npm test` runs a short form (a few kills and mutants per variant, ~1 minute); `npm run
 * test:reliability` runs the full campaign (RELIABILITY_PROFILE=full: 200 kills per variant, 300
 * mutants per seed, 10,000 cycles, h5py's kill loop as the anchor). Counts can be set one by one
 * (RELIABILITY_KILLS, RELIABILITY_MUTANTS, RELIABILITY_CYCLES, RELIABILITY_WRITER_ROUNDS,
 * RELIABILITY_H5PY_KILLS, RELIABILITY_SEED); figures go to reliability-out/report-<profile>.md and
 * crashers/hangers of the fuzzer to reliability-out/fuzz/. docs/reliability.md explains it all.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FULL, outDir, params, report, runHarness, scratchDir, table } from './reliability/common';
import { ourSubject, runKillCampaign, type KillStats } from './reliability/kill';
import { h5pySubject } from './reliability/h5py-anchor';
import { runFuzzCampaign, SEEDS, writeSeed, type FuzzStats } from './reliability/fuzz';
import { runLeakCheck, runTwoWriters, type LeakStats, type TwoWriterStats } from './reliability/checks';
import type { ReadOutcome } from './reliability/fuzz-reader';
import { hdf5Info } from '../lib';

const killStats: KillStats[] = [];
const fuzzStats: FuzzStats[] = [];
const leakStats: LeakStats[] = [];
const writerStats: TwoWriterStats[] = [];
/** RSS may grow this much over the run after warm-up (allocator pools, JIT code), no more. */
const RSS_BOUND_MIB = 32;

before(() => {
  const file = path.join(outDir(), `report-${FULL ? 'full' : 'short'}.md`);
  const info = hdf5Info();
  fs.writeFileSync(file, [
    `# Reliability campaign (${FULL ? 'full' : 'short'} form), ${new Date().toISOString()}`,
    '',
    `Machine: ${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ` +
      `${os.type()} ${os.release()}, Node ${process.version}, HDF5 ${info.version} (${info.build}); scratch in ${process.env.RELIABILITY_DIR ?? os.tmpdir()}.`,
    `Parameters: ${JSON.stringify(params)}`,
    '',
  ].join('\n'));
});

after(() => {
  fs.writeFileSync(
    path.join(outDir(), `results-${FULL ? 'full' : 'short'}.json`),
    JSON.stringify({ params, killStats, fuzzStats, leakStats: leakStats.map(({ samples: _s, ...rest }) => rest), writerStats }, null, 1),
  );
  const killRows = killStats.map((s) => [
    s.subject, s.kills, `${s.opened} (${pct(s.opened, s.kills)})`, `${s.keysLost} in ${s.filesWithLostKeys} files`, s.framesLost,
    `${s.firstCommitBad} of ${s.killsBeforeFirstCommit}`, s.nextWriterBlocked,
    `${s.leftoversAfterKill} (${mib(s.leftoverBytesAfterKill)})`, s.leftoversAfterNextWriter,
    Object.entries(s.byMode).map(([m, v]) => `${m} ${v.damaged}/${v.kills}`).join(', '),
  ]);
  if (killRows.length > 0) {
    report('SIGKILL campaign', [
      table(['variant', 'kills', 'files that open', 'committed keys lost', 'flushed frames lost', 'first commit killed: bad file',
        'next writer blocked', 'leftovers after kill (size)', 'leftovers after next writer', 'damaged per kill mode'], killRows),
      '',
      ...killStats.flatMap((s) => s.examples.map((e) => `- ${s.subject}: ${e}`)),
    ].join('\n'));
  }
  if (fuzzStats.length > 0) {
    report('Mutation fuzzing', [
      table(['seed', 'mutants', 'clean', 'crashes', 'hangs (10 s)', 'raw errors', 'changed by reading', 'silent changes (gets)', 'codes'],
        fuzzStats.map((s) => [s.seed, s.mutants, s.clean, s.crashes, s.hangs, s.rawErrors, s.changedByReading, `${s.silent} (${s.silentGets})`,
          Object.entries(s.codes).map(([c, n]) => `${c} ${n}`).join(', ')])),
      '',
      ...fuzzStats.flatMap((s) => s.findings.slice(0, 8).map((f) => `- ${f.seed}: ${f.what}: ${f.problem}${f.saved ? ` → ${path.basename(f.saved)}` : ''}`)),
    ].join('\n'));
  }
  if (leakStats.length > 0) {
    report('Leaks', table(['format', 'cycles', 'fds (first → last sample)', 'fd growth', 'RSS MiB (warm → last)', 'RSS growth', 'in-scope HDF5 objects', 'time'],
      leakStats.map((s) => {
        const w = s.samples[1] ?? s.samples[0];
        const l = s.samples[s.samples.length - 1];
        return [s.ext, s.cycles, `${s.samples[0]?.fds} → ${l?.fds}`, s.fdGrowth, `${w?.rssMiB} → ${l?.rssMiB}`, `${s.rssGrowthMiB} MiB`,
          s.hdf5ObjectCounts.join(', ') || '-', `${(s.ms / 1000).toFixed(1)} s`];
      })));
  }
  if (writerStats.length > 0) {
    report('Two writers on one file', table(['format', 'writers', 'commits returned', 'ERR_LOCKED', 'lost updates', 'other errors'],
      writerStats.map((s) => [s.ext, s.mode === 'process' ? 'two processes' : 'two checkpointers, one process', s.committed, s.locked,
        `${s.lost}${s.lostExamples.length ? ` (${s.lostExamples.join(', ')})` : ''}`, s.errors.length ? `${s.errors.length}: ${s.errors[0]}` : 0])));
  }
});

function pct(n: number, of: number): string {
  return of === 0 ? '-' : `${Math.round((1000 * n) / of) / 10}%`;
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function assertKillTargets(s: KillStats): void {
  const why = s.examples.join('\n  ');
  assert.equal(s.writerErrors, 0, `writers failed on their own before the kill:\n  ${why}`);
  assert.ok(s.kills > 0, 'no kill landed');
  assert.equal(s.opened, s.kills, `${s.kills - s.opened} of ${s.kills} killed files do not open:\n  ${why}`);
  assert.equal(s.keysLost, 0, `${s.keysLost} committed keys lost in ${s.filesWithLostKeys} files:\n  ${why}`);
  assert.equal(s.framesLost, 0, `${s.framesLost} flushed frames lost:\n  ${why}`);
  assert.equal(s.firstCommitBad, 0, `${s.firstCommitBad} files killed in their first commit are neither absent nor empty-but-valid`);
  assert.equal(s.nextWriterBlocked, 0, `the next writer failed ${s.nextWriterBlocked} times:\n  ${why}`);
  assert.equal(s.leftoversAfterNextWriter, 0, `${s.leftoversAfterNextWriter} stale temp/spool files outlived the next writer`);
}

describe('reliability: SIGKILL at random points', () => {
  let n = 0;
  for (const [ext, loop] of [
    ['.json', 'checkpoint'], ['.npz', 'checkpoint'], ['.h5', 'checkpoint'],
    ['.npy', 'append'], ['.npz', 'append'], ['.h5', 'append'],
  ] as const) {
    const seed = params.seed + 1000 * n++;
    it(`${ext} ${loop} loop: every file opens, nothing committed or flushed is lost, no stale files (${params.kills} kills, seed ${seed})`, async () => {
      const s = await runKillCampaign(ourSubject(ext, loop), params.kills, seed);
      killStats.push(s);
      assertKillTargets(s);
    });
  }
  it(`anchor: h5py writing in place, the same checkpoint loop (${params.h5pyKills} kills; figures only)`, { skip: params.h5pyKills === 0 }, async () => {
    killStats.push(await runKillCampaign(h5pySubject(), params.h5pyKills, params.seed + 77));
  });
});

describe('reliability: mutation fuzzing', () => {
  let n = 0;
  for (const seedName of SEEDS) {
    const seed = params.seed + 31 * n++;
    it(`${seedName}: ${params.mutants} mutants read key by key give only CheckpointerErrors, no crash, no hang, file unchanged (seed ${seed})`, async () => {
      const s = await runFuzzCampaign(seedName, params.mutants, seed);
      fuzzStats.push(s);
      const why = s.findings.slice(0, 5).map((f) => `${f.what}: ${f.problem}${f.saved ? ` (${f.saved})` : ''}`).join('\n  ');
      assert.equal(s.crashes, 0, `${s.crashes} mutants crashed the reader:\n  ${why}`);
      assert.equal(s.hangs, 0, `${s.hangs} mutants hung the reader for 10 s:\n  ${why}`);
      assert.equal(s.rawErrors, 0, `${s.rawErrors} mutants gave errors that are not CheckpointerErrors:\n  ${why}`);
      assert.equal(s.changedByReading, 0, `${s.changedByReading} mutants were changed by reading them`);
      if (seedName.startsWith('npz')) {
        // Every npz member is CRC-checked on a whole read and named twice: a get never returns a changed value.
        assert.equal(s.silentGets, 0, `${s.silentGets} npz mutants returned a changed value without an error:\n  ${why}`);
      }
    });
  }

  it('npz: a member whose local header names another file is refused, not read', async () => {
    const dir = scratchDir('npz-name');
    const seed = await writeSeed(dir, 'npz');
    const bytes = fs.readFileSync(seed);
    // Rename 'tag.npy' in its local header only (the central directory keeps the name): numpy's
    // zipfile refuses such a member; a reader that trusts the directory alone returns its data.
    let renamed = false;
    for (let at = bytes.indexOf('PK\x03\x04'); at >= 0; at = bytes.indexOf('PK\x03\x04', at + 4)) {
      const nameLength = bytes.readUInt16LE(at + 26);
      if (bytes.toString('latin1', at + 30, at + 30 + nameLength) === 'tag.npy') {
        bytes[at + 30] = 'x'.charCodeAt(0);
        renamed = true;
      }
    }
    assert.ok(renamed, 'the seed has a member tag.npy');
    const mutant = path.join(dir, 'renamed.npz');
    fs.writeFileSync(mutant, bytes);
    const r = await runHarness('fuzz-reader', { files: [[mutant, seed]] }, { timeoutMs: 30_000 });
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Partial<ReadOutcome>).find((l) => l.done !== undefined);
    assert.ok(out?.ops, `the reader gave no result: ${r.stderr}`);
    const tagRead = out.ops.find((o) => o.startsWith('get tag:') || o.startsWith('keys():'))!;
    const refused = out.ops.some((o) => o === 'keys(): ERR_CHECKPOINT_CORRUPT' || o === 'get tag: ERR_CHECKPOINT_CORRUPT');
    assert.ok(refused, `expected ERR_CHECKPOINT_CORRUPT for the renamed member, got ${tagRead} (${out.ops.join('; ')})`);
  });
});

describe('reliability: leaks', () => {
  for (const ext of ['.json', '.npz', '.h5']) {
    it(`${ext}: ${params.cycles} open/set/get/close cycles keep fds and HDF5 objects flat, RSS bounded`, async () => {
      const s = await runLeakCheck(ext, params.cycles);
      leakStats.push(s);
      assert.equal(s.error, null);
      assert.equal(s.fdGrowth, 0, `open fds grew by ${s.fdGrowth}: ${JSON.stringify(s.samples.map((x) => x.fds))}`);
      assert.ok(s.hdf5ObjectCounts.length <= 1, `in-scope HDF5 object count changed: ${s.hdf5ObjectCounts.join(', ')}`);
      assert.ok(s.rssGrowthMiB < RSS_BOUND_MIB, `RSS grew by ${s.rssGrowthMiB} MiB after warm-up (bound ${RSS_BOUND_MIB}): ${JSON.stringify(s.samples.map((x) => x.rssMiB))}`);
    });
  }
});

describe('reliability: two writers on one file', () => {
  for (const ext of ['.json', '.npz', '.npy', '.h5']) {
    for (const mode of ['process', 'in-process'] as const) {
      it(`${ext}, ${mode === 'process' ? 'two processes' : 'two checkpointers in one process'}: each commit is kept or refused with ERR_LOCKED (${params.writerRounds} rounds)`, async () => {
        const s = await runTwoWriters(ext, mode, params.writerRounds);
        writerStats.push(s);
        assert.deepEqual(s.errors, [], 'the only failure a writer may meet is ERR_LOCKED');
        assert.ok(s.committed > 0, 'no commit went through');
        assert.equal(s.lost, 0, `${s.lost} of ${s.committed} commits that returned are not in the file (${s.lostExamples.join(', ')})`);
      });
    }
  }
});

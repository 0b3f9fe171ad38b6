/**
 * The published entry points: `require('checkpointer')` and `import ... from 'checkpointer'` both
 * work from a project that depends on the package, and share one module instance.
 */
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { tempDir } from './helpers/python';

const root = path.resolve(__dirname, '..', '..');
const project = tempDir('checkpointer-consumer-');
fs.mkdirSync(path.join(project, 'node_modules'));
fs.symlinkSync(root, path.join(project, 'node_modules', 'checkpointer'), 'dir');

function run(file: string, code: string): string {
  fs.writeFileSync(path.join(project, file), code);
  return execFileSync(process.execPath, [path.join(project, file)], { cwd: project, encoding: 'utf8' }).trim();
}

describe('package entry points', () => {
  it("require('checkpointer') gives a working checkpointer", () => {
    const out = run('use.cjs', `
const { Checkpointer, JSONCheckpointer, ndarray } = require('checkpointer');
const file = require('node:path').join(__dirname, 'cjs.json');
const chk = Checkpointer.fromFile(file);
chk.setSync('x', ndarray(new Float64Array([1, 2])));
console.log(chk instanceof JSONCheckpointer, JSON.stringify(chk.getSync('x')));`);
    assert.equal(out, 'true [1,2]');
  });

  it("import from 'checkpointer' gives the same classes as require", () => {
    const out = run('use.mjs', `
import { createRequire } from 'node:module';
import def, { Checkpointer, NumPyCheckpointer, CheckpointerError } from 'checkpointer';
const cjs = createRequire(import.meta.url)('checkpointer');
console.log(Checkpointer === cjs.Checkpointer, def.NumPyCheckpointer === NumPyCheckpointer, typeof CheckpointerError);`);
    assert.equal(out, 'true true function');
  });

  it('type-checks as TypeScript sees it from an ES module (index.d.mts) and from CommonJS (index.d.ts)', () => {
    fs.writeFileSync(path.join(project, 'types-esm.mts'), `
import def, { Checkpointer, ndarray, type DType, type NDArrayLike } from 'checkpointer';
import * as ns from 'checkpointer';
const kind: DType = 'float64';
const array: NDArrayLike = ndarray(new Float64Array([1]));
const fromDefault: typeof Checkpointer = def.Checkpointer;
const fromNamespace: typeof Checkpointer = ns.Checkpointer;
// @ts-expect-error the default export is the CommonJS module object, as in index.mjs; it has no default
def.default;
// @ts-expect-error a name the package does not export
import { notAnExport } from 'checkpointer';
export { kind, array, fromDefault, fromNamespace, notAnExport };
`);
    fs.writeFileSync(path.join(project, 'types-cjs.cts'), `
import cjs = require('checkpointer');
import { Checkpointer, type DType } from 'checkpointer';
const kind: DType = 'int32';
const fromRequire: typeof Checkpointer = cjs.Checkpointer;
export { kind, fromRequire };
`);
    // TypeScript in-process, checking only these files and index.d.mts: tsc would check all of
    // @types/node as well (seconds per run).
    const esm = path.join(project, 'types-esm.mts');
    const cjs = path.join(project, 'types-cjs.cts');
    const dist = path.join(fs.realpathSync(root), 'dist');
    const base = ts.createCompilerHost({});
    const parsed = new Map<string, ts.SourceFile | undefined>();
    const host: ts.CompilerHost = {
      ...base,
      getSourceFile: (file, version, ...rest) => {
        const key = `${file}\0${JSON.stringify(version)}`;
        if (!parsed.has(key)) parsed.set(key, base.getSourceFile(file, version, ...rest));
        return parsed.get(key);
      },
    };
    const check = (options: ts.CompilerOptions, files: string[]): void => {
      const program = ts.createProgram(files, {
        noEmit: true, strict: true, target: ts.ScriptTarget.ES2022,
        types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], ...options,
      }, host);
      const mine = program.getSourceFiles().filter((f) => files.includes(f.fileName) || f.fileName === path.join(dist, 'index.d.mts'));
      const errors = [...program.getOptionsDiagnostics(), ...mine.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)])];
      assert.deepEqual(errors.map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`), []);
    };
    const nodenext = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
    const resolve = (from: string, mode: ts.ResolutionMode) =>
      ts.resolveModuleName('checkpointer', from, nodenext, ts.sys, undefined, undefined, mode).resolvedModule?.resolvedFileName;
    assert.equal(resolve(esm, ts.ModuleKind.ESNext), path.join(dist, 'index.d.mts'));
    assert.equal(resolve(cjs, ts.ModuleKind.CommonJS), path.join(dist, 'index.d.ts'));
    check(nodenext, [esm, cjs]);
    // A bundler without synthetic default imports: index.d.mts must not rely on them.
    check({ module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, allowSyntheticDefaultImports: false }, [esm]);
  });

  it('ships type declarations for each entry point: ESM types for import, CommonJS types for require', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const [condition, types, js] of [['import', '.d.mts', '.mjs'], ['require', '.d.ts', '.js']]) {
      const entry = pkg.exports['.'][condition];
      assert.deepEqual(Object.keys(entry), ['types', 'default'], `exports["."].${condition}`);
      assert.ok(entry.types.endsWith(types) && entry.default.endsWith(js), `exports["."].${condition}`);
      assert.ok(fs.existsSync(path.join(root, entry.types)), entry.types);
      assert.ok(fs.existsSync(path.join(root, entry.default)), entry.default);
    }
  });
});

describe('the packed tarball', () => {
  const dest = tempDir('checkpointer-pack-');
  let tarball = '';
  let files: string[] = [];
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

  before(() => {
    // dist/ is current (pretest builds it), so --ignore-scripts: no second build by prepack.
    // Under `npm test`, npm_execpath is the npm that runs us.
    const npm = process.env.npm_execpath;
    const [cmd, pre] = npm && /\.c?js$/.test(npm) ? [process.execPath, [npm]] : ['npm', []];
    const out = execFileSync(cmd, [...pre, 'pack', '--ignore-scripts', '--json', '--pack-destination', dest],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [info] = JSON.parse(out);
    tarball = path.join(dest, info.filename);
    files = info.files.map((f: { path: string }) => f.path);
  });

  it('holds the build, the addon sources, the license and readme, and nothing from development', () => {
    for (const f of ['package.json', 'LICENSE', 'README.md', 'CMakeLists.txt', 'binding/addon.cpp',
      'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts']) {
      assert.ok(files.includes(f), `${f} is packed`);
    }
    const entries = [pkg.main, pkg.types, ...Object.values(pkg.exports['.']).flatMap((c) => Object.values(c as object))];
    for (const f of entries) assert.ok(files.includes(path.posix.normalize(f)), `${f} (package.json) is packed`);
    // Files that the install-time scripts name must ship too.
    const installScripts = ['preinstall', 'install', 'postinstall'].map((k) => pkg.scripts?.[k]).filter(Boolean);
    for (const command of installScripts) {
      for (const [, f] of (command as string).matchAll(/(?:^|[\s;&|])(?:\.\/)?((?:[\w.-]+\/)+[\w.-]+|[\w.-]+\.(?:c?js|mjs|sh))(?=$|[\s;&|])/g)) {
        assert.ok(files.includes(f), `${f}, named by an install script (${command}), is packed`);
      }
    }
    // scripts/build-hdf5.sh: what scripts/install.js runs for a source build where CMake finds no HDF5.
    const allowed = /^(dist|binding|prebuilds)\/|^(package\.json|LICENSE|README\.md|CMakeLists\.txt|scripts\/build-hdf5\.sh)$/;
    assert.deepEqual(files.filter((f) => !allowed.test(f) && !installScripts.some((c) => c.includes(f))), []);
  });

  it("ships source maps that carry their TypeScript (lib/ is not packed)", () => {
    const maps = files.filter((f) => f.startsWith('dist/') && f.endsWith('.js.map'));
    assert.ok(maps.length > 0);
    assert.ok(!files.some((f) => f.startsWith('lib/')));
    for (const f of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(root, f), 'utf8'));
      assert.equal(map.sourcesContent?.length, map.sources.length, f);
      assert.ok(map.sourcesContent.every((c: unknown) => typeof c === 'string' && c.length > 0), f);
    }
  });

  it('passes @arethetypeswrong/cli: types match the code under node10, node16 (from CJS and ESM) and bundler', () => {
    const cliDir = path.dirname(require.resolve('@arethetypeswrong/cli/package.json'));
    const cli = path.join(cliDir, JSON.parse(fs.readFileSync(path.join(cliDir, 'package.json'), 'utf8')).bin.attw);
    // --no-definitely-typed: nothing to fetch (the package has its own types), so it runs offline.
    const r = spawnSync(process.execPath, [cli, '--format', 'json', '--no-definitely-typed', tarball],
      { cwd: dest, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.ok(r.stdout.trim().startsWith('{'), `attw printed no report (exit ${r.status}): ${r.stderr}`);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.analysis.problems, []);
    assert.equal(r.status, 0, r.stderr);
  });
});

/**
 * The published entry points: `require('checkpointer')` and `import ... from 'checkpointer'` both
 * work from a project that depends on the package, and share one module instance.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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

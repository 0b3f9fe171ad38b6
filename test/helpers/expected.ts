/**
 * Checks a loaded value against the fixtures' expected.json encoding (see
 * ../shared/fixtures/mcutils/README.md): scalars, {$float}, lists, dicts, {$nd} arrays (data or
 * sha256 + samples), {$obj} pseudo-pickled objects.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { NDArray, UnregisteredObject } from '../../lib/index';

type Expected = null | boolean | number | string | Expected[] | { [k: string]: Expected };

function isTagged(e: Expected, tag: string): e is { [k: string]: Expected } {
  return e !== null && typeof e === 'object' && !Array.isArray(e) && Object.keys(e).length === 1 && tag in e;
}

function flatList(x: unknown): unknown[] {
  return Array.isArray(x) ? x.flatMap(flatList) : [x];
}

function listShape(x: unknown): number[] {
  const shape: number[] = [];
  for (let n = x; Array.isArray(n); n = n[0]) shape.push(n.length);
  return shape;
}

function scalarEqual(actual: unknown, expected: number | boolean | string | null, where: string): void {
  if (typeof expected === 'number' && typeof actual === 'bigint') {
    assert.equal(actual, BigInt(expected), where);
    return;
  }
  if (typeof expected === 'number' && typeof actual === 'number') {
    assert.ok(Object.is(actual, expected) || actual === expected, `${where}: ${actual} !== ${expected}`);
    return;
  }
  assert.equal(actual, expected, where);
}

function checkNd(actual: unknown, nd: { [k: string]: Expected }, where: string): void {
  const dtype = nd.dtype as string;
  const shape = nd.shape as number[];
  if (dtype === 'string') {
    assert.deepEqual(listShape(actual), shape, `${where}: shape`);
    assert.deepEqual(flatList(actual), nd.data, `${where}: strings`);
    return;
  }
  assert.ok(actual instanceof NDArray, `${where}: expected an NDArray, got ${Object.prototype.toString.call(actual)}`);
  assert.equal(actual.dtype, dtype, `${where}: dtype`);
  assert.deepEqual([...actual.shape], shape, `${where}: shape`);
  const flat = actual.data;
  const numeric = (v: unknown): number => Number(v);
  if (nd.data !== undefined) {
    const want = nd.data as number[];
    assert.equal(flat.length, want.length, `${where}: element count`);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Object.is(numeric(flat[i]), want[i]) || numeric(flat[i]) === want[i], `${where}[${i}]: ${flat[i]} !== ${want[i]}`);
    }
  } else {
    const bytes = Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), nd.sha256, `${where}: sha256`);
    for (const [i, v] of Object.entries(nd.sample as { [k: string]: number })) {
      assert.equal(numeric(flat[Number(i)]), v, `${where}: sample ${i}`);
    }
  }
}

export function assertMatchesExpected(actual: unknown, expected: Expected, where = 'value'): void {
  if (expected === null || typeof expected !== 'object') {
    scalarEqual(actual, expected, where);
    return;
  }
  if (isTagged(expected, '$float')) {
    const want = Number(expected.$float);
    assert.ok(typeof actual === 'number' && Object.is(actual, want), `${where}: ${String(actual)} is not ${want}`);
    return;
  }
  if (isTagged(expected, '$nd')) {
    checkNd(actual, expected.$nd as { [k: string]: Expected }, where);
    return;
  }
  if (isTagged(expected, '$obj')) {
    const obj = expected.$obj as { class: string; state: Expected };
    if (actual instanceof UnregisteredObject) {
      assert.equal(actual.className.split('.').pop(), obj.class, `${where}: class`);
      assertMatchesExpected(actual.state, obj.state, `${where}.state`);
    } else {
      assert.equal((actual as object)?.constructor?.name, obj.class, `${where}: class`);
      assertMatchesExpected((actual as { toState(): unknown }).toState(), obj.state, `${where}.state`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    if (actual instanceof NDArray) {
      // McUtils stores a list of equal-shape items as one array: an n-d array of the same values matches.
      assert.deepEqual([...actual.shape], listShape(expected), `${where}: shape`);
      assert.deepEqual(Array.from(actual.data, Number), flatList(expected), `${where}: values`);
      return;
    }
    assert.ok(Array.isArray(actual), `${where}: expected a list, got ${Object.prototype.toString.call(actual)}`);
    assert.equal(actual.length, expected.length, `${where}: length`);
    expected.forEach((e, i) => assertMatchesExpected(actual[i], e, `${where}[${i}]`));
    return;
  }
  assert.ok(actual !== null && typeof actual === 'object' && Object.getPrototypeOf(actual) === Object.prototype,
    `${where}: expected a plain object, got ${Object.prototype.toString.call(actual)}`);
  assert.deepEqual(Object.keys(actual as object).sort(), Object.keys(expected).sort(), `${where}: keys`);
  for (const k of Object.keys(expected)) assertMatchesExpected((actual as Record<string, unknown>)[k], expected[k]!, `${where}.${k}`);
}

/**
 * Key paths into nested containers (plain objects and Maps), shared by the in-memory backends:
 * `['params', 'alpha']` is `root.params.alpha`.
 */
import { CheckpointerKeyError } from '../errors';

export type Container = Record<string, unknown> | Map<string, unknown>;

export function isContainer(x: unknown): x is Container {
  if (x instanceof Map) return true;
  if (x === null || typeof x !== 'object' || Array.isArray(x) || ArrayBuffer.isView(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

export function containerGet(c: Container, k: string): unknown {
  return c instanceof Map ? c.get(k) : Object.prototype.hasOwnProperty.call(c, k) ? c[k] : undefined;
}

export function containerHas(c: Container, k: string): boolean {
  return c instanceof Map ? c.has(k) : Object.prototype.hasOwnProperty.call(c, k);
}

export function containerSet(c: Container, k: string, v: unknown): void {
  if (c instanceof Map) c.set(k, v);
  else Object.defineProperty(c, k, { value: v, enumerable: true, writable: true, configurable: true });
}

export function containerDelete(c: Container, k: string): boolean {
  if (c instanceof Map) return c.delete(k);
  if (!Object.prototype.hasOwnProperty.call(c, k)) return false;
  delete c[k];
  return true;
}

export function containerKeys(c: Container): string[] {
  return c instanceof Map ? [...c.keys()] : Object.keys(c);
}

/** The container that holds the path's last name, or undefined when the path does not lead to one. */
export function parentOf(root: Container, path: readonly string[]): Container | undefined {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (!isContainer(node)) return undefined;
    node = containerGet(node, path[i]!);
  }
  return isContainer(node) ? node : undefined;
}

export function pathHas(root: Container, path: readonly string[]): boolean {
  const parent = parentOf(root, path);
  return parent !== undefined && containerHas(parent, path[path.length - 1]!);
}

export function pathGet(root: Container, path: readonly string[], file?: string): unknown {
  const parent = parentOf(root, path);
  const last = path[path.length - 1]!;
  if (parent === undefined || !containerHas(parent, last)) {
    throw CheckpointerKeyError.missing(path, file);
  }
  return containerGet(parent, last);
}

/** Sets a path, creating intermediate dicts (`makeDict`) where names are missing. */
export function pathSet(root: Container, path: readonly string[], value: unknown, makeDict: () => Container, file?: string): void {
  let node: Container = root;
  for (let i = 0; i < path.length - 1; i++) {
    const name = path[i]!;
    let next = containerGet(node, name);
    if (next === undefined) {
      next = makeDict();
      containerSet(node, name, next);
    } else if (!isContainer(next)) {
      throw new CheckpointerKeyError(
        `key ${JSON.stringify(path)}: ${JSON.stringify(path.slice(0, i + 1))} holds a value that is not a dict`, path, file,
      );
    }
    node = next as Container;
  }
  containerSet(node, path[path.length - 1]!, value);
}

export function pathDelete(root: Container, path: readonly string[]): boolean {
  const parent = parentOf(root, path);
  return parent !== undefined && containerDelete(parent, path[path.length - 1]!);
}

/**
 * Registered classes: how class instances become storable. McUtils "pseudo-pickles" an object as
 * its class reference plus the value its `to_state` returns; we do the same with `toState()` and
 * `static fromState(state)`. Python stores the class as `module.qualname` (e.g.
 * `__main__.DataHolderClass`); a class registered under either the full name or the bare qualname
 * matches it.
 */

export interface StatefulInstance {
  toState(): unknown;
}

export interface RegisteredClass<T extends StatefulInstance = StatefulInstance> {
  new (...args: never[]): T;
  fromState(state: never): T;
}

const byName = new Map<string, RegisteredClass>();
const byClass = new Map<RegisteredClass, string>();

/** Python's default module for classes defined in a script, used when a name has no module part. */
export const DEFAULT_PY_MODULE = '__main__';

export function registerClass(name: string, cls: RegisteredClass): void {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('registerClass: name must be a non-empty string');
  if (typeof cls !== 'function' || typeof cls.fromState !== 'function' || typeof cls.prototype?.toState !== 'function') {
    throw new TypeError(`registerClass(${name}): the class needs an instance method toState() and a static fromState(state)`);
  }
  const previous = byName.get(name);
  if (previous) byClass.delete(previous);
  byName.set(name, cls);
  byClass.set(cls, name);
}

export function unregisterClass(name: string): void {
  const cls = byName.get(name);
  if (cls) byClass.delete(cls);
  byName.delete(name);
}

/** The registered name of an instance's class (walking up its prototype chain), or undefined. */
export function registeredNameOf(value: object): string | undefined {
  for (let proto = Object.getPrototypeOf(value); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = byClass.get(proto.constructor as RegisteredClass);
    if (name !== undefined) return name;
  }
  return undefined;
}

/** Finds the class for a stored name: exact match first, then the bare qualname of `module.qualname`. */
export function lookupClass(storedName: string): RegisteredClass | undefined {
  const exact = byName.get(storedName);
  if (exact) return exact;
  const dot = storedName.lastIndexOf('.');
  if (dot >= 0) {
    const bare = byName.get(storedName.slice(dot + 1));
    if (bare) return bare;
  }
  for (const [name, cls] of byName) {
    if (name.endsWith('.' + storedName)) return cls;
  }
  return undefined;
}

/** Splits a registered name into Python's (module, qualname); bare names live in `__main__`. */
export function pythonClassPath(name: string): { module: string; qualname: string } {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? { module: DEFAULT_PY_MODULE, qualname: name } : { module: name.slice(0, dot), qualname: name.slice(dot + 1) };
}

/**
 * A stored object whose class is not registered: it keeps the class name and state so nothing is
 * lost, and it is written back as the same pseudo-pickled object.
 */
export class UnregisteredObject {
  constructor(readonly className: string, readonly state: unknown) {}
}

/** Rebuilds a stored object: the registered class's `fromState`, else an UnregisteredObject. */
export function reviveObject(className: string, state: unknown): unknown {
  const cls = lookupClass(className);
  return cls ? cls.fromState(state as never) : new UnregisteredObject(className, state);
}

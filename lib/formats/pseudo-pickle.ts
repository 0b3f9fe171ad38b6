/**
 * McUtils' pseudo-pickling of objects: an object is stored as a dict
 *   { pseudopickle_protocol: 1, class: { pseudopickle_protocol: 1, pickle_data: <base64 pickle of the class> }, state: <to_state()> }
 * where the class pickle is a protocol-4 reference to `module.qualname` (pickle's STACK_GLOBAL), so a
 * Python program that defines the class loads our objects and we load theirs. Only class
 * references are ever unpickled here — no other pickle opcodes are accepted.
 */
import { pythonClassPath } from '../values/registry';

export const PSEUDOPICKLE_PROTOCOL = 1;

/** Pickle (protocol 4) of a reference to the class `module.qualname`. */
export function pickleClassRef(module: string, qualname: string): Buffer {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256) return Buffer.concat([Buffer.from([0x8c, b.length]), b, Buffer.from([0x94])]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from([0x58]), len, b, Buffer.from([0x94])]);
  };
  const body = Buffer.concat([str(module), str(qualname), Buffer.from([0x93, 0x94, 0x2e])]);
  const frame = Buffer.alloc(11);
  frame[0] = 0x80; // PROTO
  frame[1] = 4;
  frame[2] = 0x95; // FRAME
  frame.writeBigUInt64LE(BigInt(body.length), 3);
  return Buffer.concat([frame, body]);
}

/** The `module.qualname` a class-reference pickle names; throws on any other pickle. */
export function unpickleClassRef(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings: string[] = [];
  let pos = 0;
  let result: string | undefined;
  const need = (n: number): void => {
    if (pos + n > b.length) throw new Error('truncated class pickle');
  };
  while (pos < b.length) {
    const op = b[pos++]!;
    switch (op) {
      case 0x80: need(1); pos += 1; break; // PROTO
      case 0x95: need(8); pos += 8; break; // FRAME
      case 0x94: break; // MEMOIZE
      case 0x8c: { need(1); const n = b[pos++]!; need(n); strings.push(b.toString('utf8', pos, pos + n)); pos += n; break; }
      case 0x58: { need(4); const n = b.readUInt32LE(pos); pos += 4; need(n); strings.push(b.toString('utf8', pos, pos + n)); pos += n; break; }
      case 0x93: { // STACK_GLOBAL
        const name = strings.pop();
        const mod = strings.pop();
        if (name === undefined || mod === undefined) throw new Error('malformed class pickle');
        result = `${mod}.${name}`;
        break;
      }
      case 0x63: { // GLOBAL: "c<module>\n<name>\n" (protocols 0-3)
        const nl1 = b.indexOf(0x0a, pos);
        const nl2 = nl1 < 0 ? -1 : b.indexOf(0x0a, nl1 + 1);
        if (nl2 < 0) throw new Error('malformed class pickle');
        result = `${b.toString('utf8', pos, nl1)}.${b.toString('utf8', nl1 + 1, nl2)}`;
        pos = nl2 + 1;
        break;
      }
      case 0x71: need(1); pos += 1; break; // BINPUT
      case 0x72: need(4); pos += 4; break; // LONG_BINPUT
      case 0x2e: // STOP
        if (result === undefined) throw new Error('class pickle names no class');
        return result;
      default:
        throw new Error(`class pickle has unsupported opcode 0x${op.toString(16)}`);
    }
  }
  throw new Error('class pickle has no STOP');
}

/** The class-reference pickle for a registered name, base64-encoded as McUtils stores it. */
export function classPickleBase64(className: string): string {
  const { module, qualname } = pythonClassPath(className);
  return pickleClassRef(module, qualname).toString('base64');
}

/** The `module.qualname` from McUtils' base64 `pickle_data`. */
export function classNameFromPickleBase64(data: string | Uint8Array): string {
  const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  return unpickleClassRef(Buffer.from(text, 'base64'));
}

/** Bare qualname for matching: `__main__.DataHolderClass` is stored; users may register either. */
export function displayClassName(storedName: string): string {
  return storedName.startsWith('__main__.') ? storedName.slice('__main__.'.length) : storedName;
}

type JsonLike = null | boolean | number | bigint | string | JsonLike[] | { [k: string]: JsonLike };

/** The pseudo-pickle dict for JSON: plain nested objects. */
export function encodePseudoPickleJson<T extends JsonLike>(className: string, state: T): { [k: string]: JsonLike } {
  return {
    pseudopickle_protocol: PSEUDOPICKLE_PROTOCOL,
    class: { pseudopickle_protocol: PSEUDOPICKLE_PROTOCOL, pickle_data: classPickleBase64(className) },
    state,
  };
}

/** Recognises a pseudo-pickle dict read from JSON; undefined for an ordinary dict. */
export function decodePseudoPickleJson(node: { [k: string]: unknown }): { className: string; state: unknown } | undefined {
  const cls = node.class as { [k: string]: unknown } | undefined;
  if (node.pseudopickle_protocol === undefined || cls === null || typeof cls !== 'object' || typeof cls.pickle_data !== 'string') return undefined;
  try {
    return { className: displayClassName(classNameFromPickleBase64(cls.pickle_data)), state: node.state };
  } catch {
    return undefined;
  }
}

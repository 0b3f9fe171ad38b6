/**
 * JSONCheckpointer: the checkpoint is one JSON document, read on the first open and written
 * (atomically, once) on the last close if anything changed — McUtils rewrites it on every exit.
 *
 * Files are what Python's `json` reads and writes: arrays become nested lists (McUtils does
 * `tolist()`), NaN/Infinity are bare tokens, integers keep full precision.
 */
import { writeFileSync } from 'node:fs';
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerError } from '../errors';
import { fileStampSync, readFileIfExists, readFileIfExistsSync, writeFileAtomic, writeFileAtomicSync } from '../io/atomic';
import { JsonNode, parseJson, stringifyJson } from '../formats/json-text';
import { decodeJsonValue, encodeJsonValue } from '../formats/json-values';
import { pathDelete, pathGet, pathHas, pathSet } from '../values/tree';
import { describeKey } from '../values/model';

export interface JSONCheckpointerOptions extends CheckpointerOptions {
  /** fsync before the atomic rename (default true). */
  durable?: boolean;
}

/** The open document: top-level keys in file order, and whether it must be written on close. */
export interface JSONDocument {
  root: Map<string, JsonNode>;
  dirty: boolean;
  /** The file's version when it was read (fileStampSync), to notice another writer's commit. */
  stamp: string;
}

export class JSONCheckpointer extends Checkpointer<JSONDocument> {
  static override readonly defaultExtension: string = '.json';
  readonly durable: boolean;

  constructor(file: string, opts: JSONCheckpointerOptions = {}) {
    super(file, opts);
    this.durable = opts.durable ?? true;
  }

  get #file(): string {
    return this.checkpointFile as string;
  }

  #parse(bytes: Buffer | null, stamp: string): JSONDocument {
    // A missing or empty file is an empty checkpoint, as in McUtils (an empty file holds nothing to lose).
    if (bytes === null || bytes.length === 0) return { root: new Map(), dirty: false, stamp };
    let node: JsonNode;
    try {
      node = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (err) {
      throw new CheckpointerError(`${this.#file} is not a readable JSON checkpoint: ${(err as Error).message}`, {
        code: 'ERR_CHECKPOINT_CORRUPT', file: this.#file, cause: err,
      });
    }
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      throw new CheckpointerError(`${this.#file} is not a JSON checkpoint: its top level is not an object`, {
        code: 'ERR_CHECKPOINT_CORRUPT', file: this.#file,
      });
    }
    return { root: new Map(Object.entries(node)), dirty: false, stamp };
  }

  #text(doc: JSONDocument): string {
    const top: { [k: string]: JsonNode } = {};
    for (const [k, v] of doc.root) Object.defineProperty(top, k, { value: v, enumerable: true, writable: true, configurable: true });
    return stringifyJson(top);
  }

  // The stamp is taken before the read: a commit in between then looks like a change (a harmless reload), never the reverse.
  override async openCheckpointFile(): Promise<JSONDocument> {
    const stamp = fileStampSync(this.#file);
    return this.#parse(await readFileIfExists(this.#file), stamp);
  }

  openCheckpointFileSync(): JSONDocument {
    const stamp = fileStampSync(this.#file);
    return this.#parse(readFileIfExistsSync(this.#file), stamp);
  }

  override fileChangedSince(doc: JSONDocument): boolean {
    return fileStampSync(this.#file) !== doc.stamp;
  }

  override async closeCheckpointFile(doc: JSONDocument): Promise<void> {
    if (!doc.dirty) return;
    const text = this.#text(doc);
    await writeFileAtomic(this.#file, async (fh) => {
      await fh.writeFile(text, 'utf8');
    }, { durable: this.durable });
    doc.dirty = false;
  }

  closeCheckpointFileSync(doc: JSONDocument): void {
    if (!doc.dirty) return;
    const text = this.#text(doc);
    writeFileAtomicSync(this.#file, (fd) => {
      writeFileSync(fd, text, 'utf8');
    }, { durable: this.durable });
    doc.dirty = false;
  }

  #doc(): JSONDocument {
    return this.stream as JSONDocument;
  }

  saveParameterSync(key: string[], value: unknown): void {
    const node = encodeJsonValue(value);
    const doc = this.#doc();
    pathSet(doc.root, key, node, () => ({}), this.#file);
    doc.dirty = true;
  }

  loadParameterSync(key: string[]): unknown {
    const node = pathGet(this.#doc().root, key, this.#file) as JsonNode;
    try {
      return decodeJsonValue(node);
    } catch (err) {
      if (err instanceof CheckpointerError && err.file === undefined) {
        throw new CheckpointerError(`${this.#file}: key ${describeKey(key.length === 1 ? key[0] : key)}: ${err.message}`, { code: err.code, file: this.#file, cause: err });
      }
      throw err;
    }
  }

  hasParameterSync(key: string[]): boolean {
    return pathHas(this.#doc().root, key);
  }

  deleteParameterSync(key: string[]): boolean {
    const doc = this.#doc();
    const removed = pathDelete(doc.root, key);
    if (removed) doc.dirty = true;
    return removed;
  }

  listKeysSync(): string[] {
    return [...this.#doc().root.keys()];
  }
}

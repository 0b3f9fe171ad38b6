/**
 * DictCheckpointer: checkpoints into a caller's plain object or Map, in memory. Values are stored
 * as given (McUtils' DictCheckpointer does the same), so the caller's object is the checkpoint.
 */
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { Container, containerKeys, isContainer, pathDelete, pathGet, pathHas, pathSet } from '../values/tree';

export class DictCheckpointer extends Checkpointer<Container> {
  static override readonly defaultExtension: string = '';
  readonly data: Container;

  constructor(data: Record<string, unknown> | Map<string, unknown> = {}, opts: CheckpointerOptions = {}) {
    super(null, opts);
    if (!isContainer(data)) throw new TypeError('DictCheckpointer wraps a plain object or a Map');
    this.data = data;
  }

  openCheckpointFileSync(): Container {
    return this.data;
  }

  closeCheckpointFileSync(): void {}

  saveParameterSync(key: string[], value: unknown): void {
    pathSet(this.data, key, value, () => (this.data instanceof Map ? new Map() : {}));
  }

  loadParameterSync(key: string[]): unknown {
    return pathGet(this.data, key);
  }

  hasParameterSync(key: string[]): boolean {
    return pathHas(this.data, key);
  }

  deleteParameterSync(key: string[]): boolean {
    return pathDelete(this.data, key);
  }

  listKeysSync(): string[] {
    return containerKeys(this.data);
  }

  override toString(): string {
    return `DictCheckpointer(${containerKeys(this.data).length} keys)`;
  }
}

/**
 * NullCheckpointer: accepts and discards every write; every read is a missing key. It lets code
 * that always checkpoints run with checkpointing turned off (`buildCanonical(null)`).
 */
import { Checkpointer, CheckpointerOptions } from '../checkpointer';
import { CheckpointerKeyError } from '../errors';

export class NullCheckpointer extends Checkpointer<null> {
  static override readonly defaultExtension: string = '';

  constructor(file: string | null = null, opts: CheckpointerOptions = {}) {
    super(file, opts);
  }

  openCheckpointFileSync(): null {
    return null;
  }

  closeCheckpointFileSync(): void {}

  saveParameterSync(): void {}

  loadParameterSync(key: string[]): never {
    throw CheckpointerKeyError.missing(key, undefined, `: ${this} keeps nothing`);
  }

  hasParameterSync(): boolean {
    return false;
  }

  deleteParameterSync(): boolean {
    return false;
  }

  listKeysSync(): string[] {
    return [];
  }
}

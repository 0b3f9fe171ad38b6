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
    throw new CheckpointerKeyError(
      `key ${JSON.stringify(key.length === 1 ? key[0] : key)} is not stored: ${this} keeps nothing`, key.length === 1 ? key[0]! : key,
    );
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

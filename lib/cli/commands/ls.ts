/** `checkpointer ls FILE [KEY]`: the tree of keys, one line each, like `h5ls -r`; `--json` for scripts. */
import { CliError, EXIT } from '../errors';
import { formatBytes, shapeText } from '../format';
import { openInput, parseKey } from '../open';
import { FieldInfo, findNode, inspectCheckpoint, keyText, Node } from '../tree';

export const LS_HELP = `Usage: checkpointer ls FILE [KEY] [--json]

Lists the keys of a checkpoint (.h5/.hdf5, .npz, .npy, .json) recursively, one per line:
kind, dtype, shape, bytes, bytes on disk (npz and npy members; '-' where the format
does not say), chunks and compression. KEY lists the subtree under one key
(a/b/c, or a JSON array of names: '["a", "b/c"]').

Options:
  --json      the tree as JSON: {file, format, size, keys: [...]} (nested "children")
  -h, --help  this help`;

function fieldsText(fields: readonly FieldInfo[]): string {
  return `{${fields.map((f) => `${f.name}: ${f.fields ? fieldsText(f.fields) : f.dtype}${f.shape.length ? shapeText(f.shape) : ''}`).join(', ')}}`;
}

function dtypeColumn(n: Node): string {
  if (n.fields) return fieldsText(n.fields);
  if (n.kind === 'enum' && n.members) return `enum(${n.dtype}) {${Object.entries(n.members).map(([k, v]) => `${k}=${v}`).join(', ')}}`;
  if (n.className) return n.className;
  return n.dtype ?? '';
}

function rows(nodes: readonly Node[], out: string[][]): void {
  for (const n of nodes) {
    const key = `/${keyText(n.path)}${n.kind === 'group' ? '/' : ''}`;
    if (n.error) {
      out.push([key, n.kind === 'unknown' ? 'error' : n.kind, '', '', '', '', '', '', `${n.error.code}: ${n.error.message}`]);
      continue;
    }
    const shape = n.kind === 'group' ? `${n.children?.length ?? 0} key${n.children?.length === 1 ? '' : 's'}` : n.kind === 'list' ? `${n.shape?.[0]} items` : n.shape ? shapeText(n.shape) : '';
    out.push([
      key, n.kind, dtypeColumn(n), shape,
      n.nbytes === undefined ? '' : formatBytes(n.nbytes),
      n.kind === 'group' && n.stored === undefined ? '' : formatBytes(n.stored),
      n.chunks ? shapeText(n.chunks) : '',
      n.compression ?? '',
      n.value !== undefined ? `= ${n.value}` : '',
    ]);
    if (n.kind === 'group' && n.children) rows(n.children, out);
  }
}

function table(body: string[][]): string {
  const header = ['KEY', 'KIND', 'DTYPE', 'SHAPE', 'SIZE', 'ON DISK', 'CHUNKS', 'FILTERS', 'VALUE'];
  const all = [header, ...body];
  // Columns empty in every row are left out.
  const used = header.map((_, c) => body.some((r) => r[c] !== ''));
  used[0] = used[1] = true;
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  return all.map((r) => r.map((cell, c) => (used[c] ? cell.padEnd(widths[c]!) : null)).filter((x) => x !== null).join('  ').trimEnd()).join('\n');
}

export function runLs(file: string, key: string | undefined, json: boolean, write: (s: string) => void): number {
  const chk = openInput(file);
  const inspection = inspectCheckpoint(chk, file);
  let nodes = inspection.nodes;
  if (key !== undefined) {
    const path = parseKey(key);
    const node = findNode(nodes, path);
    if (!node) throw new CliError(`key ${JSON.stringify(keyText(path))} is not in the checkpoint`, 'ERR_KEY', EXIT.NOT_FOUND, file);
    nodes = [node];
  }
  if (json) {
    write(`${JSON.stringify({ file, format: inspection.format, size: inspection.size, keys: nodes }, null, 2)}\n`);
    return EXIT.OK;
  }
  const body: string[][] = [];
  rows(nodes, body);
  write(`${file}: ${inspection.format}, ${formatBytes(inspection.size)}, ${inspection.nodes.length} top-level key${inspection.nodes.length === 1 ? '' : 's'}\n`);
  if (body.length) write(`${table(body)}\n`);
  return EXIT.OK;
}

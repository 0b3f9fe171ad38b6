"""What h5py and numpy read from each corpus file, key by key, in the canonical form that
test/helpers/corpus.ts makes of what checkpointer reads (the two must agree exactly):

  number            -> JSON number; NaN/inf/-inf -> "nan"/"inf"/"-inf"; -0.0 -> "-0"
  integer           -> decimal string (64-bit ints do not fit a JSON number)
  bool              -> true/false
  complex           -> [re, im]
  text              -> string; bytes that are valid UTF-8 -> string, other bytes -> {"$bytes": hex}
  array (numeric, strings, records, vlen) -> {"shape": [...], "v": nested list of elements}
  record            -> {"$rec": {field: element}}
  object reference  -> the referenced object's path; a null reference -> null
  None / h5py.Empty -> null

Usage: corpus_dump.py FILE... ; prints one JSON line per file:
  {"file": ..., "keys": {"g/ds": canonical | {"$error": "..."}}, "error": null | "..."}
HDF5 keys are the paths of datasets reached from the root following hard, soft and external links
(committed datatypes and dangling links are not keys; a dangling link is reported under "dangling");
"top" lists the root's members that are keys (groups and datasets); "attrs" gives each object's
attributes by its path ("" for the root).
"""
import json
import math
import sys

import h5py
import numpy as np


def canon_float(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 and math.copysign(1.0, x) < 0:
        return "-0"
    return x


def canon_bytes(b):
    b = bytes(b)
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"$bytes": b.hex()}


def canon_elem(x, f):
    """One element (numpy scalar, np.void record, bytes, str, reference, sub-array)."""
    if isinstance(x, h5py.Reference) or isinstance(x, h5py.RegionReference):
        if not x:
            return None
        try:
            return f[x].name
        except Exception as e:  # noqa: BLE001 - a dangling reference
            return {"$error": "reference: %s" % e}
    if isinstance(x, np.void):
        if x.dtype.names:
            return {"$rec": {n: canon_value(x[n], f, top=False) for n in x.dtype.names}}
        return {"$bytes": bytes(x.tobytes()).hex()}
    if isinstance(x, (bytes, np.bytes_)):
        return canon_bytes(x)
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (np.complexfloating, complex)):
        return [canon_float(x.real), canon_float(x.imag)]
    if isinstance(x, (np.floating, float)):
        return canon_float(x)
    if isinstance(x, (np.integer, int)):
        return str(int(x))
    if isinstance(x, np.ndarray):
        return canon_value(x, f, top=False)
    if x is None:
        return None
    return {"$error": "python value of type %s" % type(x).__name__}


def nested(a, f):
    if a.ndim == 0:
        return canon_elem(a[()], f)
    return [nested(a[i], f) if a.ndim > 1 else canon_elem(a[i], f) for i in range(a.shape[0])]


def canon_value(x, f, top=True):
    if isinstance(x, h5py.Empty):
        return None
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "O" and x.ndim == 0:
            return canon_elem(x[()], f)
        if x.ndim == 0 and top:
            return canon_elem(x[()], f)
        return {"shape": list(x.shape), "v": nested(x, f)}
    return canon_elem(x, f)


def dump_attrs(obj, f):
    out = {}
    for name in obj.attrs.keys():
        try:
            out[name] = canon_value(obj.attrs[name], f)
        except Exception as e:  # noqa: BLE001 - h5py cannot read this attribute's type
            out[name] = {"$error": "%s: %s" % (type(e).__name__, e)}
    return out


def dump_h5(path):
    keys, dangling, attrs = {}, [], {}
    with h5py.File(path, "r") as f:
        seen = set()
        attrs[""] = dump_attrs(f, f)

        def visit(group, prefix):
            for name in group.keys():
                key = prefix + name
                link = group.get(name, getlink=True)
                try:
                    obj = group[name]
                except Exception as e:  # noqa: BLE001 - dangling soft/external link, damaged object
                    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                        dangling.append(key)
                    else:
                        keys[key] = {"$error": "%s: %s" % (type(e).__name__, e)}
                    continue
                if isinstance(obj, h5py.Datatype):
                    continue
                try:
                    attrs[key] = dump_attrs(obj, f)
                except Exception as e:  # noqa: BLE001
                    attrs[key] = {"$error": "%s: %s" % (type(e).__name__, e)}
                if isinstance(obj, h5py.Group):
                    ident = (obj.file.filename, obj.id.fileno, h5py.h5o.get_info(obj.id).addr)
                    if ident in seen:
                        continue  # a link cycle: h5py would loop; checkpointer reports it
                    seen.add(ident)
                    visit(obj, key + "/")
                    seen.discard(ident)
                    continue
                try:
                    keys[key] = canon_value(obj[()], f)
                except Exception as e:  # noqa: BLE001 - h5py cannot read this type
                    keys[key] = {"$error": "%s: %s" % (type(e).__name__, e)}

        visit(f, "")
        top = []
        for name in f.keys():
            try:
                if not isinstance(f[name], h5py.Datatype):
                    top.append(name)
            except Exception:  # noqa: BLE001 - dangling: not a key
                pass
    return {"keys": keys, "dangling": dangling, "top": top, "attrs": attrs}


def dump_np(path):
    keys = {}
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                try:
                    keys[name] = canon_value(z[name], None)
                except Exception as e:  # noqa: BLE001
                    keys[name] = {"$error": "%s: %s" % (type(e).__name__, e)}
    else:
        try:
            keys[""] = canon_value(np.load(path, allow_pickle=False), None)
        except Exception as e:  # noqa: BLE001
            keys[""] = {"$error": "%s: %s" % (type(e).__name__, e)}
    return {"keys": keys, "dangling": [], "top": list(keys)}


def main():
    for path in sys.argv[1:]:
        out = {"file": path, "error": None, "keys": {}, "dangling": [], "top": []}
        try:
            if path.endswith((".npy", ".npz")):
                out.update(dump_np(path))
            else:
                out.update(dump_h5(path))
        except Exception as e:  # noqa: BLE001 - not a file the peer opens
            out["error"] = "%s: %s" % (type(e).__name__, e)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

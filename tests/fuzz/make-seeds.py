#!/usr/bin/env python3
"""Writes the generated seed inputs of tests/fuzz/corpus/ (standard library
only; the files are committed, so this is needed only to change them):

  fuzz_idx/       tiny IDX files, plain and gzipped (1-D labels, 2-D, 3-D
                  images, 4-D, two gzip members)
  fuzz_dataset/   image + label pairs: 2 bytes little-endian, the length of
                  the image file, then it, then the label file
  fuzz_checkpoint/ small checkpoints in the format of include/dpt/checkpoint.h
                  (safetensors with CRC32s)
  fuzz_npy/       small .npy files as np.save writes them (every dtype,
                  versions 1.0, 2.0, 3.0, a scalar, an empty array)
  fuzz_csv/       CSV texts behind an options byte (header, label column)

The seeds of fuzz_config (configs/*.ini and a few handmade files),
fuzz_overrides and fuzz_layers are plain text, kept as they are.

    python3 tests/fuzz/make-seeds.py
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data):
    folder = os.path.join(HERE, "corpus", harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx(dims, data=None):
    count = 1
    for d in dims:
        count *= d
    if data is None:
        data = bytes((i * 37 + 11) % 256 for i in range(count))
    assert len(data) == count
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx_seeds():
    labels = idx([5], bytes([3, 1, 4, 1, 5]))
    images = idx([5, 3, 3])
    put("fuzz_idx", "labels-5.idx", labels)
    put("fuzz_idx", "labels-5.idx.gz", gz(labels))
    put("fuzz_idx", "images-5x3x3.idx", images)
    put("fuzz_idx", "images-5x3x3.idx.gz", gz(images))
    put("fuzz_idx", "features-4x6.idx", idx([4, 6]))
    put("fuzz_idx", "images-2x2x3x3.idx.gz", gz(idx([2, 2, 3, 3])))
    put("fuzz_idx", "two-members.idx.gz", gz(labels[:7]) + gz(labels[7:]))


def pair(images, labels):
    return struct.pack("<H", len(images)) + images + labels


def dataset_seeds():
    labels = idx([5], bytes([3, 1, 4, 1, 9]))
    put("fuzz_dataset", "plain-5x3x3", pair(idx([5, 3, 3]), labels))
    put("fuzz_dataset", "gz-5x3x3", pair(gz(idx([5, 3, 3])), gz(labels)))
    put("fuzz_dataset", "plain-5x2x2x2", pair(idx([5, 2, 2, 2]), labels))
    put("fuzz_dataset", "gz-5x7", pair(gz(idx([5, 7])), labels))


def checkpoint(tensors, meta):
    """tensors: list of (name, dtype, shape, raw bytes) in file order."""
    header = {"__metadata__": {"crc32.header": "00000000"}}
    for key, value in meta.items():
        header["__metadata__"][key] = value
    offset = 0
    for name, dtype, shape, raw in tensors:
        header["__metadata__"]["crc32." + name] = "%08x" % zlib.crc32(raw)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    key = b'"crc32.header":"'
    i = text.index(key) + len(key)
    text = text[:i] + (b"%08x" % zlib.crc32(text)) + text[i + 8:]
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def checkpoint_seeds():
    params = struct.pack("<6f", 0.5, -1.25, 3.0, 0.0, 1e-3, -7.5)
    moments = struct.pack("<6d", 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    put("fuzz_checkpoint", "params-moments.safetensors", checkpoint(
        [("moments", "F64", [2, 3], moments), ("params", "F32", [6], params),
         ("rng", "U64", [2], struct.pack("<2Q", 1, 99)), ("mask", "U8", [3], b"\x01\x00\x01")],
        {"step": "1200", "epoch": "3", "config.hash": "0123456789abcdef"}))
    put("fuzz_checkpoint", "scalar-and-empty.safetensors", checkpoint(
        [("step", "I64", [], struct.pack("<q", -12)), ("empty", "F32", [0, 4], b""),
         ("flags", "I8", [2], b"\xff\x01"), ("counts", "I32", [1], struct.pack("<i", 7)),
         ("sizes", "U32", [2], struct.pack("<2I", 1, 2))],
        {"note": "caf\u00e9 \\\" \u2713"}))
    put("fuzz_checkpoint", "metadata-only.safetensors", checkpoint([], {"step": "0"}))


def npy(descr, shape, data, version=1):
    """A .npy file as NumPy 1.24 writes it (dict, growth room, 64-byte alignment)."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    text = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    if shape:
        text += " " * (21 - len(str(shape[0])))
    prefix = 10 if version == 1 else 12
    pad = 64 - (prefix + len(text) + 1) % 64
    text = (text + " " * pad + "\n").encode()
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


def npy_seeds():
    put("fuzz_npy", "f4-2x3.npy", npy("<f4", [2, 3], struct.pack("<6f", 0, 0.5, 1, -2, 3.25, 1e-3)))
    put("fuzz_npy", "u1-2x2x2.npy", npy("|u1", [2, 2, 2], bytes(range(8))))
    put("fuzz_npy", "i8-4.npy", npy("<i8", [4], struct.pack("<4q", 3, 1, 4, -1)))
    put("fuzz_npy", "f8-v2.npy", npy("<f8", [2], struct.pack("<2d", 1.5, -2.5), version=2))
    put("fuzz_npy", "i4-v3.npy", npy("<i4", [1, 2], struct.pack("<2i", 7, -7), version=3))
    put("fuzz_npy", "u2-scalar.npy", npy("<u2", [], struct.pack("<H", 513)))
    put("fuzz_npy", "f4-empty.npy", npy("<f4", [0, 5], b""))
    for descr, fmt in [("|i1", "<2b"), ("<i2", "<2h"), ("<u4", "<2I"), ("<u8", "<2Q")]:
        put("fuzz_npy", "%s-2.npy" % descr[1:], npy(descr, [2], struct.pack(fmt, 1, 2)))


def csv_seeds():
    put("fuzz_csv", "header-label-first", b"\x00label,a,b\n3,0.5,-1\n1,2e-3,4\n")
    put("fuzz_csv", "no-header-crlf", b"\x00" + b"3,0.5,-1\r\n\r\n1,2e-3,4\r\n")
    put("fuzz_csv", "label-last", b"\x01x,y,class\n0.25,1,2\n0.75,0,0\n")
    put("fuzz_csv", "label-by-name-quoted", b"\x02\"label\",\"f \"\"1\"\"\"\n\"2\", \" 1.5 \"\n")
    put("fuzz_csv", "no-label-header-yes", b"\x07" + b"1,2,3\n4,5,6\n")


if __name__ == "__main__":
    idx_seeds()
    dataset_seeds()
    checkpoint_seeds()
    npy_seeds()
    csv_seeds()

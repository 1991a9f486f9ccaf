"""Minimal reader and writer for the safetensors file format, using only numpy.

The format (https://github.com/huggingface/safetensors):

    [8 bytes]  N, the length of the header, as an unsigned 64-bit little-endian integer
    [N bytes]  the header: a UTF-8 JSON object
                 { "<tensor name>": {"dtype": "F64", "shape": [2, 3], "data_offsets": [begin, end]},
                   ...,
                   "__metadata__": {"<key>": "<string value>", ...} }      (optional)
               padded at the end with spaces so that 8 + N is a multiple of 8
    [rest]     the raw tensor bytes, little-endian, row-major; data_offsets are relative to
               the start of this part, and the tensors follow each other without gaps

This file writes tensors in the order they are given (so the same inputs always give the same
bytes) and reads any safetensors file whose dtypes are listed in DTYPES.

Command line:  python3 safetensors_io.py FILE [--full]
prints the metadata and every tensor (shape, dtype, the first values; all values with --full).
"""

import json
import struct
import sys

import numpy as np

# safetensors dtype name -> numpy dtype (always little-endian)
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
NAMES = {dt: name for name, dt in DTYPES.items()}


def write(path, tensors, metadata=None):
    """Write `tensors` (a dict name -> numpy array, kept in its order) to `path`.

    `metadata` is an optional dict of string -> string, stored as "__metadata__".
    """
    header = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("safetensors metadata keys and values must be strings")
        header["__metadata__"] = dict(metadata)

    blobs = []
    offset = 0
    for name, array in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        array = np.asarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in NAMES:
            raise TypeError(f"tensor {name!r}: dtype {array.dtype} has no safetensors name")
        data = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[name] = {
            "dtype": NAMES[dtype],
            "shape": [int(d) for d in array.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)

    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # Pad with spaces so that the data starts at a multiple of 8 bytes.
    header_bytes += b" " * ((8 - (8 + len(header_bytes)) % 8) % 8)

    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for data in blobs:
            f.write(data)


def read(path):
    """Read a safetensors file. Returns (tensors, metadata):
    tensors is a dict name -> numpy array in file order, metadata a dict (empty if none)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if 8 + header_len > len(raw):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(raw[8 : 8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    data = raw[8 + header_len :]

    tensors = {}
    for name, info in header.items():
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dtype.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor {name!r} has inconsistent data_offsets")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
    return tensors, metadata


def _print_file(path, full):
    tensors, metadata = read(path)
    print(f"{path}")
    for key, value in metadata.items():
        if len(value) > 200 and not full:
            value = value[:200] + f"... ({len(value)} characters)"
        print(f"  metadata {key}: {value}")
    np.set_printoptions(precision=17, linewidth=120, threshold=sys.maxsize if full else 8)
    for name, array in tensors.items():
        values = array if full else array.reshape(-1)[:6]
        print(f"  {name}  {NAMES[array.dtype]} {list(array.shape)}  {values}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--full"]
    if not args:
        print(__doc__)
        sys.exit(1)
    for p in args:
        _print_file(p, "--full" in sys.argv[1:])

#!/usr/bin/env python3
"""Golden safetensors file written by PyTorch, and a reader for files ember writes.

    python3 test/golden/write_torch_safetensors.py           # writes data/torch_small_state.safetensors
    python3 test/golden/write_torch_safetensors.py --read F  # loads F into torch tensors, prints them

Writing: a tiny Conv2d -> BatchNorm2d -> Linear model, seeded, after one training-mode forward
(so the BatchNorm running statistics moved and num_batches_tracked is 1), saved with its
state_dict names, plus one tensor of each remaining dtype under "extra.*". It prints, per
tensor, a line of C++ (name, dtype, shape, sum, first elements) that test_safetensors.cpp
holds as its expected values.

The format is written by hand (the `safetensors` package is not in Debian), laid out as that
package does: header keys sorted, tensors ordered by element size (widest first) then name,
back to back, header padded with spaces to an 8-byte boundary.

Reading checks what the reference reader checks (offsets contiguous from 0, covering the data
section exactly, known dtypes, byte counts), then builds torch tensors from the bytes.
"""
import argparse
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "data", "torch_small_state.safetensors")

DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
TORCH_DTYPES = {name: dtype for dtype, name in DTYPES.items()}


def element_size(dtype):
    return torch.empty((), dtype=dtype).element_size()


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16: go through int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def serialize(tensors, metadata=None):
    names = sorted(tensors, key=lambda n: (-element_size(tensors[n].dtype), n))
    header, chunks, offset = {}, [], 0
    for name in names:
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {
            "dtype": DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def build_state():
    torch.manual_seed(0)
    model = SmallNet()
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 6, 6))  # moves running_mean/var, num_batches_tracked -> 1
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    state["extra.bf16"] = torch.tensor([1.0, -2.5, 3.140625, 1e-3, -0.0, 65280.0]).to(torch.bfloat16)
    state["extra.f16"] = torch.tensor([[1.0, -2.5, 0.333251953125], [65504.0, 6e-8, -0.0]]).to(
        torch.float16
    )
    state["extra.u8"] = torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8)
    state["extra.f64"] = torch.tensor([[0.1, -1e300], [3.0, 2.0**-1074]], dtype=torch.float64)
    state["extra.i32"] = torch.tensor([-2147483648, -1, 0, 2147483647], dtype=torch.int32)
    state["extra.bool"] = torch.tensor([True, False, True])
    state["extra.scalar"] = torch.tensor(7.25)
    state["extra.empty"] = torch.empty(0, 3)
    return state


def cpp_row(name, t):
    values = t.detach().double().flatten()
    first = ", ".join(repr(v) for v in values[:4].tolist())
    shape = ", ".join(str(s) for s in t.shape)
    return '  {"%s", "%s", {%s}, %r, {%s}},' % (
        name, DTYPES[t.dtype], shape, values.sum().item(), first)


def write():
    assert sys.byteorder == "little"
    state = build_state()
    data = serialize(state, {"format": "pt", "producer": "write_torch_safetensors.py"})
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (os.path.relpath(OUTPUT, os.path.dirname(os.path.dirname(HERE))), len(data)))
    print("// name, dtype, shape, sum, first elements")
    for name in sorted(state, key=lambda n: (-element_size(state[n].dtype), n)):
        print(cpp_row(name, state[name]))


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert 8 + n <= len(data), "header length %d beyond the file (%d bytes)" % (n, len(data))
    assert data[8:9] == b"{", "header does not start with '{'"
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    body = data[8 + n :]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in metadata.values()), "metadata values must be strings"
    print("header %d bytes (data section %s 8-byte aligned), %d tensors, data %d bytes" % (
        n, "is" if (8 + n) % 8 == 0 else "is NOT", len(header), len(body)))
    for key, value in sorted(metadata.items()):
        print("metadata %s = %s" % (key, value))
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        dtype = TORCH_DTYPES[info["dtype"]]
        begin, stop = info["data_offsets"]
        assert begin == end, "%s: starts at %d, previous tensor ended at %d" % (name, begin, end)
        numel = 1
        for s in info["shape"]:
            numel *= s
        assert stop - begin == numel * element_size(dtype), "%s: byte count" % name
        end = stop
        if numel:
            t = torch.frombuffer(bytearray(body[begin:stop]), dtype=dtype).reshape(info["shape"])
        else:
            t = torch.empty(info["shape"], dtype=dtype)
        aligned = begin % element_size(dtype) == 0
        print("%-24s %-5s %-14s sum=%r%s values=%s" % (
            name, info["dtype"], list(t.shape), t.double().sum().item(),
            "" if aligned else " (unaligned)", t.flatten()[:6].tolist()))
    assert end == len(body), "data section is %d bytes, tensors cover %d" % (len(body), end)
    print("ok: %s loads in torch %s" % (os.path.basename(path), torch.__version__))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read", metavar="PATH", help="read a safetensors file and print it")
    args = parser.parse_args()
    read(args.read) if args.read else write()

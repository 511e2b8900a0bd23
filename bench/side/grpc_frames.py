#!/usr/bin/python3
"""Writes gRPC request bodies (length-prefixed protobuf messages, encoded by hand from autodiff.proto's field numbers)
for h2load: ping.bin (an empty PingRequest), c1.bin (C1's GradientRequest, x as raw float32) and w3.bin (W3's
GradientRequest, every input as raw little-endian bytes, the same values as workloads.py's seed 0).
  /usr/bin/python3 bench/side/grpc_frames.py <folder>"""
import os
import struct
import sys

sys.path.insert(0, os.environ.get("PEER_DIR", "/work/shared/anchors/peer_service"))
import workloads as W  # noqa: E402


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number, payload):  # length-delimited field
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor(a):
    dtype = {"float32": 0, "float64": 1, "int64": 2}[a.dtype.name]
    shape = b"".join(varint(d) for d in a.shape)
    return (varint(1 << 3) + varint(dtype) if dtype else b"") + field(2, shape) + field(3, a.astype("<" + a.dtype.str[1:]).tobytes())


def gradient_request(program, inputs, wrt):
    msg = field(1, field(2, program.encode()))  # computation.program
    for name, a in inputs.items():
        msg += field(2, field(1, name.encode()) + field(2, tensor(a)))  # inputs map entry
    for name in wrt:
        msg += field(6, name.encode())
    return msg


def frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    bodies = {
        "ping.bin": b"",
        "c1.bin": gradient_request(W.C1_PROGRAM, W.c1_inputs(0), ["x"]),
        "w3.bin": gradient_request(W.W3_PROGRAM, W.w3_inputs(0), W.W3_WRT),
    }
    for name, message in bodies.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(frame(message))


if __name__ == "__main__":
    main()

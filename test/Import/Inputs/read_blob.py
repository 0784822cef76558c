#!/usr/bin/env python3
"""Prints every tensor of a PHOTONW1 weights blob (docs/artifact.md): name dtype shape values.
`read_blob(path)` returns them as {name: (dtype name, numpy array of the tensor's shape)}."""
import struct
import sys

import numpy as np

DT = {0: ("f32", np.float32), 1: ("f16", np.float16), 3: ("i32", np.int32), 4: ("i64", np.int64),
      5: ("i8", np.int8)}


def read_blob(path):
    data = open(path, "rb").read()
    assert data[:8] == b"PHOTONW1", "bad magic"
    version, count, index_bytes, data_offset = struct.unpack_from("<IIQQ", data, 8)
    assert version == 1 and data_offset % 64 == 0
    p, out = 32, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, p); p += 2
        name = data[p:p + n].decode(); p += n
        dtype, rank = struct.unpack_from("<BB", data, p); p += 2
        shape = list(struct.unpack_from("<%dq" % rank, data, p)); p += 8 * rank
        off, nbytes = struct.unpack_from("<QQ", data, p); p += 16
        assert off % 64 == 0
        dn, npt = DT[dtype]
        out[name] = (dn, np.frombuffer(data[off:off + nbytes], dtype=npt).reshape(shape))
    return out


if __name__ == "__main__":
    for name, (dn, v) in read_blob(sys.argv[1]).items():
        print(name, dn, list(v.shape), [float(x) for x in v.reshape(-1)[:16]])

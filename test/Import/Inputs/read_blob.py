#!/usr/bin/env python3
"""Prints every tensor of a PHOTONW1 weights blob (docs/artifact.md): name dtype shape values."""
import struct
import sys

import numpy as np

DT = {0: ("f32", np.float32), 1: ("f16", np.float16), 3: ("i32", np.int32), 4: ("i64", np.int64),
      5: ("i8", np.int8)}

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"PHOTONW1", "bad magic"
version, count, index_bytes, data_offset = struct.unpack_from("<IIQQ", data, 8)
assert version == 1 and data_offset % 64 == 0
p = 32
for _ in range(count):
    (n,) = struct.unpack_from("<H", data, p); p += 2
    name = data[p:p + n].decode(); p += n
    dtype, rank = struct.unpack_from("<BB", data, p); p += 2
    shape = list(struct.unpack_from("<%dq" % rank, data, p)); p += 8 * rank
    off, nbytes = struct.unpack_from("<QQ", data, p); p += 16
    assert off % 64 == 0
    dn, npt = DT[dtype]
    v = np.frombuffer(data[off:off + nbytes], dtype=npt)
    print(name, dn, shape, [float(x) for x in v[:16]])

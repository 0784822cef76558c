"""Calls the stage entry points of a photon artifact (docs/artifact.md) from numpy.

A test harness for the compiler's end-to-end tests: it needs only numpy and ctypes, no
runtime library. Buffers are numpy arrays (C-contiguous); the weights blob is mmapped.
"""
import ctypes
import json
import os

import numpy as np

_DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32, "i8": np.int8, "i64": np.int64}


def _descriptor(arr):
    """StridedMemRefType<T, rank> for a C-contiguous numpy array (kept alive by the caller)."""
    rank = arr.ndim
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
              ("offset", ctypes.c_int64)]
    if rank:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    cls = type("MemRef%d" % rank, (ctypes.Structure,), {"_fields_": fields})
    d = cls()
    ptr = arr.ctypes.data
    d.allocated = ptr
    d.aligned = ptr
    d.offset = 0
    for i in range(rank):
        d.sizes[i] = arr.shape[i]
        d.strides[i] = arr.strides[i] // arr.itemsize
    return d


class Artifact:
    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.lib = ctypes.CDLL(os.path.join(path, self.manifest["library"]))
        self.lib.photon_abi.restype = ctypes.c_char_p
        assert self.lib.photon_abi().decode() == self.manifest["abi"], "ABI mismatch"
        self.weights = np.memmap(os.path.join(path, self.manifest["weights"]["file"]),
                                 dtype=np.int8, mode="r")
        self.stages = {s["name"]: s for s in self.manifest["stages"]}

    def call(self, stage, *arrays):
        """Calls photon_<stage>(weights, *arrays); outputs are written in place."""
        s = self.stages[stage]
        args = s["args"]
        if len(arrays) != len(args) - 1:
            raise ValueError("%s takes %d arrays after the weights, got %d"
                             % (stage, len(args) - 1, len(arrays)))
        descs = [_descriptor(np.asarray(self.weights))]
        for a, spec in zip(arrays, args[1:]):
            if a.dtype != _DTYPES[spec["dtype"]] or not a.flags["C_CONTIGUOUS"]:
                raise TypeError("argument %s must be a C-contiguous %s array"
                                % (spec["name"], spec["dtype"]))
            descs.append(_descriptor(a))
        ptrs = (ctypes.c_void_p * len(descs))(*[ctypes.addressof(d) for d in descs])
        getattr(self.lib, s["symbol"])(ptrs)


def rel_err(got, want):
    """max |got - want| / max |want|: the relative error the tests bound."""
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))


def read_blob(blob):
    """name -> float32 array view of a PHOTONW1 blob (bytes-like or numpy int8 array)."""
    import struct
    buf = memoryview(np.asarray(blob).view(np.uint8))
    magic = bytes(buf[:8])
    assert magic == b"PHOTONW1", "not a PHOTONW1 blob"
    _, count, _, _ = struct.unpack_from("<IIQQ", buf, 8)
    p = 32
    out = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", buf, p)
        p += 2
        name = bytes(buf[p:p + n]).decode()
        p += n
        dtype, rank = struct.unpack_from("<BB", buf, p)
        p += 2
        shape = struct.unpack_from("<%dq" % rank, buf, p)
        p += 8 * rank
        off, nbytes = struct.unpack_from("<QQ", buf, p)
        p += 16
        if dtype == 0:
            out[name] = np.frombuffer(buf[off:off + nbytes], dtype=np.float32).reshape(shape)
    return out

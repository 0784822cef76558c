#!/usr/bin/env python3
"""Checks of photon-weightgen's blobs (test/Cuda/weightgen.test), standard library only.

  weights_blob.py compare ORIG.bin NEW.bin MIN_BYTES
      the two blobs have the same header and index; tensors that photon-weightgen keeps
      (non-f32, smaller than MIN_BYTES, or every element equal) are byte-equal; every other
      tensor has (nearly) the mean and standard deviation of the original and lies in
      mean +- sqrt(3) * deviation; padding is zero. Prints one summary line.
  weights_blob.py set-checksum MANIFEST MAKE_OUTPUT
      puts the checksum `photon-weightgen make` printed into the manifest's weights.checksum.
"""
import json
import math
import struct
import sys


def parse(blob):
    magic, version, count, index_bytes, data_offset = struct.unpack_from("<8sIIQQ", blob, 0)
    assert magic == b"PHOTONW1" and version == 1, "not a PHOTONW1 blob"
    pos, tensors = 32, []
    for _ in range(count):
        (n,) = struct.unpack_from("<H", blob, pos)
        pos += 2
        name = blob[pos:pos + n].decode()
        pos += n
        dtype, rank = struct.unpack_from("<BB", blob, pos)
        pos += 2
        dims = struct.unpack_from("<%dq" % rank, blob, pos)
        pos += 8 * rank
        offset, size = struct.unpack_from("<QQ", blob, pos)
        pos += 16
        tensors.append((name, dtype, dims, offset, size))
    return data_offset, tensors


def compare(orig_path, new_path, min_bytes):
    orig = open(orig_path, "rb").read()
    new = open(new_path, "rb").read()
    if len(orig) != len(new):
        sys.exit("sizes differ: %d vs %d" % (len(orig), len(new)))
    data_offset, tensors = parse(orig)
    if new[:data_offset] != orig[:data_offset]:
        sys.exit("header or index differ")
    kept = generated = 0
    covered = bytearray(len(new))
    covered[:data_offset] = b"\1" * data_offset
    for name, dtype, dims, offset, size in tensors:
        covered[offset:offset + size] = b"\1" * size
        a, b = orig[offset:offset + size], new[offset:offset + size]
        esize = {0: 4, 1: 2, 2: 2, 3: 4, 4: 8, 5: 1}[dtype]
        constant = size > esize and a == a[:esize] * (size // esize)
        if dtype != 0 or size < min_bytes or constant:
            if a != b:
                sys.exit("tensor %s should be kept but differs" % name)
            kept += 1
            continue
        x = struct.unpack("<%df" % (size // 4), a)
        y = struct.unpack("<%df" % (size // 4), b)
        mx, my = sum(x) / len(x), sum(y) / len(y)
        sx = math.sqrt(sum((v - mx) ** 2 for v in x) / len(x))
        sy = math.sqrt(sum((v - my) ** 2 for v in y) / len(y))
        half = sx * math.sqrt(3.0)
        # The sample mean of n uniform values deviates by about sd / sqrt(n) from the mean.
        if abs(my - mx) > 5 * sx / math.sqrt(len(x)) + 1e-7:
            sys.exit("tensor %s: mean %g, expected %g" % (name, my, mx))
        if abs(sy - sx) > 0.1 * sx:
            sys.exit("tensor %s: deviation %g, expected %g" % (name, sy, sx))
        if min(y) < mx - half * 1.0001 or max(y) > mx + half * 1.0001:
            sys.exit("tensor %s: values outside mean +- sqrt(3) sd" % name)
        if x == y:
            sys.exit("tensor %s was not regenerated" % name)
        generated += 1
    padding = bytes(new[i] for i in range(len(new)) if not covered[i])
    if padding.strip(b"\0"):
        sys.exit("padding is not zero")
    print("tensors %d: kept %d, generated %d with the original's mean and deviation; padding zero"
          % (len(tensors), kept, generated))


def set_checksum(manifest_path, make_output):
    words = open(make_output).read().split()
    checksum = next(w for w in words if w.startswith("fnv1a64:"))
    with open(manifest_path) as f:
        m = json.load(f)
    m["weights"]["checksum"] = checksum
    with open(manifest_path, "w") as f:
        json.dump(m, f, indent=2)
    print("checksum", checksum)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "set-checksum":
        set_checksum(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

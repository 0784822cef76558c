#!/usr/bin/env python3
"""Compares the memrefs two mlir-runner runs printed (printMemrefF32), standard library only.

  compare_printed.py A.txt B.txt ATOL RTOL
      every number after a `data =` in A equals the one at the same place in B within
      ATOL + RTOL * |b|; prints how many were compared; exits 1 on a difference or when the
      counts differ or nothing was printed.
"""
import re
import sys

NUM = re.compile(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")


def values(path):
    out = []
    for block in open(path).read().split("data =")[1:]:
        body = block.split("Unranked Memref")[0]
        out += [float(x) for x in NUM.findall(body)]
    return out


def main():
    a, b = values(sys.argv[1]), values(sys.argv[2])
    atol, rtol = float(sys.argv[3]), float(sys.argv[4])
    if not a or len(a) != len(b):
        sys.exit("compare_printed: %d values against %d" % (len(a), len(b)))
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        if not abs(x - y) <= atol + rtol * abs(y):  # NaN fails too
            sys.exit("compare_printed: value %d: %r vs %r" % (i, x, y))
        worst = max(worst, abs(x - y))
    print("compared %d values: equal within %g + %g |b|" % (len(a), atol, rtol))


if __name__ == "__main__":
    main()

"""Pull the device code out of photon-cuda-opt output or a host object.

  gpu_binary.py ptx   <file.mlir> <out.ptx>   PTX of each gpu.binary (format=isa): the
                                              first in out.ptx, the others in out.ptx.1, ...
  gpu_binary.py archs <file.o>                the sm_XX cubins inside the object's .nv_fatbin
"""
import re
import struct
import sys


def unescape_mlir_string(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt in '"\\':
                out.append(ord(nxt))
                i += 2
            elif nxt == "n":
                out.append(10)
                i += 2
            elif nxt == "t":
                out.append(9)
                i += 2
            else:
                out.append(int(body[i + 1 : i + 3], 16))
                i += 3
        else:
            out.extend(c.encode("utf-8"))
            i += 1
    return bytes(out)


def ptx(src, dst):
    text = open(src, encoding="utf-8").read()
    found = [unescape_mlir_string(m.group(1))
             for m in re.finditer(r'assembly = "((?:[^"\\]|\\.)*)"', text)]
    if not found:
        sys.exit("no `assembly = \"...\"` object in %s (use format=isa)" % src)
    # One PTX module per kernel; ptxas takes one module, so keep them apart by default.
    open(dst, "wb").write(found[0])
    for i, body in enumerate(found[1:], 1):
        open("%s.%d" % (dst, i), "wb").write(body)


def archs(obj):
    data = open(obj, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("%s is not a 64-bit ELF object" % obj)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def section(i):
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    found = []
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] != b".nv_fatbin":
            continue
        blob = data[off : off + size]
        magic, version, hsize, fsize = struct.unpack_from("<IHHQ", blob, 0)
        if magic != 0xBA55ED50:
            sys.exit("section .nv_fatbin does not start with a fatbin header")
        pos = hsize
        while pos < hsize + fsize:
            kind, _, ehsize, esize = struct.unpack_from("<HHIQ", blob, pos)
            arch, = struct.unpack_from("<I", blob, pos + 28)
            found.append("%s sm_%d" % ({1: "ptx", 2: "elf"}.get(kind, "kind%d" % kind), arch))
            pos += ehsize + esize
    if not found:
        sys.exit("no .nv_fatbin section in %s" % obj)
    print("\n".join(found))


if __name__ == "__main__":
    if sys.argv[1] == "ptx":
        ptx(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "archs":
        archs(sys.argv[2])
    else:
        sys.exit(__doc__)

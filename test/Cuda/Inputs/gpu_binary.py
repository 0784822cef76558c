"""Pull the device code out of photon-cuda-opt output or a host object.

  gpu_binary.py ptx   <file.mlir> <out.ptx>   PTX of each gpu.binary (format=isa): the
                                              first in out.ptx, the others in out.ptx.1, ...
  gpu_binary.py archs <file.o>                the sm_XX cubins inside the object's .nv_fatbin
  gpu_binary.py summary <file.o|.so>          every fatbin of .nv_fatbin (a linked library
                                              holds one per kernel module): "fatbins: N" and
                                              "elf sm_XX: M" per entry kind (fatbins with it)
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


def fatbin_section(obj):
    data = open(obj, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("%s is not a 64-bit ELF file" % obj)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def section(i):
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] == b".nv_fatbin":
            return data[off : off + size]
    sys.exit("no .nv_fatbin section in %s" % obj)


def summary(obj):
    blob = fatbin_section(obj)
    magic_bytes = struct.pack("<I", 0xBA55ED50)
    pos, count, kinds = 0, 0, {}
    while True:
        pos = blob.find(magic_bytes, pos)
        if pos < 0:
            break
        _, _, hsize, fsize = struct.unpack_from("<IHHQ", blob, pos)
        seen = set()
        entry = pos + hsize
        while entry < pos + hsize + fsize:
            kind, _, ehsize, esize = struct.unpack_from("<HHIQ", blob, entry)
            arch, = struct.unpack_from("<I", blob, entry + 28)
            seen.add("%s sm_%d" % ({1: "ptx", 2: "elf"}.get(kind, "kind%d" % kind), arch))
            entry += ehsize + esize
        for k in seen:
            kinds[k] = kinds.get(k, 0) + 1
        count += 1
        pos += hsize + fsize
    if not count:
        sys.exit("no fatbin in the .nv_fatbin section of %s" % obj)
    print("fatbins: %d" % count)
    for k in sorted(kinds):
        print("%s: %d" % (k, kinds[k]))


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2])
    elif sys.argv[1] == "ptx":
        ptx(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "archs":
        archs(sys.argv[2])
    else:
        sys.exit(__doc__)

#!/usr/bin/python3
"""Extract the six Jane Austen novels from Debian's r-cran-janeaustenr without installing R.

  apt-get download r-cran-janeaustenr; dpkg-deb -x; read the package's lazy-load data base
  (data/Rdata.rdx + Rdata.rdb: zlib-compressed, XDR-serialized R objects) with a small reader
  for R's serialization format; write one UTF-8 text file and a 95/5 train/validation split.

usage: /usr/bin/python3 reference/scripts/extract_austen.py [--deb FILE] [--out DIR]
Output (default reference/data/): austen.txt (the six novels, UTF-8, one blank line between
them) and austen.split.json (byte ranges: the last 5% of every novel, cut at a line boundary,
is validation).
"""
import argparse
import glob
import json
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import zlib

BOOKS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]


class RReader:
    """Reader for R serialization format version 2/3, XDR ('X\\n') encoding; the subset used by
    data objects: NULL, symbols, pairlists (attributes), character/int/logical/real vectors,
    generic vectors, references."""

    NILVALUE, SYM, LIST, CHAR, LGL, INT, REAL, STR, VEC, REF = 254, 1, 2, 9, 10, 13, 14, 16, 19, 255
    GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE = 253, 242, 241, 251, 247

    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def fail(self, msg):
        raise ValueError(f"R serialization at byte {self.p}: {msg}")

    def int(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def bytes(self, n):
        b = self.d[self.p: self.p + n]
        if len(b) != n:
            self.fail("truncated")
        self.p += n
        return b

    def read(self):
        if self.bytes(2) != b"X\n":
            self.fail("not XDR-serialized (expected 'X\\n')")
        version = self.int()
        self.int()   # writer R version
        self.int()   # minimal reader version
        if version == 3:
            n = self.int()
            self.bytes(n)   # native encoding
        elif version != 2:
            self.fail(f"serialization version {version} (expected 2 or 3)")
        return self.item()

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) | lo
        return n

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t == self.NILVALUE:
            return None
        if t in (self.GLOBALENV, self.EMPTYENV, self.BASEENV, self.MISSINGARG, self.BASENAMESPACE):
            return None
        if t == self.REF:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == self.SYM:
            s = self.item()
            self.refs.append(s)
            return s
        if t == self.LIST:
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                nxt = self.int()
                t2 = nxt & 0xFF
                if t2 == self.NILVALUE:
                    return out
                if t2 != self.LIST:
                    self.fail(f"pairlist continued by type {t2}")
                has_attr, has_tag = bool(nxt & (1 << 9)), bool(nxt & (1 << 10))
        if t == self.CHAR:
            n = self.int()
            if n == -1:
                return None       # NA_character_
            levels = flags >> 12          # LATIN1_MASK = 4, UTF8_MASK = 8, ASCII_MASK = 64
            return self.bytes(n).decode("latin-1" if levels & 4 else "utf-8")
        if t in (self.LGL, self.INT):
            n = self.length()
            v = list(struct.unpack_from(f">{n}i", self.bytes(4 * n)))
        elif t == self.REAL:
            n = self.length()
            v = list(struct.unpack_from(f">{n}d", self.bytes(8 * n)))
        elif t == self.STR:
            n = self.length()
            v = [self.item() for _ in range(n)]
        elif t == self.VEC:
            n = self.length()
            v = [self.item() for _ in range(n)]
        else:
            self.fail(f"unsupported SEXP type {t}")
        if has_attr:
            attrs = dict(self.item() or [])
            if "names" in attrs and t == self.VEC:
                return dict(zip(attrs["names"], v))
        return v


def unserialize_blob(raw):
    """A lazy-load record: 4-byte big-endian uncompressed length, then zlib data (type 1)."""
    n = struct.unpack_from(">I", raw, 0)[0]
    data = zlib.decompress(raw[4:])
    if len(data) != n:
        raise ValueError(f"record inflated to {len(data)} bytes, header says {n}")
    return RReader(data).read()


def read_lazyload(rdx_path, rdb_path):
    with open(rdx_path, "rb") as f:          # the index is a gzip-compressed serialized list
        index = RReader(gzip.decompress(f.read())).read()
    with open(rdb_path, "rb") as f:
        rdb = f.read()
    out = {}
    for name, (off, length) in index["variables"].items():
        out[name] = unserialize_blob(rdb[off: off + length])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--deb", help="an already downloaded r-cran-janeaustenr .deb (default: apt-get download)")
    ap.add_argument("--out", default=os.path.join(here, "..", "data"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        deb = a.deb
        if not deb:
            r = subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=tmp,
                               capture_output=True, text=True)
            debs = glob.glob(os.path.join(tmp, "r-cran-janeaustenr_*.deb"))
            if not debs:
                sys.exit(f"extract_austen: apt-get download r-cran-janeaustenr failed: {r.stderr.strip()}\n"
                         "Run `apt-get update` or pass --deb FILE.")
            deb = debs[0]
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
        data = glob.glob(os.path.join(tmp, "x", "usr", "lib", "R", "site-library", "janeaustenr", "data"))
        if not data:
            sys.exit(f"extract_austen: {deb} has no janeaustenr/data directory")
        objs = read_lazyload(os.path.join(data[0], "Rdata.rdx"), os.path.join(data[0], "Rdata.rdb"))
    missing = [b for b in BOOKS if b not in objs]
    if missing:
        sys.exit(f"extract_austen: objects {missing} not found; found {sorted(objs)}")
    os.makedirs(a.out, exist_ok=True)
    texts, split, off = [], [], 0
    for b in BOOKS:
        lines = [l if l is not None else "" for l in objs[b]]
        data = ("\n".join(lines).strip("\n") + "\n\n").encode("utf-8")
        cut = data.rfind(b"\n", 0, int(len(data) * 0.95)) + 1     # last 5%, at a line boundary
        split.append({"book": b, "start": off, "val_start": off + cut, "end": off + len(data)})
        texts.append(data)
        off += len(data)
    with open(os.path.join(a.out, "austen.txt"), "wb") as f:
        f.write(b"".join(texts))
    with open(os.path.join(a.out, "austen.split.json"), "w") as f:
        json.dump({"corpus": "austen.txt", "unit": "bytes", "validation": "last 5% of every book",
                   "books": split}, f, indent=1)
    n_val = sum(s["end"] - s["val_start"] for s in split)
    print(f"extract_austen: {off} bytes, {off - n_val} train, {n_val} validation -> {a.out}")


if __name__ == "__main__":
    main()

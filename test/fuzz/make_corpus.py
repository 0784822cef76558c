#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (test/fuzz/corpus/<target>/, committed)
from the hostile inputs of test/hostile/Inputs (run test/hostile/make_inputs.py first)."""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "..", "hostile", "Inputs")


def read(p):
    with open(os.path.join(INPUTS, p), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


manifests = ["base/manifest.json"] + sorted(
    p for p in os.listdir(INPUTS) if p.startswith("manifest-"))
for p in manifests:
    write("manifest", os.path.basename(p).replace("/", "-"), read(p))
write("weights", "base.bin", read("base/weights.bin"))
write("weights", "count-ffffffff.bin", read("weights-count-ffffffff.bin"))
sep = b"\n--weights--\n"
write("loader", "base", read("base/manifest.json") + sep + read("base/weights.bin"))
write("loader", "count-ffffffff",
      read("manifest-count-ffffffff.json") + sep + read("weights-count-ffffffff.bin"))
for p in manifests[1:]:
    write("loader", os.path.basename(p), read(p) + sep + read("base/weights.bin"))
rng = random.Random(19)
# C API sequences: create, submit, step, ... (see fuzz_capi.cpp for the byte layout).
write("capi", "create-submit-step", bytes([0, 0, 4, 0, 16, 0, 0,
                                           1, 0, 3, 65, 0, 66, 0, 67, 0] + [0] * 20 + [3, 0, 3, 0]))
for i in range(8):
    write("capi", "random-%d" % i, bytes(rng.randrange(256) for _ in range(64)))

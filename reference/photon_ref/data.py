"""The byte-level corpus (reference/data/austen.txt + austen.split.json) and the tokenizer."""
import json
import os

import numpy as np
import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")

TOKENIZER = {"kind": "byte", "vocab": 256,
             "description": "token id = byte value of the UTF-8 encoded text; decoding concatenates bytes",
             "bos": None, "eos": None, "pad": None}


def encode(text):
    return list(text.encode("utf-8"))


def decode(tokens):
    return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")


def load_split(data_dir=DATA_DIR):
    path = os.path.join(data_dir, "austen.txt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: run /usr/bin/python3 reference/scripts/extract_austen.py")
    raw = np.fromfile(path, dtype=np.uint8)
    with open(os.path.join(data_dir, "austen.split.json")) as f:
        split = json.load(f)
    train = np.concatenate([raw[b["start"]: b["val_start"]] for b in split["books"]])
    val = np.concatenate([raw[b["val_start"]: b["end"]] for b in split["books"]])
    return train, val


def random_batch(data, batch, T, gen):
    idx = torch.randint(0, len(data) - T, (batch,), generator=gen)
    return torch.stack([torch.from_numpy(data[i: i + T].astype(np.int64)) for i in idx.tolist()])


def windows(data, T):
    """non-overlapping windows of T bytes covering the data (the tail shorter than T is dropped)"""
    n = len(data) // T
    return torch.from_numpy(data[: n * T].astype(np.int64).reshape(n, T))

"""The corpus (reference/data/austen.txt + austen.split.json) and the two tokenizers: bytes
(V = 256) and the SentencePiece BPE model trained on the training split
(scripts/train_tokenizer.py, reference/data/austen-bpe4096.model)."""
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


# ---------------------------------------------------------------------------------------------
# SentencePiece
# ---------------------------------------------------------------------------------------------
SP_MODEL = os.path.join(DATA_DIR, "austen-bpe4096.model")


class SentencePiece:
    """A SentencePiece model (Debian python3-sentencepiece). With the options of
    scripts/train_tokenizer.py (identity normalisation, no dummy prefix, whitespace kept, byte
    fallback) encode/decode is lossless and the text of a token sequence is the concatenation
    of the tokens' texts, so bytes can be counted per token."""

    def __init__(self, path=SP_MODEL):
        import sentencepiece as spm
        self.path = path
        self.sp = spm.SentencePieceProcessor(model_file=path)
        self.vocab = self.sp.get_piece_size()
        self.eos = self.sp.eos_id()
        self.bos = self.sp.bos_id()
        self.unk = self.sp.unk_id()

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, tokens):
        return self.sp.decode([int(t) for t in tokens])

    def token_bytes(self):
        """UTF-8 length of every token's text (byte-fallback pieces: 1; control pieces: 0)."""
        out = np.zeros(self.vocab, dtype=np.int64)
        for i in range(self.vocab):
            if self.sp.is_byte(i):
                out[i] = 1
            elif self.sp.is_control(i) or self.sp.is_unknown(i):
                out[i] = 0
            else:
                out[i] = len(self.sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
        return out

    def manifest(self, file_name="tokenizer.model"):
        """tokenizer.json of a model directory (docs/reference.md)."""
        return {"kind": "sentencepiece", "model": file_name, "vocab": self.vocab,
                "description": "SentencePiece BPE trained on the training split of austen.txt "
                               "(reference/scripts/train_tokenizer.py)",
                "bos": self.bos, "eos": self.eos, "unk": self.unk, "pad": None}


def book_texts(data_dir=DATA_DIR):
    """[(train text, validation text)] per book, as str."""
    path = os.path.join(data_dir, "austen.txt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: run /usr/bin/python3 reference/scripts/extract_austen.py")
    raw = open(path, "rb").read()
    with open(os.path.join(data_dir, "austen.split.json")) as f:
        split = json.load(f)
    return [(raw[b["start"]: b["val_start"]].decode("utf-8"), raw[b["val_start"]: b["end"]].decode("utf-8"))
            for b in split["books"]]


def val_text(data_dir=DATA_DIR):
    """The held-out split as one str (the books' last 5% back to back)."""
    return "".join(v for _, v in book_texts(data_dir))


def load_token_split(tok, data_dir=DATA_DIR):
    """(train, val) token ids (np.int64) of the SentencePiece tokenizer: every book's part is
    encoded on its own; in the training stream the books are separated by EOS, the validation
    stream is the books' held-out parts back to back (no EOS: every validation token has text)."""
    books = book_texts(data_dir)
    train, val = [], []
    for tr, va in books:
        train += tok.encode(tr) + [tok.eos]
        val += tok.encode(va)
    return np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64)

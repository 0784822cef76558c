#!/usr/bin/python3
"""Train the SentencePiece BPE tokenizer of the bundled models on the training split.

usage: /usr/bin/python3 reference/scripts/train_tokenizer.py [--vocab 4096] [--out FILE]

Input: the training part of every book of reference/data/austen.txt (never the held-out 5%),
one paragraph (text between blank lines, hard line breaks kept) per SentencePiece sentence.
Options chosen so that encode -> decode is lossless and a token sequence's text is the
concatenation of its tokens' texts (the runtime streams text token by token):
identity normalisation, no dummy prefix, extra whitespace kept, byte fallback (any byte the
pieces do not cover, e.g. a rare UTF-8 character, is encoded as <0xNN> byte tokens),
digits split. Ids 0/1/2 are <unk>/<s>/</s>; </s> (EOS) separates the books in training.
Deterministic for a given corpus and sentencepiece version (single-threaded training).
"""
import argparse
import io
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from photon_ref import data as D  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--out", default=D.SP_MODEL)
    a = ap.parse_args()
    paragraphs = []
    for train, _ in D.book_texts():
        paragraphs += [p for p in train.split("\n\n") if p]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(paragraphs), model_writer=buf, vocab_size=a.vocab, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        add_dummy_prefix=False, remove_extra_whitespaces=False, split_digits=True,
        max_sentence_length=1 << 16, num_threads=1, minloglevel=2,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    with open(a.out, "wb") as f:
        f.write(buf.getvalue())
    tok = D.SentencePiece(a.out)
    train, val = D.load_token_split(tok)
    _, val_bytes = D.load_split()
    assert all(tok.decode(tok.encode(v)) == v for _, v in D.book_texts()), "round trip failed"
    print(f"wrote {a.out}: {tok.vocab} pieces, train {len(train)} tokens, val {len(val)} tokens "
          f"({len(val_bytes) / len(val):.3f} bytes/token)")


if __name__ == "__main__":
    main()

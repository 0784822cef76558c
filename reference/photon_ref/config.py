"""Model configuration: one dataclass for the three families (photon, block, vanilla)."""
from dataclasses import dataclass, field, asdict
import json
import math


@dataclass
class Config:
    family: str = "photon"            # "photon", "block" (= PHOTON structure with L = 1) or "vanilla"
    vocab: int = 256
    width: int = 128                  # D, every level
    chunk_sizes: tuple = (4, 4)       # C_1..C_L (photon/block); ignored for vanilla
    prefix: int = 2                   # R, converter prefix length
    n_heads: int = 4
    n_kv_heads: int = 4               # < n_heads: GQA
    head_dim: int = 32
    ffn: int = 352                    # F (SwiGLU hidden width)
    enc_layers: tuple = (2, 2)        # N_E(l), l = 1..L
    dec_layers: tuple = (2, 2)        # N_D(l), l = 1..L (dec1 = token decoder)
    layers: int = 8                   # vanilla depth
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    context: int = 256                # training context T
    # section-5 decisions, each a flag (defaults = the paper's composition)
    latent_teacher_forcing: bool = False   # G_l (l >= 2) teacher-forced in training (inference is always free-running)
    token_decoder_input: str = "decoder"   # "decoder": Xhat1 (paper); "encoder": X1 (third-party variant)
    level1_shift: bool = True              # chunk k decoded from Xhat1_{k-1}; False: from Xhat1_k
    rec_stop_grad: bool = False            # stop-gradient on the L_rec target X1
    alpha: float = 0.3                     # weight of L_rec = mean(1 - cos(Xhat1, X1))
    # training initialisation (not part of the exported graph)
    enc_emb_std: float = 0.02              # std of EmbEnc at init (docs/reference.md, "Latent collapse")

    def __post_init__(self):
        self.chunk_sizes = tuple(int(c) for c in self.chunk_sizes)
        self.enc_layers = tuple(int(c) for c in self.enc_layers)
        self.dec_layers = tuple(int(c) for c in self.dec_layers)
        self.validate()

    # ------------------------------------------------------------------ derived
    @property
    def levels(self):
        return 0 if self.family == "vanilla" else len(self.chunk_sizes)

    @property
    def meta(self):
        """Tokens per top-level unit (a meta-context): C_1 * ... * C_L."""
        return math.prod(self.chunk_sizes) if self.family != "vanilla" else 1

    def tokens_per_unit(self, level):
        return math.prod(self.chunk_sizes[:level])

    def validate(self):
        def bad(msg):
            raise ValueError(f"invalid photon config: {msg}")
        if self.family not in ("photon", "block", "vanilla"):
            bad(f"family {self.family!r}: expected photon, block or vanilla")
        if self.n_heads % self.n_kv_heads:
            bad(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")
        if self.head_dim % 2:
            bad(f"head_dim={self.head_dim} must be even (rotate-half RoPE)")
        if self.family == "vanilla":
            return
        L = len(self.chunk_sizes)
        if L < 1:
            bad("chunk_sizes must name at least one level")
        if self.family == "block" and L != 1:
            bad("a Block Transformer is the L = 1 structure: chunk_sizes must have one entry")
        if len(self.enc_layers) != L or len(self.dec_layers) != L:
            bad(f"enc_layers {self.enc_layers} and dec_layers {self.dec_layers} need one entry per level ({L})")
        if self.width % self.chunk_sizes[0]:
            bad(f"width {self.width} is not divisible by C_1 = {self.chunk_sizes[0]}")
        if any(c < 1 for c in self.chunk_sizes) or self.prefix < 1:
            bad("chunk sizes and prefix must be >= 1")
        if self.token_decoder_input not in ("decoder", "encoder"):
            bad("token_decoder_input must be 'decoder' or 'encoder'")
        if not self.level1_shift and (L == 1 or self.token_decoder_input == "encoder"):
            bad("the unshifted level-1 variant needs L >= 2 and the decoder-side Xhat1 "
                "(otherwise chunk k would be decoded from its own encoding)")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self):
        d = asdict(self)
        d["chunk_sizes"] = list(self.chunk_sizes)
        d["enc_layers"] = list(self.enc_layers)
        d["dec_layers"] = list(self.dec_layers)
        return d

    def onnx_config(self):
        """The `photon.config` metadata JSON of docs/onnx-convention.md."""
        if self.family == "vanilla":
            layers = {"stack": self.layers}
        else:
            layers = {}
            for l in range(1, self.levels + 1):
                layers[f"enc{l}"] = self.enc_layers[l - 1]
            for l in range(1, self.levels + 1):
                layers[f"dec{l}"] = self.dec_layers[l - 1]
        d = {"family": self.family, "vocab": self.vocab, "width": self.width,
             "levels": self.levels,
             "chunk_sizes": list(self.chunk_sizes) if self.family != "vanilla" else [],
             "prefix": self.prefix if self.family != "vanilla" else 0,
             "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads, "head_dim": self.head_dim,
             "ffn": self.ffn, "layers": layers, "rope_theta": self.rope_theta,
             "norm_eps": self.norm_eps, "context": self.context,
             "level1_shift": self.level1_shift, "token_decoder_input": self.token_decoder_input}
        return d

    def to_json(self):
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def tiny_config(family="photon"):
    """Section 6 'tiny': byte-level V = 256, D = 128, 4 x 32 heads, F = 352, N = 2 per stack."""
    if family == "photon":
        return Config(family="photon", chunk_sizes=(4, 4), enc_layers=(2, 2), dec_layers=(2, 2))
    if family == "block":
        return Config(family="block", chunk_sizes=(4,), enc_layers=(4,), dec_layers=(4,))
    if family == "vanilla":
        return Config(family="vanilla", chunk_sizes=(), enc_layers=(), dec_layers=(), layers=8)
    raise ValueError(f"unknown family {family!r}")


def small_config(family="photon", vocab=4096):
    """The bundled models (reference/models/small-*): SentencePiece BPE V = 4096 (about 3.8 bytes
    per token on the corpus), D = 192, 6 heads x 32, F = 512, T = 256 tokens; PHOTON C = (4, 4),
    N = 2 per stack; Block 4 + 4; vanilla 8 layers (the same 8 blocks of width D in each)."""
    base = dict(vocab=vocab, width=192, n_heads=6, n_kv_heads=6, head_dim=32, ffn=512, context=256)
    if family == "photon":
        return Config(family="photon", chunk_sizes=(4, 4), enc_layers=(2, 2), dec_layers=(2, 2),
                      enc_emb_std=1.0, **base)
    if family == "block":
        return Config(family="block", chunk_sizes=(4,), enc_layers=(4,), dec_layers=(4,), enc_emb_std=1.0, **base)
    if family == "vanilla":
        return Config(family="vanilla", chunk_sizes=(), enc_layers=(), dec_layers=(), layers=8, **base)
    raise ValueError(f"unknown family {family!r}")


def proxy_config(family="photon", vocab=4096):
    """The latent-collapse study's stand-in for small_config (reference/scripts/collapse_study.py):
    the same tokenizer and structure, D = 96, 3 heads x 32, F = 256, T = 128, one layer per
    stack (vanilla 4): about 16x less compute per token."""
    base = dict(vocab=vocab, width=96, n_heads=3, n_kv_heads=3, head_dim=32, ffn=256, context=128)
    if family == "photon":
        return Config(family="photon", chunk_sizes=(4, 4), enc_layers=(1, 1), dec_layers=(1, 1),
                      enc_emb_std=1.0, **base)
    if family == "block":
        return Config(family="block", chunk_sizes=(4,), enc_layers=(2,), dec_layers=(2,), enc_emb_std=1.0, **base)
    if family == "vanilla":
        return Config(family="vanilla", chunk_sizes=(), enc_layers=(), dec_layers=(), layers=4, **base)
    raise ValueError(f"unknown family {family!r}")


# The fixture configurations of test/fixtures (small: D = 32, 4 heads x 8, F = 88, V = 256).
FIXTURES = {
    "photon-c44": dict(family="photon", chunk_sizes=(4, 4), enc_layers=(2, 2), dec_layers=(1, 1)),
    "photon-c22": dict(family="photon", chunk_sizes=(2, 2), enc_layers=(2, 2), dec_layers=(1, 1)),
    "photon-l1": dict(family="photon", chunk_sizes=(4,), enc_layers=(2,), dec_layers=(1,)),
    "photon-l3": dict(family="photon", chunk_sizes=(2, 2, 2), enc_layers=(1, 1, 1), dec_layers=(1, 1, 1)),
    "photon-gqa": dict(family="photon", chunk_sizes=(4, 4), enc_layers=(2, 2), dec_layers=(1, 1), n_kv_heads=2),
    "vanilla": dict(family="vanilla", chunk_sizes=(), enc_layers=(), dec_layers=(), layers=2),
    "block": dict(family="block", chunk_sizes=(4,), enc_layers=(2,), dec_layers=(1,)),
}


def fixture_config(name):
    base = dict(vocab=256, width=32, n_heads=4, n_kv_heads=4, head_dim=8, ffn=72, context=64)
    if name not in FIXTURES:
        raise ValueError(f"unknown fixture {name!r}; known: {', '.join(FIXTURES)}")
    base.update(FIXTURES[name])
    return Config(**base)

"""PHOTON, Block Transformer and vanilla LLaMA-style models.

Two kinds of modules:
- parameter holders (LayerParams, StackParams, ...) own the weights under the names the weights
  blob uses (`enc1.0.wq`, `dec2.start`, `lm_head`, ... see docs/reference.md);
- parameter-free *function modules* (TokenEmbedding, Chunk, ChunkCompress, EncoderStack, Shift,
  LatentDecoder, TokenDecoder, LMHead) receive the weights as forward() arguments and carry their
  hyper-parameters as class-level annotated attributes. torch.onnx exports each of them as an ONNX
  local function in domain "photon" whose inputs are the activations then the weights, in the
  order of docs/onnx-convention.md, and whose attributes are the annotated hyper-parameters.
The top-level forward() does nothing but call function modules, so the exported top-level graph
is made only of photon function calls.
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Config
from .ops import stack_apply, causal_mask, rms_norm, WEIGHTS_PER_LAYER


# ---------------------------------------------------------------------------------------------
# function modules (domain "photon")
# ---------------------------------------------------------------------------------------------
class TokenEmbedding(nn.Module):
    """tokens i64[B, T], table [V, E] -> [B, T, E]"""

    def forward(self, tokens, table):
        return F.embedding(tokens, table)


class Chunk(nn.Module):
    """x [B, M, d] -> [B, M/size, size*d] (row-major reshape)"""
    size: int

    def __init__(self, size):
        super().__init__()
        self.size = int(size)

    def forward(self, x):
        return x.reshape(x.shape[0], -1, self.size * x.shape[2])


class ChunkCompress(nn.Module):
    """x [B, M, D], norm [size*D], w [D, size*D], b [D] -> [B, M/size, D]"""
    size: int
    eps: float

    def __init__(self, size, eps):
        super().__init__()
        self.size = int(size)
        self.eps = float(eps)

    def forward(self, x, norm, w, b):
        a = x.reshape(x.shape[0], -1, self.size * x.shape[2])
        return F.linear(rms_norm(a, norm, self.eps), w, b)


class _StackHP(nn.Module):
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rope_theta: float
    eps: float

    def __init__(self, cfg: Config, n_layers):
        super().__init__()
        self.n_layers = int(n_layers)
        self.n_heads = int(cfg.n_heads)
        self.n_kv_heads = int(cfg.n_kv_heads)
        self.head_dim = int(cfg.head_dim)
        self.rope_theta = float(cfg.rope_theta)
        self.eps = float(cfg.norm_eps)

    def stack(self, x, ws, pos, mask, past=None):
        return stack_apply(x, ws, self.n_layers, self.n_heads, self.n_kv_heads, self.head_dim,
                           self.rope_theta, self.eps, pos, mask, past)


class EncoderStack(_StackHP):
    """Causal LLaMA stack over [B, M, D]; RoPE positions 0..M-1."""

    def forward(self, x, *ws):
        m = x.shape[1]
        pos = torch.arange(m, dtype=torch.float32)
        return self.stack(x, ws, pos, causal_mask(m))[0]


class Shift(nn.Module):
    """x [B, M, D], start [D] -> concat(start, x[:, :-1]) along the unit axis"""

    def forward(self, x, start):
        s = start.reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        return torch.cat([s, x[:, :-1]], 1)


class _DecoderHP(_StackHP):
    chunk: int
    prefix: int

    def __init__(self, cfg: Config, n_layers, chunk):
        super().__init__(cfg, n_layers)
        self.chunk = int(chunk)
        self.prefix = int(cfg.prefix)


class LatentDecoder(_DecoderHP):
    """prev [B, M, D], conv_w [R*D, D], conv_b [R*D], stack weights -> [B, M*chunk, D].

    Converter U(prev) -> R vectors, then `chunk` free-running steps of the stack over the window
    [u_1..u_R, y_1..y_{j-1}]; y_j is the output at the last window position."""

    def forward(self, prev, conv_w, conv_b, *ws):
        d = prev.shape[2]
        win = F.linear(prev, conv_w, conv_b).reshape(-1, self.prefix, d)     # [B*M, R, D]
        outs = []
        for j in range(self.chunk):
            w = self.prefix + j
            y = self.stack(win, ws, torch.arange(w, dtype=torch.float32), causal_mask(w))[0][:, w - 1:]
            outs.append(y)
            if j + 1 < self.chunk:
                win = torch.cat([win, y], 1)
        return torch.cat(outs, 1).reshape(prev.shape[0], -1, d)


class TokenDecoder(_DecoderHP):
    """prev [B, M, D], tokens i64[B, M*chunk], emb [V, D], conv_w, conv_b, stack weights
    -> [B, M*chunk, D]: windows [U(prev_m); EmbDec(first chunk-1 tokens of chunk m)],
    outputs at window positions R-1 .. R+chunk-2."""

    def forward(self, prev, tokens, emb, conv_w, conv_b, *ws):
        d = prev.shape[2]
        u = F.linear(prev, conv_w, conv_b).reshape(-1, self.prefix, d)         # [B*M, R, D]
        e = F.embedding(tokens, emb).reshape(-1, self.chunk, d)[:, : self.chunk - 1]
        win = torch.cat([u, e], 1)
        w = self.prefix + self.chunk - 1
        h = self.stack(win, ws, torch.arange(w, dtype=torch.float32), causal_mask(w))[0]
        return h[:, self.prefix - 1:].reshape(prev.shape[0], -1, d)


class LMHead(nn.Module):
    """x [.., D], w [V, D] -> [.., V]"""

    def forward(self, x, w):
        return F.linear(x, w)


FUNCTION_MODULES = (TokenEmbedding, Chunk, ChunkCompress, EncoderStack, Shift, LatentDecoder,
                    TokenDecoder, LMHead)
for _cls in FUNCTION_MODULES:
    _cls.__module__ = "photon"       # ONNX function domain "photon", name = class name


# ---------------------------------------------------------------------------------------------
# parameter holders
# ---------------------------------------------------------------------------------------------
class LayerParams(nn.Module):
    def __init__(self, d, n_heads, n_kv_heads, hd, f):
        super().__init__()
        shapes = {"attn_norm": (d,), "wq": (n_heads * hd, d), "wk": (n_kv_heads * hd, d),
                  "wv": (n_kv_heads * hd, d), "wo": (d, n_heads * hd), "mlp_norm": (d,),
                  "w_gate": (f, d), "w_up": (f, d), "w_down": (d, f)}
        for n in WEIGHTS_PER_LAYER:
            setattr(self, n, nn.Parameter(torch.empty(shapes[n])))

    def flat(self):
        return [getattr(self, n) for n in WEIGHTS_PER_LAYER]


class StackParams(nn.Module):
    """Layers named "0", "1", ... then final_norm: names `<stack>.<i>.<weight>`, `<stack>.final_norm`."""

    def __init__(self, cfg, n_layers):
        super().__init__()
        self.n_layers = n_layers
        for i in range(n_layers):
            self.add_module(str(i), LayerParams(cfg.width, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn))
        self.final_norm = nn.Parameter(torch.empty(cfg.width))

    def flat(self):
        out = []
        for i in range(self.n_layers):
            out += getattr(self, str(i)).flat()
        return out + [self.final_norm]


class Linear(nn.Module):
    def __init__(self, n_out, n_in, bias=True):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_out, n_in))
        self.b = nn.Parameter(torch.empty(n_out)) if bias else None


class CompressParams(nn.Module):
    def __init__(self, size, d):
        super().__init__()
        self.norm = nn.Parameter(torch.empty(size * d))
        self.w = nn.Parameter(torch.empty(d, size * d))
        self.b = nn.Parameter(torch.empty(d))


class EncoderParams(StackParams):
    def __init__(self, cfg, level):
        super().__init__(cfg, cfg.enc_layers[level - 1])
        if level >= 2:
            self.compress = CompressParams(cfg.chunk_sizes[level - 1], cfg.width)


class DecoderParams(StackParams):
    def __init__(self, cfg, level):
        super().__init__(cfg, cfg.dec_layers[level - 1])
        d = cfg.width
        self.start = nn.Parameter(torch.empty(d))
        self.conv = Linear(cfg.prefix * d, d)
        if level == 1:
            self.emb = nn.Parameter(torch.empty(cfg.vocab, d))


def init_weights(model, mode="train", generator=None):
    """mode "train": small-std init for training; "fixture": O(1) activations everywhere and a
    strong LM head so random-weight logits are peaked (greedy decisions far from ties)."""
    g = generator
    d = model.cfg.width
    for name, p in model.named_parameters():
        leaf = name.split(".")[-1]
        with torch.no_grad():
            if leaf in ("attn_norm", "mlp_norm", "final_norm", "norm"):
                if mode == "train":
                    p.fill_(1.0)
                else:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif leaf == "b":
                p.copy_((0.0 if mode == "train" else 0.1) * torch.randn(p.shape, generator=g))
            elif leaf == "start":
                p.copy_((0.02 if mode == "train" else 1.0) * torch.randn(p.shape, generator=g))
            elif leaf == "emb_enc":
                p.copy_((model.cfg.enc_emb_std if mode == "train" else 1.0) * torch.randn(p.shape, generator=g))
            elif leaf == "emb":
                p.copy_((0.02 if mode == "train" else 1.0) * torch.randn(p.shape, generator=g))
            elif leaf == "lm_head":
                std = 0.02 if mode == "train" else 8.0 / math.sqrt(d)
                p.copy_(std * torch.randn(p.shape, generator=g))
            else:  # matrices [out, in]
                if mode == "train":
                    std = 0.02
                    if leaf in ("wo", "w_down"):
                        std = 0.02 / math.sqrt(2 * max(1, model.n_stack_layers()))
                else:
                    std = 1.0 / math.sqrt(p.shape[1])
                p.copy_(std * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
class PhotonModel(nn.Module):
    """PHOTON with L levels (family "photon"); family "block" is the L = 1 Block Transformer."""

    def __init__(self, cfg: Config):
        super().__init__()
        assert cfg.family in ("photon", "block")
        self.cfg = cfg
        L, C, D = cfg.levels, cfg.chunk_sizes, cfg.width
        self.emb_enc = nn.Parameter(torch.empty(cfg.vocab, D // C[0]))
        for l in range(1, L + 1):
            setattr(self, f"enc{l}", EncoderParams(cfg, l))
            setattr(self, f"dec{l}", DecoderParams(cfg, l))
        self.lm_head = nn.Parameter(torch.empty(cfg.vocab, D))
        # function modules (parameter-free)
        self.f_embed = TokenEmbedding()
        self.f_chunk = Chunk(C[0])
        self.f_shift = Shift()
        self.f_head = LMHead()
        for l in range(1, L + 1):
            setattr(self, f"f_enc{l}", EncoderStack(cfg, cfg.enc_layers[l - 1]))
            if l >= 2:
                setattr(self, f"f_compress{l}", ChunkCompress(C[l - 1], cfg.norm_eps))
                setattr(self, f"f_dec{l}", LatentDecoder(cfg, cfg.dec_layers[l - 1], C[l - 1]))
        self.f_dec1 = TokenDecoder(cfg, cfg.dec_layers[0], C[0])
        init_weights(self, "train")

    def n_stack_layers(self):
        return sum(self.cfg.enc_layers) + sum(self.cfg.dec_layers)

    def enc(self, l):
        return getattr(self, f"enc{l}")

    def dec(self, l):
        return getattr(self, f"dec{l}")

    # ---- the forward graph: only function-module calls (this is what is exported) ----
    def encoder(self, tokens):
        """-> [X(1), ..., X(L)]"""
        xs = []
        x = self.f_chunk(self.f_embed(tokens, self.emb_enc))
        for l in range(1, self.cfg.levels + 1):
            if l >= 2:
                c = self.enc(l).compress
                x = getattr(self, f"f_compress{l}")(x, c.norm, c.w, c.b)
            x = getattr(self, f"f_enc{l}")(x, *self.enc(l).flat())
            xs.append(x)
        return xs

    def latent_decoder(self, l, prev):
        d = self.dec(l)
        return getattr(self, f"f_dec{l}")(prev, d.conv.w, d.conv.b, *d.flat())

    def decoder(self, tokens, xs):
        """Top-down: Xhat(L) = X(L); Xhat(l-1) = G_l(Shift(Xhat(l), s_l)). -> (logits, [Xhat(1..L-1)])"""
        cfg = self.cfg
        L = cfg.levels
        xh = xs[L - 1]
        xhs = []
        for l in range(L, 1, -1):
            xh = self.latent_decoder(l, self.f_shift(xh, self.dec(l).start))
            xhs.insert(0, xh)
        src = xs[0] if cfg.token_decoder_input == "encoder" else xh
        prev1 = self.f_shift(src, self.dec1.start) if cfg.level1_shift else src
        d1 = self.dec1
        h = self.f_dec1(prev1, tokens, d1.emb, d1.conv.w, d1.conv.b, *d1.flat())
        return self.f_head(h, self.lm_head), xhs

    def forward(self, tokens):
        """tokens i64[B, T] (T a multiple of C_1...C_L) -> logits [B, T, V] (+ x1, xh1 for photon)."""
        xs = self.encoder(tokens)
        logits, xhs = self.decoder(tokens, xs)
        if self.cfg.family == "block":
            return logits
        if self.cfg.levels == 1:
            return logits, xs[0]
        return logits, xs[0], xhs[0]

    def output_names(self):
        if self.cfg.family == "block":
            return ["logits"]
        return ["logits", "x1"] if self.cfg.levels == 1 else ["logits", "x1", "xh1"]

    # ---- training ----
    def _latent_decoder_tf(self, l, prev, target):
        """Teacher-forced G_l (flag latent_teacher_forcing): window [U(prev); target units 1..C-1]."""
        d = self.dec(l)
        f = getattr(self, f"f_dec{l}")
        C, R, D = f.chunk, f.prefix, self.cfg.width
        u = F.linear(prev, d.conv.w, d.conv.b).reshape(-1, R, D)
        y = target.reshape(-1, C, D)[:, : C - 1]
        w = R + C - 1
        h = f.stack(torch.cat([u, y], 1), d.flat(), torch.arange(w, dtype=torch.float32), causal_mask(w))[0]
        return h[:, R - 1:].reshape(prev.shape[0], -1, D)

    def loss(self, tokens):
        """Next-token CE on logits[:, t] vs tokens[:, t] (the decoder is causal by construction)
        plus alpha * mean(1 - cos(Xhat1, X1)). Returns (total, ce, rec)."""
        cfg = self.cfg
        xs = self.encoder(tokens)
        if cfg.latent_teacher_forcing and cfg.levels >= 2:
            L = cfg.levels
            xh = xs[L - 1]
            xhs = []
            for l in range(L, 1, -1):
                xh = self._latent_decoder_tf(l, self.f_shift(xh, self.dec(l).start), xs[l - 2])
                xhs.insert(0, xh)
            src = xs[0] if cfg.token_decoder_input == "encoder" else xh
            prev1 = self.f_shift(src, self.dec1.start) if cfg.level1_shift else src
            d1 = self.dec1
            logits = self.f_head(self.f_dec1(prev1, tokens, d1.emb, d1.conv.w, d1.conv.b, *d1.flat()), self.lm_head)
        else:
            logits, xhs = self.decoder(tokens, xs)
        ce = F.cross_entropy(logits.reshape(-1, cfg.vocab), tokens.reshape(-1))
        rec = torch.zeros(())
        if cfg.levels >= 2 and cfg.alpha > 0:
            target = xs[0].detach() if cfg.rec_stop_grad else xs[0]
            rec = (1 - F.cosine_similarity(xhs[0], target, dim=-1)).mean()
        return ce + cfg.alpha * rec, ce, rec


class VanillaModel(nn.Module):
    """LLaMA-style decoder-only Transformer: emb, N layers, final RMSNorm, untied LM head."""

    def __init__(self, cfg: Config):
        super().__init__()
        assert cfg.family == "vanilla"
        self.cfg = cfg
        self.emb = nn.Parameter(torch.empty(cfg.vocab, cfg.width))
        self.stack = StackParams(cfg, cfg.layers)
        self.lm_head = nn.Parameter(torch.empty(cfg.vocab, cfg.width))
        self.f_embed = TokenEmbedding()
        self.f_stack = EncoderStack(cfg, cfg.layers)
        self.f_head = LMHead()
        init_weights(self, "train")

    def n_stack_layers(self):
        return self.cfg.layers

    def forward(self, tokens):
        h = self.f_stack(self.f_embed(tokens, self.emb), *self.stack.flat())
        return self.f_head(h, self.lm_head)

    def output_names(self):
        return ["logits"]

    def loss(self, tokens):
        """logits[:, t] predicts tokens[:, t+1]."""
        logits = self.forward(tokens)
        V = self.cfg.vocab
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
        return ce, ce, torch.zeros(())


def build_model(cfg: Config):
    return VanillaModel(cfg) if cfg.family == "vanilla" else PhotonModel(cfg)

"""An independent model zoo: small PyTorch language models written the way third parties write
them, for testing the ONNX importer on exports that do NOT follow docs/onnx-convention.md.

Nothing here imports the reference implementation (reference/), and no name in this file
follows its naming: parameters and modules are named as in common open-source code bases
(HF LLaMA / GPT-2 style) or freely (`bottom`, `lifts`, `ups`, ...), and the graph
spellings differ on purpose from one model to the next (see README.md for the list).

Models (build with `build(name)`):
  llama          LLaMA-style decoder-only (GQA by repeat_interleave, rotate-half RoPE from arange)
  llama_past     the same model (same weights) with past key/value inputs and present outputs
  gpt2           GPT-2-style (LayerNorm, learned positions, fused QKV, tanh GELU, biases, tied head)
  photon_l2_gqa  PHOTON L = 2, C = (4, 4), R = 2, GQA as a 5-D broadcasting MatMul, GPT-J RoPE
  photon_l3      PHOTON L = 3, C = (2, 2, 2), R = 2, MHA, rotate-half RoPE from constant tables
  block          Block Transformer (the L = 1 PHOTON-like structure), C = 4, R = 2

PHOTON semantics (shared/docs/photon-model.md section 1, the training forward): the
encoder embeds tokens at width D/C_1, concatenates C_1 embeddings per chunk, runs a causal
LLaMA stack; every higher level concatenates C_l vectors, RMSNorm, Linear(C_l*D -> D, bias),
and runs a causal stack. Top-down, each level shifts its latents by one unit (a learned start
vector first), expands each through a converter Linear(D -> R*D, bias) into R prefix vectors,
and a decoder stack runs over windows [prefix; ...]: latent levels free-running C_l steps
(windows of length R, R+1, ..., R+C_l-1, each step appends the output at the last position),
the token level over [prefix; decoder embedding of the chunk's first C_1-1 tokens] with the
outputs at window positions R-1 .. R+C_1-2 feeding an untied vocabulary projection.
RoPE positions count inside each stream: unit index in encoders, window index in decoders.
PHOTON / Block logits[:, t] are the distribution of token t itself; llama / gpt2 logits[:, t]
that of token t + 1.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NEG_INF = float("-inf")


def inverse_frequencies(head_dim, base):
    """base^(-2i/head_dim), i < head_dim/2, computed in float64 and rounded to float32."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    return torch.tensor((base ** (-2.0 * i / head_dim)).astype(np.float32))


# =============================================================================================
# 1 / 6. LLaMA-style decoder-only (optionally with past key/values)
# =============================================================================================
class LlamaSettings:
    vocab_size = 288
    hidden_size = 64
    num_attention_heads = 4
    num_key_value_heads = 2
    head_dim = 16
    intermediate_size = 176
    num_hidden_layers = 2
    rms_norm_eps = 1e-6
    rope_theta = 500000.0


class LlamaRMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaRotary(nn.Module):
    """cos/sin computed in the graph from integer positions (HF layout: cat(freqs, freqs))."""

    def __init__(self, head_dim, base):
        super().__init__()
        self.register_buffer("inv_freq", inverse_frequencies(head_dim, base), persistent=False)

    def forward(self, positions):
        freqs = positions.float()[:, None] * self.inv_freq[None, :]      # [S, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)                            # [S, hd]
        return emb.cos(), emb.sin()


def rotate_half(x, half):
    """[x1, x2] -> [-x2, x1] (half = head_dim // 2, a Python int: static Slices)."""
    x1 = x[..., :half]
    x2 = x[..., half:]
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, s: LlamaSettings):
        super().__init__()
        self.n_heads = s.num_attention_heads
        self.n_kv = s.num_key_value_heads
        self.head_dim = s.head_dim
        d = s.hidden_size
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, past_key=None, past_value=None):
        bsz, q_len = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(bsz, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, q_len, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, q_len, self.n_kv, self.head_dim).transpose(1, 2)
        half = self.head_dim // 2
        q = q * cos + rotate_half(q, half) * sin
        k = k * cos + rotate_half(k, half) * sin
        if past_key is not None:
            k = torch.cat([past_key, k], dim=2)
            v = torch.cat([past_value, v], dim=2)
        present = (k, v)
        # GQA: each KV head serves n_heads / n_kv consecutive query heads. repeat_interleave
        # on the head axis of the [B, T, kv, hd] view (torch 1.13 mis-exports it on axis 1
        # of [B, kv, T, hd]: its Reshape copies the wrong dimension).
        rep = self.n_heads // self.n_kv
        k = k.transpose(1, 2).repeat_interleave(rep, dim=2).transpose(1, 2)
        v = v.transpose(1, 2).repeat_interleave(rep, dim=2).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        kv_len = k.shape[2]
        if past_key is None:
            # additive causal mask: triu(full(-inf), 1)
            mask = torch.triu(torch.full((q_len, q_len), NEG_INF), diagonal=1)
            scores = scores + mask
        else:
            # boolean mask from positions, masked_fill with finfo.min
            past_len = kv_len - q_len
            q_pos = torch.arange(q_len) + past_len
            k_pos = torch.arange(kv_len)
            hidden = k_pos[None, :] > q_pos[:, None]
            scores = scores.masked_fill(hidden, torch.finfo(torch.float32).min)
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(bsz, q_len, self.n_heads * self.head_dim)
        return self.o_proj(out), present


class LlamaMLP(nn.Module):
    def __init__(self, s: LlamaSettings):
        super().__init__()
        self.gate_proj = nn.Linear(s.hidden_size, s.intermediate_size, bias=False)
        self.up_proj = nn.Linear(s.hidden_size, s.intermediate_size, bias=False)
        self.down_proj = nn.Linear(s.intermediate_size, s.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, s: LlamaSettings):
        super().__init__()
        self.input_layernorm = LlamaRMSNorm(s.hidden_size, s.rms_norm_eps)
        self.self_attn = LlamaAttention(s)
        self.post_attention_layernorm = LlamaRMSNorm(s.hidden_size, s.rms_norm_eps)
        self.mlp = LlamaMLP(s)

    def forward(self, x, cos, sin, past_key=None, past_value=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, past_key, past_value)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class LlamaBody(nn.Module):
    def __init__(self, s: LlamaSettings):
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab_size, s.hidden_size)
        self.layers = nn.ModuleList([LlamaLayer(s) for _ in range(s.num_hidden_layers)])
        self.norm = LlamaRMSNorm(s.hidden_size, s.rms_norm_eps)
        self.rotary_emb = LlamaRotary(s.head_dim, s.rope_theta)


class LlamaForCausalLM(nn.Module):
    """tokens i64[B, T] -> logits [B, T, V] (logits[:, t] predicts token t + 1)."""

    def __init__(self, s: LlamaSettings = LlamaSettings()):
        super().__init__()
        self.settings = s
        self.model = LlamaBody(s)
        self.unembed = nn.Linear(s.hidden_size, s.vocab_size, bias=False)   # untied

    def head_param(self):
        return self.unembed.weight

    def run(self, tokens, past=None):
        h = self.model.embed_tokens(tokens)
        q_len = tokens.shape[1]
        past_len = 0 if past is None else past[0].shape[2]
        positions = torch.arange(q_len) + past_len if past is not None else torch.arange(q_len)
        cos, sin = self.model.rotary_emb(positions)
        presents = []
        for i, layer in enumerate(self.model.layers):
            pk, pv = (None, None) if past is None else (past[2 * i], past[2 * i + 1])
            h, present = layer(h, cos, sin, pk, pv)
            presents += list(present)
        h = self.model.norm(h)
        return self.unembed(h), presents

    def forward(self, tokens):
        return self.run(tokens)[0]


class LlamaWithPast(nn.Module):
    """The decoder-with-past form of a LlamaForCausalLM (shares its modules and weights):
    forward(tokens, past_key_0, past_value_0, past_key_1, ...) with past [B, kv_heads, P, hd]
    -> (logits, present_key_0, present_value_0, ...) with present [B, kv_heads, P + S, hd];
    positions run from P."""

    def __init__(self, lm: LlamaForCausalLM):
        super().__init__()
        self.settings = lm.settings
        self.model = lm.model            # the same modules: the same parameter names
        self.unembed = lm.unembed

    run = LlamaForCausalLM.run

    def forward(self, tokens, *past):
        logits, presents = self.run(tokens, list(past))
        return (logits, *presents)


# =============================================================================================
# 2. GPT-2-style
# =============================================================================================
class GPT2Settings:
    vocab_size = 272
    n_positions = 64
    n_embd = 96
    n_head = 4
    n_layer = 2
    layer_norm_epsilon = 1e-5


class Conv1D(nn.Module):
    """GPT-2's Conv1D: weight [in, out]; addmm on a 2-D view (exported as Gemm)."""

    def __init__(self, nx, nf):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class GPT2Attention(nn.Module):
    def __init__(self, s: GPT2Settings):
        super().__init__()
        self.n_head = s.n_head
        self.split_size = s.n_embd
        self.head_dim = s.n_embd // s.n_head
        self.c_attn = Conv1D(s.n_embd, 3 * s.n_embd)
        self.c_proj = Conv1D(s.n_embd, s.n_embd)
        causal = torch.tril(torch.ones((s.n_positions, s.n_positions), dtype=torch.bool))
        self.register_buffer("bias", causal.view(1, 1, s.n_positions, s.n_positions), persistent=False)

    def _heads(self, x):
        new_shape = x.size()[:-1] + (self.n_head, self.head_dim)
        return x.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(self.split_size, dim=2)
        q = self._heads(q) * (1.0 / math.sqrt(self.head_dim))    # scale folded into q
        k = self._heads(k)
        v = self._heads(v)
        w = torch.matmul(q, k.transpose(-1, -2))
        t = x.size(-2)
        causal = self.bias[:, :, :t, :t]
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        w = F.softmax(w, dim=-1)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous()
        a = a.view(a.size()[:-2] + (self.n_head * self.head_dim,))
        return self.c_proj(a)


class GPT2MLP(nn.Module):
    def __init__(self, s: GPT2Settings):
        super().__init__()
        self.c_fc = nn.Linear(s.n_embd, 4 * s.n_embd)          # MatMul + Add
        self.c_proj = nn.Linear(4 * s.n_embd, s.n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, s: GPT2Settings):
        super().__init__()
        self.ln_1 = nn.LayerNorm(s.n_embd, eps=s.layer_norm_epsilon)
        self.attn = GPT2Attention(s)
        self.ln_2 = nn.LayerNorm(s.n_embd, eps=s.layer_norm_epsilon)
        self.mlp = GPT2MLP(s)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Body(nn.Module):
    def __init__(self, s: GPT2Settings):
        super().__init__()
        self.wte = nn.Embedding(s.vocab_size, s.n_embd)
        self.wpe = nn.Embedding(s.n_positions, s.n_embd)
        self.h = nn.ModuleList([GPT2Block(s) for _ in range(s.n_layer)])
        self.ln_f = nn.LayerNorm(s.n_embd, eps=s.layer_norm_epsilon)


class GPT2LMHeadModel(nn.Module):
    """tokens i64[B, T] (T <= n_positions) -> logits [B, T, V]; head tied to wte."""

    def __init__(self, s: GPT2Settings = GPT2Settings()):
        super().__init__()
        self.settings = s
        self.transformer = GPT2Body(s)

    def forward(self, tokens):
        tr = self.transformer
        positions = torch.arange(tokens.size(-1), dtype=torch.long).unsqueeze(0)
        h = tr.wte(tokens) + tr.wpe(positions)
        for blk in tr.h:
            h = blk(h)
        h = tr.ln_f(h)
        return F.linear(h, tr.wte.weight)                     # tied head


# =============================================================================================
# PHOTON-like hierarchical models: shared building blocks with per-model spellings
# =============================================================================================
class HierSettings:
    """Hyper-parameters of a hierarchical model; `spell` picks the graph spellings."""

    def __init__(self, **kw):
        self.vocab = kw.pop("vocab")
        self.width = kw.pop("width")
        self.chunks = tuple(kw.pop("chunks"))            # C_1..C_L
        self.prefix = kw.pop("prefix")                   # R
        self.heads = kw.pop("heads")
        self.kv_heads = kw.pop("kv_heads")
        self.head_dim = kw.pop("head_dim")
        self.ffn = kw.pop("ffn")
        self.enc_depth = tuple(kw.pop("enc_depth"))      # per level 1..L
        self.dec_depth = tuple(kw.pop("dec_depth"))      # per level 1..L (level 1 = token decoder)
        self.eps = kw.pop("eps")
        self.base = kw.pop("base")
        self.spell = kw.pop("spell")                     # dict, see HierBlock & co.
        self.table_len = kw.pop("table_len", 64)
        assert not kw, kw

    @property
    def levels(self):
        return len(self.chunks)

    @property
    def meta(self):
        return int(np.prod(self.chunks))


class InOutLinear(nn.Module):
    """y = x @ W (+ b) with W stored [in, out]: a MatMul on the initializer itself."""

    def __init__(self, n_in, n_out, bias):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(n_in, n_out))
        self.offset = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        y = torch.matmul(x, self.kernel)
        return y + self.offset if self.offset is not None else y


def make_linear(kind, n_in, n_out, bias):
    return InOutLinear(n_in, n_out, bias) if kind == "inout" else nn.Linear(n_in, n_out, bias=bias)


class ScaleNorm(nn.Module):
    """RMSNorm in one of three spellings:
    "pow_neg_half":  x * (mean(x*x) + eps)^-0.5 * g      (Mul, ReduceMean, Add, Pow(-0.5))
    "pow_sqrt_div":  g * (x / sqrt(mean(x^2) + eps))     (Pow(2), ReduceMean, Add, Sqrt, Div)
    "rsqrt_mul":     x * rsqrt(mean(x*x) + eps) * g      (Mul, ReduceMean, Add, Sqrt, Reciprocal/Div)
    """

    def __init__(self, dim, eps, kind):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.kind = kind

    def forward(self, x):
        if self.kind == "pow_neg_half":
            return x * (torch.mean(x * x, dim=-1, keepdim=True) + self.eps).pow(-0.5) * self.gain
        if self.kind == "pow_sqrt_div":
            return self.gain * (x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps))
        if self.kind == "rsqrt_mul":
            return x * torch.rsqrt(torch.mean(x * x, -1, keepdim=True) + self.eps) * self.gain
        raise ValueError(self.kind)


class Rope(nn.Module):
    """Rotary tables for `length` positions 0..length-1 of one stream.

    "graph_interleaved": cos/sin [M, hd] (each frequency twice in a row) computed in the graph
                         from arange; GPT-J rotate_every_two (pairs (2i, 2i+1)).
    "graph_half":        cos/sin [M, hd] computed in the graph from arange, cat(freqs, freqs).
    "table_half":        cos/sin [table_len, hd] constant initializers sliced to [:M].
    """

    def __init__(self, s: HierSettings):
        super().__init__()
        self.kind = s.spell["rope"]
        self.half = s.head_dim // 2
        inv = inverse_frequencies(s.head_dim, s.base)
        if self.kind == "table_half":
            pos = torch.arange(s.table_len, dtype=torch.float32)
            ang = pos[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], -1)
            self.register_buffer("cos_cached", ang.cos())
            self.register_buffer("sin_cached", ang.sin())
        else:
            self.register_buffer("inv_freq", inv, persistent=False)

    def tables(self, x):
        """Tables for the positions 0..x.shape[1]-1 (x [N, M, D])."""
        m = x.shape[1]
        if self.kind == "table_half":
            return self.cos_cached[:m], self.sin_cached[:m]
        ang = torch.arange(m, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        if self.kind == "graph_half":
            ang = torch.cat([ang, ang], -1)                      # [M, hd]: (f0..f_{hd/2-1}) twice
        else:
            ang = torch.stack([ang, ang], -1).flatten(-2)        # [M, hd]: f0 f0 f1 f1 ...
        return torch.cos(ang), torch.sin(ang)

    def apply(self, x, cos, sin):
        """x [..., M, hd] with cos/sin [M, hd]."""
        if self.kind == "graph_interleaved":
            # GPT-J: cos/sin duplicated per pair, rotate_every_two on strided slices
            even = x[..., 0::2]
            odd = x[..., 1::2]
            rot = torch.stack((-odd, even), dim=-1).flatten(-2)
            return x * cos + rot * sin
        half = x.shape[-1] // 2
        swapped = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + swapped * sin


class HierAttention(nn.Module):
    """Causal self-attention over [N, M, D] in one of three spellings (spell["attn"]):

    "gqa_bcast5d":  q [N, kv, group, M, hd], k/v [N, kv, 1, M, hd]; broadcasting MatMul,
                    Mul by 1/sqrt(hd) after QK^T, Greater(arange, arange) -> Where(-inf).
    "mha_div":      q/k/v [N, H, M, hd]; Div by sqrt(hd) after QK^T, additive mask
                    (1 - tril(ones)) * -1e9.
    "mha_baddbmm":  q/k/v [N*H, M, hd]; baddbmm(additive triu(-inf) mask, q, k^T, alpha=1/sqrt(hd)).
    """

    def __init__(self, s: HierSettings):
        super().__init__()
        self.kind = s.spell["attn"]
        self.h, self.kv, self.hd = s.heads, s.kv_heads, s.head_dim
        lin = s.spell["linear"]
        d = s.width
        self.query = make_linear(lin, d, self.h * self.hd, False)
        self.key = make_linear(lin, d, self.kv * self.hd, False)
        self.value = make_linear(lin, d, self.kv * self.hd, False)
        self.mix = make_linear(lin, self.h * self.hd, d, False)

    def forward(self, x, rope: Rope, cos, sin):
        n, m = x.shape[0], x.shape[1]
        h, kv, hd = self.h, self.kv, self.hd
        if self.kind == "gqa_bcast5d":
            g = h // kv
            q = self.query(x).view(n, m, kv, g, hd).permute(0, 2, 3, 1, 4)     # [N, kv, g, M, hd]
            k = self.key(x).view(n, m, kv, 1, hd).permute(0, 2, 3, 1, 4)       # [N, kv, 1, M, hd]
            v = self.value(x).view(n, m, kv, 1, hd).permute(0, 2, 3, 1, 4)
            q = rope.apply(q, cos, sin)
            k = rope.apply(k, cos, sin)
            s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))   # [N, kv, g, M, M]
            idx = torch.arange(m)
            future = idx[None, :] > idx[:, None]
            s = s.masked_fill(future, NEG_INF)
            p = torch.softmax(s, dim=-1)
            o = torch.matmul(p, v).permute(0, 3, 1, 2, 4).flatten(2)
            return self.mix(o)
        if self.kind == "mha_div":
            assert kv == h
            q = self.query(x).view(n, m, h, hd).transpose(1, 2)
            k = self.key(x).view(n, m, h, hd).transpose(1, 2)
            v = self.value(x).view(n, m, h, hd).transpose(1, 2)
            q = rope.apply(q, cos, sin)
            k = rope.apply(k, cos, sin)
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
            keep = torch.ones(m, m).tril()
            s = s + (1.0 - keep) * -1e9
            p = F.softmax(s, dim=-1)
            o = torch.matmul(p, v).transpose(1, 2).reshape(n, m, h * hd)
            return self.mix(o)
        if self.kind == "mha_baddbmm":
            assert kv == h
            q = self.query(x).view(n, m, h, hd).transpose(1, 2).reshape(n * h, m, hd)
            k = self.key(x).view(n, m, h, hd).transpose(1, 2).reshape(n * h, m, hd)
            v = self.value(x).view(n, m, h, hd).transpose(1, 2).reshape(n * h, m, hd)
            q = rope.apply(q, cos, sin)
            k = rope.apply(k, cos, sin)
            bias = torch.triu(torch.full((m, m), NEG_INF), diagonal=1)
            s = torch.baddbmm(bias, q, k.transpose(1, 2), beta=1.0, alpha=1.0 / math.sqrt(hd))
            p = torch.softmax(s, dim=-1)
            o = torch.bmm(p, v).view(n, h, m, hd).transpose(1, 2).reshape(n, m, h * hd)
            return self.mix(o)
        raise ValueError(self.kind)


class GatedFFN(nn.Module):
    """SwiGLU: down(silu(gate x) * up x)."""

    def __init__(self, s: HierSettings):
        super().__init__()
        lin = s.spell["linear"]
        self.gate = make_linear(lin, s.width, s.ffn, False)
        self.up = make_linear(lin, s.width, s.ffn, False)
        self.down = make_linear(lin, s.ffn, s.width, False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class HierBlock(nn.Module):
    def __init__(self, s: HierSettings):
        super().__init__()
        self.norm1 = ScaleNorm(s.width, s.eps, s.spell["norm"])
        self.attn = HierAttention(s)
        self.norm2 = ScaleNorm(s.width, s.eps, s.spell["norm"])
        self.ffn = GatedFFN(s)

    def forward(self, x, rope, cos, sin):
        x = x + self.attn(self.norm1(x), rope, cos, sin)
        return x + self.ffn(self.norm2(x))


class HierStack(nn.Module):
    """Causal stack over [N, M, D] with RoPE positions 0..M-1, ending in its own norm."""

    def __init__(self, s: HierSettings, depth):
        super().__init__()
        self.layers = nn.ModuleList([HierBlock(s) for _ in range(depth)])
        self.out_norm = ScaleNorm(s.width, s.eps, s.spell["norm"])

    def forward(self, x, rope: Rope):
        cos, sin = rope.tables(x)
        for b in self.layers:
            x = b(x, rope, cos, sin)
        return self.out_norm(x)


class Merge(nn.Module):
    """Level >= 2 chunker: [B, M, D] -> [B, M/C, C*D] -> norm -> Linear(C*D -> D, bias)."""

    def __init__(self, s: HierSettings, c):
        super().__init__()
        self.c = c
        self.norm = ScaleNorm(c * s.width, s.eps, s.spell["norm"])
        self.proj = make_linear(s.spell["linear"], c * s.width, s.width, True)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1, self.c * x.shape[-1])
        return self.proj(self.norm(x))


class Rollout(nn.Module):
    """A latent-level decoder: previous-unit latents [B, M, D] -> [B, M*C, D].

    bos (start latent) + shift, converter Linear(D -> R*D, bias) to R prefix vectors, and C
    free-running steps of the stack sharing its weights; step j runs the whole window
    (length R + j) and appends its output at the last position."""

    def __init__(self, s: HierSettings, level):
        super().__init__()
        self.c = s.chunks[level - 1]
        self.r = s.prefix
        self.bos = nn.Parameter(torch.empty(s.width))
        self.lift = make_linear(s.spell["linear"], s.width, s.prefix * s.width, True)
        self.net = HierStack(s, s.dec_depth[level - 1])


class TokenWindows(nn.Module):
    """The token-level decoder: windows [R prefix vectors; embeddings of the chunk's first
    C_1 - 1 tokens], outputs at window positions R-1 .. R+C_1-2."""

    def __init__(self, s: HierSettings):
        super().__init__()
        self.c = s.chunks[0]
        self.r = s.prefix
        self.bos = nn.Parameter(torch.empty(s.width))
        self.lift = make_linear(s.spell["linear"], s.width, s.prefix * s.width, True)
        self.tok_embed = nn.Embedding(s.vocab, s.width)
        self.net = HierStack(s, s.dec_depth[0])


def shift_in(x, bos, kind):
    """concat(bos, x[:, :-1]) along the unit axis; bos expanded (Expand) or tiled (Tile)."""
    d = x.shape[-1]
    if kind == "expand":
        first = bos.view(1, 1, -1).expand(x.shape[0], 1, d)
    else:
        first = bos.view(1, 1, -1).repeat(x.shape[0], 1, 1)
    return torch.cat([first, x[:, :-1]], dim=1)


class HierLM(nn.Module):
    """tokens i64[B, T] (T a multiple of C_1...C_L) -> logits [B, T, V]."""

    def __init__(self, s: HierSettings):
        super().__init__()
        self.settings = s
        L = s.levels
        self.small_embed = nn.Embedding(s.vocab, s.width // s.chunks[0])
        self.bottom = nn.ModuleList([HierStack(s, s.enc_depth[l]) for l in range(L)])
        self.merges = nn.ModuleList([Merge(s, s.chunks[l]) for l in range(1, L)])
        self.ups = nn.ModuleList([Rollout(s, l) for l in range(2, L + 1)])   # level l at index l-2
        self.tokdec = TokenWindows(s)
        self.readout = make_linear(s.spell["linear"], s.width, s.vocab, False)   # untied
        self.rope = Rope(s)

    def head_param(self):
        return self.readout.kernel if isinstance(self.readout, InOutLinear) else self.readout.weight

    def encode(self, tokens):
        s = self.settings
        x = self.small_embed(tokens)                                   # [B, T, D/C1]
        x = x.reshape(x.shape[0], -1, s.width)                         # concat chunker
        outs = [self.bottom[0](x, self.rope)]
        for l in range(1, s.levels):
            outs.append(self.bottom[l](self.merges[l - 1](outs[-1]), self.rope))
        return outs

    def roll(self, level, latent):
        dec = self.ups[level - 2]
        s = self.settings
        prev = shift_in(latent, dec.bos, s.spell["shift"])
        b = prev.shape[0]
        win = dec.lift(prev).reshape(-1, dec.r, s.width)              # [B*M, R, D]
        steps = []
        for j in range(dec.c):
            y = dec.net(win, self.rope)[:, -1:]                     # output at the last position
            steps.append(y)
            if j + 1 < dec.c:
                win = torch.cat([win, y], dim=1)
        return torch.cat(steps, dim=1).reshape(b, -1, s.width)

    def forward(self, tokens):
        s = self.settings
        xs = self.encode(tokens)
        latent = xs[-1]
        for level in range(s.levels, 1, -1):
            latent = self.roll(level, latent)
        tl = self.tokdec
        prev = shift_in(latent, tl.bos, s.spell["shift"])             # chunk k uses Xhat1_{k-1}
        b = prev.shape[0]
        prefix = tl.lift(prev).reshape(-1, tl.r, s.width)              # [B*M1, R, D]
        emb = tl.tok_embed(tokens).reshape(-1, tl.c, s.width)[:, : tl.c - 1]
        h = tl.net(torch.cat([prefix, emb], dim=1), self.rope)      # [B*M1, R+C1-1, D]
        h = h[:, tl.r - 1:].reshape(b, -1, s.width)
        return self.readout(h)


PHOTON_L2_GQA = dict(vocab=200, width=64, chunks=(4, 4), prefix=2, heads=4, kv_heads=2, head_dim=16,
                     ffn=80, enc_depth=(2, 2), dec_depth=(2, 2), eps=1e-5, base=10000.0,
                     spell=dict(linear="inout", norm="pow_neg_half", rope="graph_interleaved",
                                attn="gqa_bcast5d", shift="expand"))
PHOTON_L3 = dict(vocab=200, width=64, chunks=(2, 2, 2), prefix=2, heads=4, kv_heads=4, head_dim=16,
                 ffn=96, enc_depth=(2, 1, 1), dec_depth=(1, 1, 1), eps=1e-6, base=50000.0,
                 table_len=64,
                 spell=dict(linear="torch", norm="pow_sqrt_div", rope="table_half", attn="mha_div",
                            shift="expand"))
BLOCK = dict(vocab=256, width=80, chunks=(4,), prefix=2, heads=5, kv_heads=5, head_dim=16,
             ffn=192, enc_depth=(2,), dec_depth=(2,), eps=1e-5, base=10000.0,
             spell=dict(linear="torch", norm="rsqrt_mul", rope="graph_half", attn="mha_baddbmm",
                        shift="tile"))


# =============================================================================================
# initialisation: O(1) activations, then the head scaled so that logits have std ~4
# =============================================================================================
def init_random(model, seed):
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return mean + std * torch.randn(shape, generator=g)

    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Embedding):
                mod.weight.copy_(normal(mod.weight.shape, 1.0))
            elif isinstance(mod, nn.Linear):
                mod.weight.copy_(normal(mod.weight.shape, 1.0 / math.sqrt(mod.weight.shape[1])))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias.shape, 0.1))
            elif isinstance(mod, (Conv1D, InOutLinear)):
                w = mod.weight if isinstance(mod, Conv1D) else mod.kernel
                b = mod.bias if isinstance(mod, Conv1D) else mod.offset
                w.copy_(normal(w.shape, 1.0 / math.sqrt(w.shape[0])))
                if b is not None:
                    b.copy_(normal(b.shape, 0.1))
            elif isinstance(mod, (LlamaRMSNorm,)):
                mod.weight.copy_(normal(mod.weight.shape, 0.1, 1.0))
            elif isinstance(mod, ScaleNorm):
                mod.gain.copy_(normal(mod.gain.shape, 0.1, 1.0))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(normal(mod.weight.shape, 0.1, 1.0))
                mod.bias.copy_(normal(mod.bias.shape, 0.1))
            elif isinstance(mod, (Rollout, TokenWindows)):
                mod.bos.copy_(normal(mod.bos.shape, 1.0))


def calibrate(model, tokens, target_std=4.0):
    """Scale the vocabulary projection (GPT-2: the final LayerNorm, the head being tied) so
    that the logits of `tokens` have standard deviation target_std."""
    with torch.no_grad():
        std = float(model(tokens).std())
        k = target_std / std
        if isinstance(model, GPT2LMHeadModel):
            model.transformer.ln_f.weight.mul_(k)
            model.transformer.ln_f.bias.mul_(k)
        else:
            model.head_param().mul_(k)


def build(name, seed):
    """-> (torch module to export, the model) with seeded random weights."""
    torch.manual_seed(seed)
    if name in ("llama", "llama_past"):
        m = LlamaForCausalLM()
    elif name == "gpt2":
        m = GPT2LMHeadModel()
    elif name == "photon_l2_gqa":
        m = HierLM(HierSettings(**PHOTON_L2_GQA))
    elif name == "photon_l3":
        m = HierLM(HierSettings(**PHOTON_L3))
    elif name == "block":
        m = HierLM(HierSettings(**BLOCK))
    else:
        raise ValueError(name)
    m.eval()
    init_random(m, seed)
    vocab = m.settings.vocab_size if hasattr(m.settings, "vocab_size") else m.settings.vocab
    cal = torch.randint(0, vocab, (2, 32), generator=torch.Generator().manual_seed(seed + 1))
    calibrate(m, cal)
    if name == "llama_past":
        return LlamaWithPast(m).eval(), m
    return m, m

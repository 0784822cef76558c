#!/usr/bin/env python3
"""Builds the independent model zoo: for every model of zoo_models.py, exports
test/zoo/<name>/model.onnx (legacy TorchScript exporter), runs it with ONNX Runtime
(onnxruntime-node, through ort_run.js) on two batch/sequence shapes and writes
test/zoo/<name>/ref.npz (tokens_k, logits_k from ONNX Runtime) and info.json.

    nice -n 10 /usr/bin/python3 test/zoo/make_zoo.py            # all models
    nice -n 10 /usr/bin/python3 test/zoo/make_zoo.py --only gpt2 llama

Deterministic (fixed seeds, one thread). Validates every export: onnx.checker, ORT on both
shapes, max |torch - ORT| < 1e-4, logits std in [2, 8], greedy margin, no name or metadata
of docs/onnx-convention.md, size. Needs torch, onnx, numpy, node and onnxruntime-node
(PHOTON_NPM_MODULES, default .deps/npm/node_modules, as scripts/setup.sh installs it).
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import zoo_models as zm  # noqa: E402

MODULES = os.environ.get("PHOTON_NPM_MODULES", os.path.join(ROOT, ".deps", "npm", "node_modules"))
NODE = os.environ.get("NODE", "node")
SHAPES = [(1, 32), (3, 16)]
MIN_MARGIN = 0.02          # top1 - top2 logit gap required at every position of the stored tokens
TORCH_ORT_TOL = 1e-4
MAX_BYTES = 1_600_000

# Names of the reference's convention that must not appear anywhere in a zoo export.
FORBIDDEN_SUBSTRINGS = ["photon", "lm_head", "emb_enc", "enc1", "enc2", "enc3", "dec1", "dec2",
                        "dec3", "final_norm", "attn_norm", "mlp_norm", "w_gate", "w_up", "w_down",
                        "conv.w", "conv.b", "TokenEmbedding", "EncoderStack", "ChunkCompress",
                        "LatentDecoder", "TokenDecoder", "LMHead"]
FORBIDDEN_PARTS = {"wq", "wk", "wv", "wo", "start", "conv", "emb", "stack", "compress", "Chunk",
                   "Shift"}

# name -> seed, opset, constant folding, what the graph spells how (checked against the ops).
MODELS = collections.OrderedDict([
    ("llama", dict(seed=101, opset=14, fold=True)),
    ("llama_past", dict(seed=101, opset=14, fold=True)),    # same seed: the llama weights
    ("gpt2", dict(seed=202, opset=13, fold=True)),
    ("photon_l2_gqa", dict(seed=303, opset=17, fold=True)),
    ("photon_l3", dict(seed=405, opset=15, fold=False)),
    ("block", dict(seed=505, opset=16, fold=True)),
    # Function-form exports (torch.onnx export_modules_as_functions): the same weights as
    # their base model, each listed module class a model-local function (domain zoo_models)
    # called from the graph or from another function's body.
    ("llama_fn", dict(seed=101, opset=15, fold=True, base="llama",
                      functions=("LlamaLayer", "LlamaRMSNorm"))),
    ("photon_l2_fn", dict(seed=303, opset=17, fold=True, base="photon_l2_gqa",
                          functions=("HierAttention", "GatedFFN", "ScaleNorm"))),
])

SPELLINGS = {
    "llama": {
        "embedding": "Gather on model.embed_tokens.weight [V, D]",
        "norm": "RMSNorm x * rsqrt(mean(x^2) + eps) * w: Pow(x, 2), ReduceMean(-1, keepdims), Add(eps), Sqrt, Div(1, .), Mul, Mul(w)",
        "linear": "nn.Linear(bias=False): MatMul with a pre-transposed [in, out] initializer (constant-folded, onnx::MatMul_*)",
        "rope": "rotate-half (HF), cos/sin [T, hd] computed once in the graph: Range(T) -> Cast -> Unsqueeze -> Mul(inv_freq constant) -> Concat(f, f) -> Cos / Sin; q*cos + rotate_half(q)*sin with rotate_half = static Slices [:hd/2], [hd/2:], Neg, Concat",
        "attention": "[B, H, T, hd]; MatMul(q, Transpose(k)) then Div by sqrt(hd)",
        "mask": "additive torch.triu(torch.full((T, T), -inf), 1) per layer: ConstantOfShape, Trilu(upper, k=1), Add",
        "gqa": "repeat_interleave(H/Hkv) of K and V on the head axis of the [B, T, kv, hd] view (Transpose, repeat_interleave(dim=2), Transpose); torch 1.13 exports it as Split per KV head, Unsqueeze, Expand(x group), Reshape, Concat (with Shape/Equal/Where shape arithmetic)",
        "mlp": "SwiGLU down(silu(gate x) * up x), silu = Sigmoid * x",
        "head": "untied unembed (MatMul)",
    },
    "llama_past": {
        "same_as": "llama (the same weights); additionally:",
        "past": "inputs past_key_values.<i>.key/.value [B, kv_heads, P, hd] concatenated (Concat axis 2) before attention; outputs present.<i>.key/.value [B, kv_heads, P+S, hd] (keys after RoPE)",
        "positions": "Range(0, S) + P, P read from the past's shape",
        "mask": "boolean Greater(arange(P+S), arange(S) + P) -> masked_fill(finfo(f32).min): Where",
    },
    "gpt2": {
        "embedding": "Gather(wte) + Gather(wpe, Range(T)) learned absolute positions",
        "norm": "nn.LayerNorm(eps 1e-5), opset 13: decomposed ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add",
        "linear": "attention c_attn / c_proj: GPT-2 Conv1D = addmm on a 2-D view -> Reshape, Gemm, Reshape (weight [in, out]); MLP c_fc / c_proj: nn.Linear with bias -> MatMul + Add",
        "attention": "fused QKV then Split(3 x D) along the last axis; MHA [B, H, T, hd]; scale folded into q (Mul by 1/sqrt(hd)) before MatMul",
        "mask": "boolean tril buffer [1, 1, n_positions, n_positions] sliced to [:T, :T] -> Where(mask, scores, finfo(f32).min)",
        "mlp": "GELU tanh approximation (decomposed: Mul, Pow(3), Add, Tanh ...)",
        "head": "tied to wte: F.linear(h, wte.weight); after constant folding the graph holds wte [V, D] for the Gather and a transposed copy [D, V] for the MatMul",
    },
    "photon_l2_gqa": {
        "embedding": "Gather(small_embed.weight [V, D/C1]) then Reshape [B, T/C1, D] (concat chunker)",
        "norm": "RMSNorm x * (mean(x*x) + eps)^-0.5 * g: Mul(x, x), ReduceMean, Add, Pow(., -0.5), Mul, Mul",
        "linear": "InOutLinear: weights stored [in, out], MatMul directly on the initializer (+ Add bias); the rollout's unrolled steps share the same initializers",
        "rope": "interleaved (GPT-J) pairs (2i, 2i+1): cos/sin [M, hd] (each frequency twice in a row: stack(f, f).flatten) computed in the graph from Range(M) per stack call; x*cos + rotate_every_two(x)*sin with rotate_every_two = strided Slices [0::2], [1::2], Neg, Unsqueeze+Concat (stack), Reshape (flatten)",
        "attention": "GQA as a broadcasting MatMul: q [N, kv, group, M, hd] x k^T [N, kv, 1, hd, M] (no repeat/expand of K/V); Mul by 1/sqrt(hd) after QK^T",
        "mask": "Greater(Range(M)[None], Range(M)[:, None]) boolean -> masked_fill(-inf): Cast, Where",
        "merge": "level-2 chunker: Reshape [B, M/4, 4D], RMSNorm(4D), MatMul + Add",
        "shift": "Concat(Expand(bos as a [1, 1, D] initializer (constant-folded view, onnx::Expand_*), [B, 1, D]), Slice(x, 0..-1)) on the unit axis",
        "rollout": "latent decoder unrolled C2 = 4 free-running steps; windows of length 2, 3, 4, 5 (Concat of the previous window and Slice(h, -1:)); the whole window is re-run each step (no cache)",
        "token_decoder": "windows Concat(lift(prev) reshaped [B*M1, R, D], Slice(Reshape(Gather(tok_embed), [B*M1, 4, D]), 0..3)); output Slice [R-1:] reshaped [B, T, D]",
        "head": "untied readout (MatMul on [D, V] initializer)",
    },
    "photon_l3": {
        "embedding": "Gather(small_embed.weight [V, D/C1]) then Reshape [B, T/C1, D]",
        "norm": "RMSNorm g * (x / sqrt(mean(x^2) + eps)): Pow(2), ReduceMean, Add, Sqrt, Div, Mul",
        "linear": "nn.Linear exported WITHOUT constant folding: Transpose(W [out, in]) -> MatMul (+ Add bias), weights named by the module path",
        "rope": "rotate-half with constant cos/sin tables [64, hd] as initializers (rope.cos_cached / rope.sin_cached) sliced to [:M] (Slice)",
        "attention": "MHA [N, H, M, hd]; Div by sqrt(hd) after QK^T",
        "mask": "additive (1 - tril(ones(M, M))) * -1e9: ConstantOfShape, Trilu(lower), Sub, Mul, Add",
        "merge": "levels 2, 3: Reshape [B, M/2, 2D], RMSNorm(2D), Transpose + MatMul + Add",
        "shift": "Concat(Expand(Reshape(bos, [1, 1, D]), [B, 1, D]), Slice[:-1]) (no constant folding: the Reshape stays)",
        "rollout": "two latent decoders (levels 3 and 2), each unrolled C = 2 free-running steps (windows of length 2, 3)",
        "token_decoder": "windows [R = 2 prefix vectors; embedding of the chunk's first token] (length 3)",
        "head": "untied readout",
    },
    "block": {
        "embedding": "Gather(small_embed.weight [V, D/4]) then Reshape [B, T/4, D]",
        "norm": "RMSNorm x * rsqrt(mean(x*x) + eps) * g: Mul(x, x), ReduceMean, Add, Sqrt, Div(1, .), Mul, Mul",
        "linear": "nn.Linear(bias=False; converter with bias): MatMul with constant-folded pre-transposed initializers",
        "rope": "rotate-half, cos/sin [M, hd] computed in the graph from Range(M), Concat(f, f); rotate-half with the split point computed from Shape (Div, Cast) -> Slice, Neg, Concat",
        "attention": "MHA with heads folded into the batch [N*H, M, hd]; torch.baddbmm(mask, q, k^T, alpha=1/sqrt(hd)): MatMul, Mul(alpha), Add; then bmm (MatMul)",
        "mask": "additive triu(full(-inf), 1) (Trilu) as baddbmm's input",
        "shift": "Concat(Tile(bos [1, 1, D] (folded), [B, 1, 1]), Slice[:-1]): torch's repeat() = Expand to rank 3 then Tile",
        "token_decoder": "windows [R = 2 prefix vectors; embedding of the chunk's first 3 tokens] (length 5)",
        "head": "untied readout (nn.Linear)",
    },
}

for _v in ("llama_fn", "photon_l2_fn"):
    _b = MODELS[_v]["base"]
    SPELLINGS[_v] = {"same_as": _b + " (the same weights); additionally:",
                     "functions": "export_modules_as_functions={%s}: each a model-local "
                     "function of domain zoo_models, nested where one module holds another"
                     % ", ".join(MODELS[_v]["functions"])}

# ops that must appear (so the spelling text above stays true)
EXPECT_OPS = {
    "llama": ["Trilu", "Range", "Cos", "Sin", "Softmax", "Sigmoid", "Gather"],
    "llama_past": ["Range", "Where", "Greater", "Concat"],
    "gpt2": ["Gemm", "Split", "Where", "Tanh", "Gather"],
    "photon_l2_gqa": ["Range", "Cos", "Sin", "Where", "Greater", "Expand"],
    "photon_l3": ["Transpose", "Sqrt", "Div", "Trilu", "Slice"],
    "block": ["Trilu", "Tile", "Range"],
}
for _v in ("llama_fn", "photon_l2_fn"):
    EXPECT_OPS[_v] = EXPECT_OPS[MODELS[_v]["base"]]


def describe_config(name, m):
    s = m.settings
    if name in ("llama", "llama_past"):
        return dict(family="decoder-only (LLaMA-style)", vocab=s.vocab_size, width=s.hidden_size,
                    layers=s.num_hidden_layers, heads=s.num_attention_heads,
                    kv_heads=s.num_key_value_heads, head_dim=s.head_dim, ffn=s.intermediate_size,
                    norm="RMSNorm", eps=s.rms_norm_eps, rope_base=s.rope_theta,
                    rope_layout="rotate-half", tied_head=False,
                    logits_semantics="logits[:, t] is the distribution of token t + 1")
    if name == "gpt2":
        return dict(family="decoder-only (GPT-2-style)", vocab=s.vocab_size, width=s.n_embd,
                    layers=s.n_layer, heads=s.n_head, kv_heads=s.n_head, head_dim=s.n_embd // s.n_head,
                    ffn=4 * s.n_embd, norm="LayerNorm", eps=s.layer_norm_epsilon,
                    positions="learned absolute, n_positions = %d" % s.n_positions,
                    activation="gelu (tanh approximation)", rope_base=None, tied_head=True,
                    logits_semantics="logits[:, t] is the distribution of token t + 1")
    rope = {"graph_interleaved": "interleaved (GPT-J), computed in the graph",
            "graph_half": "rotate-half, computed in the graph",
            "table_half": "rotate-half, constant tables [%d, hd]" % s.table_len}[s.spell["rope"]]
    return dict(family="block (L = 1)" if s.levels == 1 else "photon", vocab=s.vocab, width=s.width,
                levels=s.levels, chunk_sizes=list(s.chunks), prefix_R=s.prefix,
                meta_context=s.meta, embedding_width=s.width // s.chunks[0],
                enc_layers=list(s.enc_depth), dec_layers=list(s.dec_depth),
                heads=s.heads, kv_heads=s.kv_heads, head_dim=s.head_dim, ffn=s.ffn,
                norm="RMSNorm", eps=s.eps, rope_base=s.base, rope_layout=rope,
                rope_positions="unit index in encoders, window index in decoders",
                level1_shift=True, token_decoder_input="decoder-side Xhat1" if s.levels >= 2 else "X1",
                latent_decoder="free-running, %s steps" % list(s.chunks[1:]) if s.levels >= 2 else None,
                tied_head=False,
                logits_semantics="logits[:, t] is the distribution of token t itself")


def names_in(model):
    g = model.graph
    out = [g.name, model.producer_name, model.doc_string or "", g.doc_string or ""]
    for p in model.metadata_props:
        out += [p.key, p.value]
    for n in g.node:
        out += [n.name, n.doc_string or ""] + list(n.input) + list(n.output)
    for f in model.functions:
        out += [f.name, f.domain] + list(f.input) + list(f.output)
        for n in f.node:
            out += [n.name, n.doc_string or ""] + list(n.input) + list(n.output)
    out += [i.name for i in g.initializer]
    out += [v.name for v in list(g.input) + list(g.output) + list(g.value_info)]
    return out


def check_names(model):
    bad = []
    for s in names_in(model):
        for f in FORBIDDEN_SUBSTRINGS:
            if f.lower() in s.lower():
                bad.append((s, f))
        for part in re.split(r"[./:]", s):
            if part in FORBIDDEN_PARTS:
                bad.append((s, part))
    return bad


def ort_run(model_path, feeds, tmp):
    """feeds: name -> numpy array (int64 or float32). -> name -> float32 array."""
    spec = {}
    for i, (name, a) in enumerate(feeds.items()):
        f = os.path.join(tmp, "in%d.bin" % i)
        a = np.ascontiguousarray(a)
        a.tofile(f)
        spec[name] = {"dtype": {"int64": "int64", "float32": "float32"}[str(a.dtype)],
                      "dims": list(a.shape), "file": f}
    with open(os.path.join(tmp, "inputs.json"), "w") as fh:
        json.dump(spec, fh)
    outdir = os.path.join(tmp, "out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    r = subprocess.run([NODE, os.path.join(HERE, "ort_run.js"), MODULES, model_path,
                        os.path.join(tmp, "inputs.json"), outdir], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("onnxruntime failed on %s: %s" % (model_path, r.stderr.strip()))
    with open(os.path.join(outdir, "outputs.json")) as fh:
        meta = json.load(fh)
    return {n: np.fromfile(os.path.join(outdir, n + ".bin"), dtype=np.float32).reshape(m["dims"])
            for n, m in meta.items()}


def margin(logits):
    top2 = np.sort(logits.reshape(-1, logits.shape[-1]), axis=-1)[:, -2:]
    return float(np.min(top2[:, 1] - top2[:, 0]))


def empty_past(m, b):
    s = m.settings
    z = np.zeros((b, s.num_key_value_heads, 0, s.head_dim), np.float32)
    return [z] * (2 * s.num_hidden_layers)


def past_names(m):
    out_in, out_out = [], []
    for i in range(m.settings.num_hidden_layers):
        out_in += ["past_key_values.%d.key" % i, "past_key_values.%d.value" % i]
        out_out += ["present.%d.key" % i, "present.%d.value" % i]
    return out_in, out_out


def torch_run(mod, tokens, past=None):
    with torch.no_grad():
        if past is None:
            return mod(torch.from_numpy(tokens)).numpy()
        return [t.numpy() for t in mod(torch.from_numpy(tokens), *[torch.from_numpy(p) for p in past])]


def choose_tokens(name, mod, m, vocab, seed, k, shape):
    """Seeded tokens whose (torch) logits have a top1 - top2 gap >= MIN_MARGIN everywhere."""
    for attempt in range(500):
        rng = np.random.default_rng(seed * 1000 + k * 100 + attempt)
        tokens = rng.integers(0, vocab, size=shape, dtype=np.int64)
        if name == "llama_past":
            lg = torch_run(mod, tokens, empty_past(m, shape[0]))[0]
        else:
            lg = torch_run(mod, tokens)
        if margin(lg) >= MIN_MARGIN:
            return tokens, attempt
    raise RuntimeError("%s: no tokens with margin >= %g" % (name, MIN_MARGIN))


def export(name, mod, m, cfg, path):
    s = m.settings
    if name == "llama_past":
        pin, pout = past_names(m)
        ex_tokens = torch.randint(0, s.vocab_size, (2, 3), generator=torch.Generator().manual_seed(7))
        ex_past = tuple(torch.randn(2, s.num_key_value_heads, 5, s.head_dim) for _ in pin)
        args = (ex_tokens,) + ex_past
        in_names, out_names = ["tokens"] + pin, ["logits"] + pout
        dyn = {"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
        for n in pin:
            dyn[n] = {0: "batch", 2: "past_seq"}
        for n in pout:
            dyn[n] = {0: "batch", 2: "total_seq"}
    else:
        vocab = s.vocab_size if hasattr(s, "vocab_size") else s.vocab
        t = 2 * (s.meta if hasattr(s, "meta") else 4)
        args = (torch.randint(0, vocab, (2, max(t, 8)), generator=torch.Generator().manual_seed(7)),)
        in_names, out_names = ["tokens"], ["logits"]
        dyn = {"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    extra = {}
    if cfg.get("functions"):
        extra["export_modules_as_functions"] = {getattr(zm, c) for c in cfg["functions"]}
    torch.onnx.export(mod, args, path, input_names=in_names, output_names=out_names,
                      dynamic_axes=dyn, opset_version=cfg["opset"],
                      do_constant_folding=cfg["fold"], export_params=True, **extra)
    return in_names, out_names, dyn


def build_one(name, out_root, tmp):
    cfg = MODELS[name]
    base = cfg.get("base", name)
    mod, m = zm.build(base, cfg["seed"])
    s = m.settings
    vocab = s.vocab_size if hasattr(s, "vocab_size") else s.vocab
    d = os.path.join(out_root, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    in_names, out_names, dyn = export(name, mod, m, cfg, path)

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    problems = []
    bad = check_names(model)
    if bad:
        problems.append("convention names in the export: %s" % sorted(set(bad))[:10])
    if len(model.metadata_props):
        problems.append("metadata_props present")
    fdomains = {f.domain for f in model.functions}
    if cfg.get("functions"):
        # torch names a second variant of a module's function <Class>.1
        fnames = sorted({f.name.split(".")[0] for f in model.functions})
        if fnames != sorted(cfg["functions"]) or fdomains != {"zoo_models"}:
            problems.append("functions %s of %s, expected %s" % (fnames, fdomains, cfg["functions"]))
    elif len(model.functions):
        problems.append("functions present")
    if any(o.domain not in ("", "ai.onnx") and o.domain not in fdomains for o in model.opset_import):
        problems.append("custom domains present")
    ops = collections.Counter(n.op_type for n in model.graph.node)
    for f in model.functions:
        ops.update(n.op_type for n in f.node)
    missing = [o for o in EXPECT_OPS[name] if o not in ops]
    if missing:
        problems.append("expected ops missing: %s" % missing)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        problems.append("model.onnx is %d bytes" % size)
    blobs = collections.Counter(numpy_helper.to_array(i).tobytes() for i in model.graph.initializer
                                if np.prod(i.dims) > 64)
    dup = sum(c - 1 for c in blobs.values() if c > 1)

    arrays, runs = {}, []
    for k, shape in enumerate(SHAPES):
        tokens, attempt = choose_tokens(name, mod, m, vocab, cfg["seed"], k, shape)
        if name == "llama_past":
            past = empty_past(m, shape[0])
            feeds = dict(zip(in_names, [tokens] + past))
            got = ort_run(path, feeds, tmp)
            want_t = torch_run(mod, tokens, past)
            diff = max(float(np.max(np.abs(got[n] - w))) for n, w in zip(out_names, want_t))
            logits = got["logits"]
        else:
            logits = ort_run(path, {"tokens": tokens}, tmp)["logits"]
            diff = float(np.max(np.abs(logits - torch_run(mod, tokens))))
        if logits.shape != shape + (vocab,):
            problems.append("shape %d: logits %s" % (k, logits.shape))
        std = float(logits.std())
        mg = margin(logits)
        if diff >= TORCH_ORT_TOL:
            problems.append("shape %d: max |torch - ORT| = %g" % (k, diff))
        if not 2.0 <= std <= 8.0:
            problems.append("shape %d: logits std %g" % (k, std))
        if mg < MIN_MARGIN / 2:
            problems.append("shape %d: ORT greedy margin %g" % (k, mg))
        arrays["tokens_%d" % k] = tokens
        arrays["logits_%d" % k] = logits.astype(np.float32)
        runs.append(dict(batch=shape[0], seq=shape[1], token_seed_attempt=attempt,
                         max_abs_torch_vs_ort=diff, logits_std=std, logits_max_abs=float(np.abs(logits).max()),
                         min_greedy_margin=mg))

    steps = {}
    if name == "llama_past":
        # one step with a non-empty past: P = 8 prefix tokens (past = ORT's presents of the
        # prefix), then S = 1 and S = 4 new tokens; checked against the full-sequence logits.
        rng = np.random.default_rng(cfg["seed"] * 1000 + 900)
        b, p = 2, 8
        full = rng.integers(0, vocab, size=(b, p + 4), dtype=np.int64)
        pre = ort_run(path, dict(zip(in_names, [full[:, :p]] + empty_past(m, b))), tmp)
        past = [pre[n] for n in out_names[1:]]
        full_logits = ort_run(path, dict(zip(in_names, [full] + empty_past(m, b))), tmp)["logits"]
        for sl in (1, 4):
            tok = np.ascontiguousarray(full[:, p:p + sl])
            got = ort_run(path, dict(zip(in_names, [tok] + past)), tmp)
            want_t = torch_run(mod, tok, past)
            diff = max(float(np.max(np.abs(got[n] - w))) for n, w in zip(out_names, want_t))
            vs_full = float(np.max(np.abs(got["logits"] - full_logits[:, p:p + sl])))
            if diff >= TORCH_ORT_TOL or vs_full >= TORCH_ORT_TOL:
                problems.append("step S=%d: torch %g, vs full sequence %g" % (sl, diff, vs_full))
            key = "past%d_s%d" % (p, sl)
            arrays[key + ".tokens"] = tok
            for n, a in zip(in_names[1:], past):
                arrays[key + "." + n] = a
            for n in out_names:
                arrays[key + "." + n] = got[n]
            steps[key] = dict(batch=b, past_len=p, seq=sl, max_abs_torch_vs_ort=diff,
                              max_abs_vs_full_sequence_logits=vs_full,
                              arrays=[key + ".tokens"] + [key + "." + n for n in in_names[1:] + out_names])

    np.savez(os.path.join(d, "ref.npz"), **arrays)
    info = collections.OrderedDict(
        name=name, exporter="torch %s torch.onnx.export (TorchScript), do_constant_folding=%s"
        % (torch.__version__, cfg["fold"]),
        opset=cfg["opset"], ir_version=model.ir_version, model_bytes=size,
        initializers=len(model.graph.initializer),
        parameters=int(sum(np.prod(i.dims) for i in model.graph.initializer)),
        duplicate_initializer_payloads=dup,
        inputs=in_names, outputs=out_names, dynamic_axes=dyn, weight_seed=cfg["seed"],
        config=describe_config(base, m), spellings=SPELLINGS[name],
        ops=dict(sorted(ops.items())), nodes=len(model.graph.node),
        shapes=runs, min_margin_required=MIN_MARGIN)
    if steps:
        info["past_steps"] = steps
    if model.functions:
        info["functions"] = [dict(domain=f.domain, name=f.name, nodes=len(f.node))
                             for f in model.functions]
    with open(os.path.join(d, "info.json"), "w") as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")
    return problems, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    names = a.only or list(MODELS)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            problems, info = build_one(name, a.out, tmp)
            r = info["shapes"]
            print("%-14s %8d bytes  opset %d  |torch-ORT| %s  std %s  margin %s  %s" % (
                name, info["model_bytes"], info["opset"],
                " ".join("%.1e" % x["max_abs_torch_vs_ort"] for x in r),
                " ".join("%.2f" % x["logits_std"] for x in r),
                " ".join("%.3f" % x["min_greedy_margin"] for x in r),
                "OK" if not problems else "PROBLEMS"))
            for p in problems:
                print("   - " + p)
            failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Export the vanilla benchmark model (same weights as its photon artifact) for the peers.

usage: /usr/bin/python3 benchmarks/peers/export_peers.py --model DIR [--gguf-py DIR] [--what step,gguf]

DIR is a directory written by benchmarks/models/export_mid.py for a vanilla model
(config.json + state.pt). Writes
  DIR/step.onnx      KV-cached step for ONNX Runtime: tokens i64[B, n], past_k/past_v
                     f32[L, B, P, Hkv, hd] -> logits f32[B, n, V], present_k/present_v
                     f32[L, B, P + n, Hkv, hd] (P = 0 for prefill, n = 1 for a decode step)
  DIR/model-f32.gguf, DIR/model-f16.gguf
                     LLaMA-architecture GGUF for llama.cpp (needs --gguf-py, the gguf-py
                     directory of the llama.cpp clone; benchmarks/peers/build_llama_cpp.sh)
The reference uses rotate-half RoPE (HF layout); llama.cpp's LLaMA architecture expects
interleaved pairs, so wq/wk rows are permuted exactly as convert_hf_to_gguf.py does.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "reference"))
from photon_ref.config import Config  # noqa: E402
from photon_ref.model import build_model  # noqa: E402
from photon_ref.ops import stack_apply, causal_mask  # noqa: E402


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        meta = json.load(f)
    cfg = Config.from_dict(meta["config"])
    if cfg.family != "vanilla":
        raise SystemExit(f"export_peers.py: {d} holds a {cfg.family} model; the peers run the vanilla model")
    model = build_model(cfg)
    model.load_state_dict(torch.load(os.path.join(d, "state.pt")))
    model.eval()
    return cfg, model


class Step(torch.nn.Module):
    """One KV-cached call of the vanilla model (prefill when P = 0, decode when n = 1)."""

    def __init__(self, model):
        super().__init__()
        self.m = model
        self.cfg = model.cfg

    def forward(self, tokens, past_k, past_v):
        c = self.cfg
        x = torch.nn.functional.embedding(tokens, self.m.emb)
        n = tokens.shape[1]
        p = past_k.shape[2]
        pos = torch.arange(n, dtype=torch.float32) + p
        q = torch.arange(n).unsqueeze(1) + p
        k = torch.arange(n + p).unsqueeze(0)
        mask = torch.zeros(n, n + p).masked_fill(k > q, float("-inf"))
        past = [(past_k[i], past_v[i]) for i in range(c.layers)]
        h, new_kv = stack_apply(x, self.m.stack.flat(), c.layers, c.n_heads, c.n_kv_heads, c.head_dim,
                                c.rope_theta, c.norm_eps, pos, mask, past)
        logits = torch.nn.functional.linear(h, self.m.lm_head)
        pk = torch.stack([torch.cat([past_k[i], new_kv[i][0]], 1) for i in range(c.layers)])
        pv = torch.stack([torch.cat([past_v[i], new_kv[i][1]], 1) for i in range(c.layers)])
        return logits, pk, pv


def export_step(d, cfg, model):
    step = Step(model)
    B, P, n = 1, 3, 2
    toks = torch.arange(B * n, dtype=torch.int64).reshape(B, n) % cfg.vocab
    pk = torch.randn(cfg.layers, B, P, cfg.n_kv_heads, cfg.head_dim)
    pv = torch.randn(cfg.layers, B, P, cfg.n_kv_heads, cfg.head_dim)
    path = os.path.join(d, "step.onnx")
    with torch.no_grad():
        torch.onnx.export(step, (toks, pk, pv), path, opset_version=17,
                          input_names=["tokens", "past_k", "past_v"],
                          output_names=["logits", "present_k", "present_v"],
                          dynamic_axes={"tokens": {0: "B", 1: "n"}, "past_k": {1: "B", 2: "P"},
                                        "past_v": {1: "B", 2: "P"}, "logits": {0: "B", 1: "n"},
                                        "present_k": {1: "B", 2: "Pn"}, "present_v": {1: "B", 2: "Pn"}},
                          do_constant_folding=True)
    # Check against the reference forward: prefill of 5 tokens then one step.
    import onnx  # noqa: F401
    with torch.no_grad():
        t = torch.tensor([[5, 17, 3, 99, 42, 7]]) % cfg.vocab
        want = model(t)[0, -1]
        e = torch.zeros(cfg.layers, 1, 0, cfg.n_kv_heads, cfg.head_dim)
        _, k1, v1 = step(t[:, :5], e, e)
        got, _, _ = step(t[:, 5:], k1, v1)
        err = (got[0, -1] - want).abs().max().item()
    print(f"step.onnx written ({os.path.getsize(path) / 1e6:.0f} MB); torch step vs forward max |diff| {err:.2e}")
    if err > 1e-3:
        raise SystemExit("export_peers.py: the step module does not match the reference forward")


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate-half rows -> interleaved pairs."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def export_gguf(d, cfg, model, gguf_py):
    sys.path.insert(0, gguf_py)
    import gguf
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    for ftype, dt in (("f32", np.float32), ("f16", np.float16)):
        path = os.path.join(d, f"model-{ftype}.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_name(f"photon-bench vanilla {cfg.layers}L D{cfg.width}")
        w.add_context_length(max(cfg.context, 32768))
        w.add_embedding_length(cfg.width)
        w.add_block_count(cfg.layers)
        w.add_feed_forward_length(cfg.ffn)
        w.add_rope_dimension_count(cfg.head_dim)
        w.add_head_count(cfg.n_heads)
        w.add_head_count_kv(cfg.n_kv_heads)
        w.add_layer_norm_rms_eps(cfg.norm_eps)
        w.add_rope_freq_base(cfg.rope_theta)
        w.add_vocab_size(cfg.vocab)
        w.add_file_type(gguf.LlamaFileType.ALL_F32 if ftype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
        # A SentencePiece-style vocabulary: the benchmarks feed random token ids, but the
        # loader needs one. <unk>, <s>, </s>, 256 byte tokens, then placeholders.
        toks, scores, types = [b"<unk>", b"<s>", b"</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
        for b in range(256):
            toks.append(f"<0x{b:02X}>".encode())
            scores.append(0.0)
            types.append(6)
        i = 0
        while len(toks) < cfg.vocab:
            toks.append(f"\u2581t{i}".encode())
            scores.append(-float(i))
            types.append(1)
            i += 1
        w.add_tokenizer_model("llama")
        w.add_token_list(toks[:cfg.vocab])
        w.add_token_scores(scores[:cfg.vocab])
        w.add_token_types(types[:cfg.vocab])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)

        def put(name, arr, keep_f32=False):
            a = arr.astype(np.float32 if (keep_f32 or arr.ndim == 1) else dt)
            w.add_tensor(name, np.ascontiguousarray(a))

        put("token_embd.weight", sd["emb"])
        for i in range(cfg.layers):
            p = f"stack.{i}."
            put(f"blk.{i}.attn_norm.weight", sd[p + "attn_norm"])
            put(f"blk.{i}.attn_q.weight", permute(sd[p + "wq"], cfg.n_heads))
            put(f"blk.{i}.attn_k.weight", permute(sd[p + "wk"], cfg.n_kv_heads))
            put(f"blk.{i}.attn_v.weight", sd[p + "wv"])
            put(f"blk.{i}.attn_output.weight", sd[p + "wo"])
            put(f"blk.{i}.ffn_norm.weight", sd[p + "mlp_norm"])
            put(f"blk.{i}.ffn_gate.weight", sd[p + "w_gate"])
            put(f"blk.{i}.ffn_up.weight", sd[p + "w_up"])
            put(f"blk.{i}.ffn_down.weight", sd[p + "w_down"])
        put("output_norm.weight", sd["stack.final_norm"])
        put("output.weight", sd["lm_head"])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"{path} written ({os.path.getsize(path) / 1e6:.0f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="vanilla model directory from export_mid.py")
    ap.add_argument("--gguf-py", default=None, help="llama.cpp's gguf-py directory (for the GGUF files)")
    ap.add_argument("--what", default="step,gguf")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, model = load(args.model)
    what = args.what.split(",")
    if "step" in what:
        export_step(args.model, cfg, model)
    if "gguf" in what:
        if not args.gguf_py or not os.path.isdir(args.gguf_py):
            raise SystemExit("export_peers.py: --gguf-py DIR (llama.cpp/gguf-py) is needed for the GGUF files; "
                             "run benchmarks/peers/build_llama_cpp.sh first")
        export_gguf(args.model, cfg, model, args.gguf_py)


if __name__ == "__main__":
    main()

"""Writes a small random model as photon IR (generic form, docs/ir-contract.md), its
PHOTONW1 weights blob, and float64 numpy reference outputs, for the compiler's tests.

    gen_model.py {vanilla|photon|block} OUTDIR [--seed N]

OUTDIR/model.mlir, OUTDIR/model.weights.bin, OUTDIR/ref.npz (tokens, logits, and for
photon: x1, xh1). The model follows photon-model.md / onnx-convention.md semantics
(pre-RMSNorm LLaMA blocks, rotate-half RoPE, GQA, SwiGLU, chunk / chunk_compress, shift,
converter, free-running latent decoder, token decoder windows).
"""
import argparse
import os
import struct

import numpy as np

EPS = 1e-5
THETA = 10000.0


# ----------------------------------------------------------------------------- blob
def write_blob(path, tensors):
    """tensors: list of (name, float32 array). PHOTONW1 as docs/artifact.md."""
    index = b""
    recs = []
    for name, a in tensors:
        nb = name.encode()
        rec = struct.pack("<H", len(nb)) + nb + struct.pack("<BB", 0, a.ndim)
        rec += b"".join(struct.pack("<q", d) for d in a.shape)
        recs.append(rec)
        index += rec + b"\0" * 16
    align = lambda v: (v + 63) // 64 * 64
    data_off = align(32 + len(index))
    offs, cur = [], data_off
    for _, a in tensors:
        offs.append(cur)
        cur = align(cur + a.nbytes)
    index = b""
    for rec, (_, a), off in zip(recs, tensors, offs):
        index += rec + struct.pack("<QQ", off, a.nbytes)
    with open(path, "wb") as f:
        f.write(b"PHOTONW1" + struct.pack("<IIQQ", 1, len(tensors), len(index), data_off))
        f.write(index)
        for (_, a), off in zip(tensors, offs):
            f.write(b"\0" * (off - f.tell()))
            f.write(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        f.write(b"\0" * (align(f.tell()) - f.tell()))


# ----------------------------------------------------------------------------- IR
class IR:
    def __init__(self, rng, cfg):
        self.rng, self.cfg = rng, cfg
        self.lines, self.n = [], 0
        self.weights = {}  # name -> array
        self.order = []

    def v(self):
        self.n += 1
        return "%%v%d" % self.n

    def emit(self, s):
        self.lines.append("    " + s)

    def weight(self, name, shape, scale=None, ones=False):
        if name not in self.weights:
            if ones:
                a = (1.0 + 0.1 * self.rng.standard_normal(shape)).astype(np.float32)
            else:
                s = scale if scale is not None else 1.0 / np.sqrt(shape[-1])
                a = (s * self.rng.standard_normal(shape)).astype(np.float32)
            self.weights[name] = a
            self.order.append(name)
        r = self.v()
        self.emit('%s = "photon.weight"() {name = "%s"} : () -> %s' % (r, name, T(shape)))
        return r


def T(shape, et="f32"):
    return "tensor<%s>" % "x".join(["?" if d is None else str(d) for d in shape] + [et])


def emit_stack(ir, fname, role, level, layers, attn, win=None):
    """One LLaMA stack function x [?, ?, D] -> [?, ?, D]."""
    c = ir.cfg
    D, H, Hkv, hd, F = c["D"], c["H"], c["Hkv"], c["hd"], c["F"]
    ir.lines.append('  func.func private @%s(%%x: %s) -> %s attributes {photon.role = "%s", '
                    'photon.level = %d : i64} {' % (fname, T([None, None, D]), T([None, None, D]),
                                                      role, level))
    x = "%x"
    c0, c1 = ir.v(), ir.v()
    ir.emit("%s = arith.constant 0 : index" % c0)
    ir.emit("%s = arith.constant 1 : index" % c1)
    b, m = ir.v(), ir.v()
    ir.emit("%s = tensor.dim %%x, %s : %s" % (b, c0, T([None, None, D])))
    ir.emit("%s = tensor.dim %%x, %s : %s" % (m, c1, T([None, None, D])))
    X3 = T([None, None, D])
    for i in range(layers):
        p = "%s.l%d." % (fname, i)
        an = ir.weight(p + "attn_norm", [D], ones=True)
        h = ir.v()
        ir.emit('%s = "photon.rms_norm"(%s, %s) {eps = 1.0e-05 : f32} : (%s, %s) -> %s'
                % (h, x, an, X3, T([D]), X3))
        outs = {}
        for nm, n_out in (("wq", H * hd), ("wk", Hkv * hd), ("wv", Hkv * hd)):
            w = ir.weight(p + nm, [n_out, D])
            r = ir.v()
            ir.emit('%s = "photon.linear"(%s, %s) : (%s, %s) -> %s'
                    % (r, h, w, X3, T([n_out, D]), T([None, None, n_out])))
            heads = n_out // hd
            r4 = ir.v()
            ir.emit("%s = tensor.expand_shape %s [[0], [1], [2, 3]] output_shape [%s, %s, %d, %d] "
                    ": %s into %s" % (r4, r, b, m, heads, hd, T([None, None, n_out]),
                                      T([None, None, heads, hd])))
            outs[nm] = (r4, heads)
        q, k = outs["wq"][0], outs["wk"][0]
        Q4, K4 = T([None, None, H, hd]), T([None, None, Hkv, hd])
        qr, kr = ir.v(), ir.v()
        ir.emit('%s = "photon.rope"(%s) {theta = 1.0e+04 : f32} : (%s) -> %s' % (qr, q, Q4, Q4))
        ir.emit('%s = "photon.rope"(%s) {theta = 1.0e+04 : f32} : (%s) -> %s' % (kr, k, K4, K4))
        a = ir.v()
        scale = 1.0 / np.sqrt(hd)
        if attn == "causal":
            ir.emit('%s = "photon.causal_attention"(%s, %s, %s) {scale = %.9e : f32} : (%s, %s, %s) -> %s'
                    % (a, qr, kr, outs["wv"][0], scale, Q4, K4, K4, Q4))
        else:
            ir.emit('%s = "photon.bounded_attention"(%s, %s, %s) {prefix = %d : i64, chunk = %d : i64, '
                    'scale = %.9e : f32} : (%s, %s, %s) -> %s'
                    % (a, qr, kr, outs["wv"][0], win[0], win[1], scale, Q4, K4, K4, Q4))
        a3 = ir.v()
        ir.emit("%s = tensor.collapse_shape %s [[0], [1], [2, 3]] : %s into %s"
                % (a3, a, Q4, T([None, None, H * hd])))
        wo = ir.weight(p + "wo", [D, H * hd])
        o = ir.v()
        ir.emit('%s = "photon.linear"(%s, %s) : (%s, %s) -> %s'
                % (o, a3, wo, T([None, None, H * hd]), T([D, H * hd]), X3))
        x2 = ir.v()
        ir.emit("%s = arith.addf %s, %s : %s" % (x2, x, o, X3))
        mn = ir.weight(p + "mlp_norm", [D], ones=True)
        h2 = ir.v()
        ir.emit('%s = "photon.rms_norm"(%s, %s) {eps = 1.0e-05 : f32} : (%s, %s) -> %s'
                % (h2, x2, mn, X3, T([D]), X3))
        wg = ir.weight(p + "w_gate", [F, D])
        wu = ir.weight(p + "w_up", [F, D])
        wd = ir.weight(p + "w_down", [D, F])
        f = ir.v()
        ir.emit('%s = "photon.swiglu"(%s, %s, %s, %s) : (%s, %s, %s, %s) -> %s'
                % (f, h2, wg, wu, wd, X3, T([F, D]), T([F, D]), T([D, F]), X3))
        x3 = ir.v()
        ir.emit("%s = arith.addf %s, %s : %s" % (x3, x2, f, X3))
        x = x3
    fn = ir.weight(fname + ".final_norm", [D], ones=True)
    y = ir.v()
    ir.emit('%s = "photon.rms_norm"(%s, %s) {eps = 1.0e-05 : f32} : (%s, %s) -> %s'
            % (y, x, fn, X3, T([D]), X3))
    ir.emit("return %s : %s" % (y, X3))
    ir.lines.append("  }")


def gen(kind, rng):
    if kind == "vanilla" and os.environ.get("PHOTON_GEN_SIZE"):
        # a bigger vanilla model for timing: PHOTON_GEN_SIZE="D,H,F,V,layers"
        D_, H_, F_, V_, Ly = map(int, os.environ["PHOTON_GEN_SIZE"].split(","))
        cfg = dict(D=D_, H=H_, Hkv=H_, hd=D_ // H_, F=F_, V=V_, layers=Ly)
    elif kind == "vanilla":
        cfg = dict(D=32, H=4, Hkv=2, hd=8, F=64, V=64, layers=2)
    else:
        cfg = dict(D=32, H=4, Hkv=2, hd=8, F=64, V=64, layers=1, C=[4, 4] if kind == "photon" else [4], R=2)
    ir = IR(rng, cfg)
    D, V = cfg["D"], cfg["V"]
    if kind == "vanilla":
        hier = ('#photon.hierarchy<family = "vanilla", levels = 0, chunk_sizes = [], prefix = 0, '
                'width = %d, vocab = %d>' % (D, V))
    else:
        hier = ('#photon.hierarchy<family = "%s", levels = %d, chunk_sizes = [%s], prefix = %d, '
                'width = %d, vocab = %d>' % (kind, len(cfg["C"]), ", ".join(map(str, cfg["C"])),
                                             cfg["R"], D, V))
    ir.lines.append("module attributes {photon.hierarchy = %s} {" % hier)
    if kind == "vanilla":
        emit_stack(ir, "stack", "encoder", 1, cfg["layers"], "causal")
        ir.lines.append('  func.func @forward(%%tokens: %s) -> %s attributes {photon.stage = "forward"} {'
                        % (T([None, None], "i32"), T([None, None, V])))
        e = ir.weight("tok_emb", [V, D], scale=1.0)
        x = ir.v()
        ir.emit('%s = "photon.embedding"(%s, %%tokens) : (%s, %s) -> %s'
                % (x, e, T([V, D]), T([None, None], "i32"), T([None, None, D])))
        h = ir.v()
        ir.emit("%s = func.call @stack(%s) : (%s) -> %s" % (h, x, T([None, None, D]), T([None, None, D])))
        w = ir.weight("lm_head", [V, D])
        lg = ir.v()
        ir.emit('%s = "photon.lm_head"(%s, %s) : (%s, %s) -> %s'
                % (lg, h, w, T([None, None, D]), T([V, D]), T([None, None, V])))
        ir.emit("return %s : %s" % (lg, T([None, None, V])))
        ir.lines.append("  }")
    else:
        emit_photon(ir, cfg)
    ir.lines.append("}")
    return cfg, ir


def emit_photon(ir, cfg):
    D, V, C, R = cfg["D"], cfg["V"], cfg["C"], cfg["R"]
    L = len(C)
    X3 = T([None, None, D])
    for l in range(1, L + 1):
        emit_stack(ir, "enc%d" % l, "encoder", l, cfg["layers"], "causal")
        emit_stack(ir, "dec%d" % l, "decoder", l, cfg["layers"], "bounded", (R, C[l - 1]))
    ir.lines.append('  func.func @forward(%%tokens: %s) -> %s attributes {photon.stage = "forward"} {'
                    % (T([None, None], "i32"), T([None, None, V])))
    c0, c1 = ir.v(), ir.v()
    ir.emit("%s = arith.constant 0 : index" % c0)
    ir.emit("%s = arith.constant 1 : index" % c1)
    B = ir.v()
    ir.emit("%s = tensor.dim %%tokens, %s : %s" % (B, c0, T([None, None], "i32")))
    d1 = D // C[0]
    e = ir.weight("emb_enc", [V, d1], scale=1.0)
    x0 = ir.v()
    ir.emit('%s = "photon.embedding"(%s, %%tokens) : (%s, %s) -> %s'
            % (x0, e, T([V, d1]), T([None, None], "i32"), T([None, None, d1])))
    a = ir.v()
    ir.emit('%s = "photon.chunk"(%s) {size = %d : i64} : (%s) -> %s' % (a, x0, C[0], T([None, None, d1]), X3))
    xs = {}
    x = ir.v()
    ir.emit("%s = func.call @enc1(%s) : (%s) -> %s" % (x, a, X3, X3))
    xs[1] = x
    for l in range(2, L + 1):
        nw = ir.weight("cc%d.norm" % l, [C[l - 1] * D], ones=True)
        w = ir.weight("cc%d.w" % l, [D, C[l - 1] * D])
        bb = ir.weight("cc%d.b" % l, [D], scale=0.1)
        a = ir.v()
        ir.emit('%s = "photon.chunk_compress"(%s, %s, %s, %s) {size = %d : i64, eps = 1.0e-05 : f32} '
                ': (%s, %s, %s, %s) -> %s' % (a, x, nw, w, bb, C[l - 1], X3, T([C[l - 1] * D]),
                                              T([D, C[l - 1] * D]), T([D]), X3))
        x = ir.v()
        ir.emit("%s = func.call @enc%d(%s) : (%s) -> %s" % (x, l, a, X3, X3))
        xs[l] = x
    latent = xs[L]
    for l in range(L, 0, -1):
        st = ir.weight("dec%d.start" % l, [D], scale=1.0)
        p = ir.v()
        ir.emit('%s = "photon.shift"(%s, %s) : (%s, %s) -> %s' % (p, latent, st, X3, T([D]), X3))
        cw = ir.weight("dec%d.conv.w" % l, [R * D, D])
        cb = ir.weight("dec%d.conv.b" % l, [R * D], scale=0.1)
        u = ir.v()
        U4 = T([None, None, R, D])
        ir.emit('%s = "photon.expand"(%s, %s, %s) {r = %d : i64} : (%s, %s, %s) -> %s'
                % (u, p, cw, cb, R, X3, T([R * D, D]), T([R * D]), U4))
        M = ir.v()
        ir.emit("%s = tensor.dim %s, %s : %s" % (M, u, c1, U4))
        N = ir.v()
        ir.emit("%s = arith.muli %s, %s : index" % (N, B, M))
        u3 = ir.v()
        ir.emit("%s = tensor.collapse_shape %s [[0, 1], [2], [3]] : %s into %s"
                % (u3, u, U4, T([None, R, D])))
        Cl = C[l - 1]
        if l >= 2:
            # free-running rollout: C_l steps, window grows by the last output
            win, ys = u3, []
            for j in range(1, Cl + 1):
                W = R + j - 1
                hcall = call_dec(ir, l, win, W, D)
                y = ir.v()
                ir.emit("%s = tensor.extract_slice %s[0, %d, 0] [%s, 1, %d] [1, 1, 1] : %s to %s"
                        % (y, hcall, W - 1, N, D, T([None, W, D]), T([None, 1, D])))
                ys.append(y)
                if j < Cl:
                    nw_ = ir.v()
                    ir.emit("%s = tensor.concat dim(1) %s, %s : (%s, %s) -> %s"
                            % (nw_, win, y, T([None, W, D]), T([None, 1, D]), T([None, W + 1, D])))
                    win = nw_
            out = ir.v()
            ir.emit("%s = tensor.concat dim(1) %s : (%s) -> %s"
                    % (out, ", ".join(ys), ", ".join([T([None, 1, D])] * Cl), T([None, Cl, D])))
            xh = out
            xh4 = ir.v()
            ir.emit("%s = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [%s, %s, %d, %d] : %s into %s"
                    % (xh4, xh, B, M, Cl, D, T([None, Cl, D]), T([None, None, Cl, D])))
            latent = ir.v()
            ir.emit("%s = tensor.collapse_shape %s [[0], [1, 2], [3]] : %s into %s"
                    % (latent, xh4, T([None, None, Cl, D]), X3))
            if l == 2:
                ir.xh1 = latent
        else:
            ed = ir.weight("emb_dec", [V, D], scale=1.0)
            te = ir.v()
            ir.emit('%s = "photon.embedding"(%s, %%tokens) : (%s, %s) -> %s'
                    % (te, ed, T([V, D]), T([None, None], "i32"), X3))
            te4 = ir.v()
            ir.emit("%s = tensor.expand_shape %s [[0], [1, 2], [3]] output_shape [%s, %s, %d, %d] : %s into %s"
                    % (te4, te, B, M, Cl, D, X3, T([None, None, Cl, D])))
            te3 = ir.v()
            ir.emit("%s = tensor.collapse_shape %s [[0, 1], [2], [3]] : %s into %s"
                    % (te3, te4, T([None, None, Cl, D]), T([None, Cl, D])))
            first = ir.v()
            ir.emit("%s = tensor.extract_slice %s[0, 0, 0] [%s, %d, %d] [1, 1, 1] : %s to %s"
                    % (first, te3, N, Cl - 1, D, T([None, Cl, D]), T([None, Cl - 1, D])))
            W = R + Cl - 1
            win = ir.v()
            ir.emit("%s = tensor.concat dim(1) %s, %s : (%s, %s) -> %s"
                    % (win, u3, first, T([None, R, D]), T([None, Cl - 1, D]), T([None, W, D])))
            hcall = call_dec(ir, 1, win, W, D)
            hs = ir.v()
            ir.emit("%s = tensor.extract_slice %s[0, %d, 0] [%s, %d, %d] [1, 1, 1] : %s to %s"
                    % (hs, hcall, R - 1, N, Cl, D, T([None, W, D]), T([None, Cl, D])))
            hs4 = ir.v()
            ir.emit("%s = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [%s, %s, %d, %d] : %s into %s"
                    % (hs4, hs, B, M, Cl, D, T([None, Cl, D]), T([None, None, Cl, D])))
            h = ir.v()
            ir.emit("%s = tensor.collapse_shape %s [[0], [1, 2], [3]] : %s into %s"
                    % (h, hs4, T([None, None, Cl, D]), X3))
            w = ir.weight("lm_head", [V, D])
            lg = ir.v()
            ir.emit('%s = "photon.lm_head"(%s, %s) : (%s, %s) -> %s'
                    % (lg, h, w, X3, T([V, D]), T([None, None, V])))
            ir.emit("return %s : %s" % (lg, T([None, None, V])))
    ir.lines.append("  }")


def call_dec(ir, l, win, W, D):
    """call @dec<l> on a window [N, W, D] (the stack takes [?, ?, D])."""
    a, h, r = ir.v(), ir.v(), ir.v()
    ir.emit("%s = tensor.cast %s : %s to %s" % (a, win, T([None, W, D]), T([None, None, D])))
    ir.emit("%s = func.call @dec%d(%s) : (%s) -> %s" % (h, l, a, T([None, None, D]), T([None, None, D])))
    ir.emit("%s = tensor.cast %s : %s to %s" % (r, h, T([None, None, D]), T([None, W, D])))
    return r


def ir_const(ir, v):
    r = ir.v()
    ir.emit("%s = arith.constant %d : index" % (r, v))
    return r


# ----------------------------------------------------------------------------- reference
def rms(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def rope(x):  # x [N, M, H, hd], positions 0..M-1
    hd = x.shape[-1]
    half = hd // 2
    inv = THETA ** (-2.0 * np.arange(half) / hd)
    ang = np.arange(x.shape[1])[:, None] * inv[None, :]
    c, s = np.cos(ang)[None, :, None, :], np.sin(ang)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def ref_stack(W, fname, cfg, x, layers):
    H, Hkv, hd = cfg["H"], cfg["Hkv"], cfg["hd"]
    N, M, D = x.shape
    for i in range(layers):
        p = "%s.l%d." % (fname, i)
        h = rms(x, W[p + "attn_norm"])
        q = (h @ W[p + "wq"].T).reshape(N, M, H, hd)
        k = (h @ W[p + "wk"].T).reshape(N, M, Hkv, hd)
        v = (h @ W[p + "wv"].T).reshape(N, M, Hkv, hd)
        q, k = rope(q), rope(k)
        g = H // Hkv
        k = np.repeat(k, g, axis=2)
        v = np.repeat(v, g, axis=2)
        s = np.einsum("nihd,njhd->nhij", q, k) / np.sqrt(hd)
        mask = np.tril(np.ones((M, M), dtype=bool))
        s = np.where(mask, s, -np.inf)
        s = s - s.max(-1, keepdims=True)
        pr = np.exp(s)
        pr /= pr.sum(-1, keepdims=True)
        o = np.einsum("nhij,njhd->nihd", pr, v).reshape(N, M, H * hd)
        x = x + o @ W[p + "wo"].T
        h2 = rms(x, W[p + "mlp_norm"])
        gt = h2 @ W[p + "w_gate"].T
        up = h2 @ W[p + "w_up"].T
        x = x + ((gt / (1 + np.exp(-gt))) * up) @ W[p + "w_down"].T
    return rms(x, W[fname + ".final_norm"])


def reference(kind, cfg, W, tokens):
    B, T_ = tokens.shape
    if kind == "vanilla":
        x = W["tok_emb"][tokens]
        h = ref_stack(W, "stack", cfg, x, cfg["layers"])
        return {"logits": h @ W["lm_head"].T}
    D, C, R = cfg["D"], cfg["C"], cfg["R"]
    L = len(C)
    xs = {}
    x = W["emb_enc"][tokens].reshape(B, T_ // C[0], D)
    xs[1] = ref_stack(W, "enc1", cfg, x, cfg["layers"])
    for l in range(2, L + 1):
        B_, M, _ = xs[l - 1].shape
        a = xs[l - 1].reshape(B_, M // C[l - 1], C[l - 1] * D)
        a = rms(a, W["cc%d.norm" % l]) @ W["cc%d.w" % l].T + W["cc%d.b" % l]
        xs[l] = ref_stack(W, "enc%d" % l, cfg, a, cfg["layers"])
    out = {"x1": xs[1]}
    latent = xs[L]
    for l in range(L, 0, -1):
        Bm, M, _ = latent.shape
        p = np.concatenate([np.broadcast_to(W["dec%d.start" % l], (Bm, 1, D)), latent[:, :-1]], axis=1)
        u = (p @ W["dec%d.conv.w" % l].T + W["dec%d.conv.b" % l]).reshape(Bm * M, R, D)
        Cl = C[l - 1]
        if l >= 2:
            win, ys = u, []
            for j in range(Cl):
                h = ref_stack(W, "dec%d" % l, cfg, win, cfg["layers"])
                ys.append(h[:, -1:])
                win = np.concatenate([win, h[:, -1:]], axis=1)
            latent = np.concatenate(ys, axis=1).reshape(Bm, M * Cl, D)
            if l == 2:
                out["xh1"] = latent
        else:
            te = W["emb_dec"][tokens].reshape(Bm * M, Cl, D)
            win = np.concatenate([u, te[:, :Cl - 1]], axis=1)
            h = ref_stack(W, "dec1", cfg, win, cfg["layers"])[:, R - 1:R - 1 + Cl]
            out["logits"] = h.reshape(Bm, M * Cl, D) @ W["lm_head"].T
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["vanilla", "photon", "block"])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    cfg, ir = gen(a.kind, rng)
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "model.mlir"), "w") as f:
        f.write("\n".join(ir.lines) + "\n")
    write_blob(os.path.join(a.outdir, "model.weights.bin"), [(n, ir.weights[n]) for n in ir.order])
    tokens = rng.integers(0, cfg["V"], size=(a.batch, a.tokens)).astype(np.int32)
    W = {k: v.astype(np.float64) for k, v in ir.weights.items()}
    out = reference(a.kind, cfg, W, tokens)
    np.savez(os.path.join(a.outdir, "ref.npz"), tokens=tokens, **out)


if __name__ == "__main__":
    main()

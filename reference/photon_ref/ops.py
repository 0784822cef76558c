"""The numerical kernels, shared by the exported graph and the cached generation stages.

Semantics (docs/onnx-convention.md): RMSNorm x * rsqrt(mean(x^2) + eps) * w; rotate-half RoPE
with freq_i = theta^(-2i/hd) (computed in double, rounded to f32), angle = f32(pos) * freq_i;
attention scale 1/sqrt(hd); GQA repeats each KV head for H/Hkv consecutive query heads;
SwiGLU w_down(silu(w_gate x) * w_up x).
"""
import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS_PER_LAYER = ("attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down")


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def inv_freq(head_dim, theta):
    i = np.arange(head_dim // 2, dtype=np.float64)
    return torch.tensor((theta ** (-2.0 * i / head_dim)).astype(np.float32).tolist(), dtype=torch.float32)


def rope(x, pos, theta, head_dim):
    """x [B, M, H, hd]; pos f32 [M] (same for all rows) or [B, M]."""
    half = head_dim // 2
    ang = pos.unsqueeze(-1) * inv_freq(head_dim, theta)          # [.., M, half]
    cos = torch.cos(ang).unsqueeze(-2)                             # [.., M, 1, half]
    sin = torch.sin(ang).unsqueeze(-2)
    x1 = x[..., :half]
    x2 = x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def causal_mask(m, offset=0):
    """Additive mask [m, offset + m]: query i (absolute position offset + i) sees keys 0..offset+i."""
    q = torch.arange(m).unsqueeze(1) + offset
    k = torch.arange(m + offset).unsqueeze(0)
    return torch.zeros(m, m + offset).masked_fill(k > q, float("-inf"))


def attention(q, k, v, mask, n_rep, head_dim):
    """q [B, M, H, hd], k/v [B, N, Hkv, hd], mask additive [M, N] (or [B, 1, M, N]) -> [B, M, H*hd]."""
    q = q.transpose(1, 2)
    k = k.transpose(1, 2)
    v = v.transpose(1, 2)
    if n_rep > 1:
        k = k.unsqueeze(2).expand(-1, -1, n_rep, -1, -1).flatten(1, 2)
        v = v.unsqueeze(2).expand(-1, -1, n_rep, -1, -1).flatten(1, 2)
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / float(np.sqrt(head_dim))) + mask
    p = torch.softmax(s, -1)
    o = torch.matmul(p, v).transpose(1, 2)
    return o.flatten(2)


def stack_apply(x, ws, n_layers, n_heads, n_kv_heads, head_dim, theta, eps, pos, mask, past=None):
    """A LLaMA stack (pre-RMSNorm, RoPE, SwiGLU) ending in its final RMSNorm.

    x [B, M, D]; ws: 9 weights per layer (WEIGHTS_PER_LAYER order) then final_norm;
    pos f32 [M] or [B, M]; mask additive [M, P + M]; past: per layer (k, v) [B, P, Hkv, hd] or None.
    Returns (y [B, M, D], [(k_new, v_new) per layer] with k_new [B, M, Hkv, hd], RoPE applied).
    """
    assert len(ws) == 9 * n_layers + 1, f"stack expects {9 * n_layers + 1} weights, got {len(ws)}"
    new_kv = []
    for i in range(n_layers):
        an, wq, wk, wv, wo, mn, wg, wu, wd = ws[9 * i: 9 * i + 9]
        h = rms_norm(x, an, eps)
        b, m = x.shape[0], x.shape[1]
        q = F.linear(h, wq).reshape(b, m, n_heads, head_dim)
        k = F.linear(h, wk).reshape(b, m, n_kv_heads, head_dim)
        v = F.linear(h, wv).reshape(b, m, n_kv_heads, head_dim)
        q = rope(q, pos, theta, head_dim)
        k = rope(k, pos, theta, head_dim)
        new_kv.append((k, v))
        if past is not None:
            k = torch.cat([past[i][0], k], 1)
            v = torch.cat([past[i][1], v], 1)
        a = attention(q, k, v, mask, n_heads // n_kv_heads, head_dim)
        x = x + F.linear(a, wo)
        h = rms_norm(x, mn, eps)
        x = x + F.linear(F.silu(F.linear(h, wg)) * F.linear(h, wu), wd)
    return rms_norm(x, ws[-1], eps), new_kv

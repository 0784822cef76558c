// A plain C++ implementation of the photon stage ABI (docs/artifact.md) for the reference
// models of reference/photon_ref, straight from their definitions (ops.py, model.py):
// LLaMA stacks (pre-RMSNorm, rotate-half RoPE with positions inside each stream, GQA,
// SwiGLU, final RMSNorm), concat chunking, chunk_compress, converters, free-running latent
// decoders and the token decoder window. No MLIR, no vectorisation: it exists so that the
// runtime's generation engine can be checked token for token against the reference's
// gen.json before (and independently of) the compiler, and as a second opinion for the
// compiler's stages.
//
// Weights come from the blob (argument 0) by name (`enc1.0.wq`, `dec2.conv.w`, `lm_head`,
// ...). Hyper-parameters the shapes do not carry are two extra tensors written by
// make_artifact.py: `refmodel.hparams_i` i32 [head_dim, n_heads, n_kv_heads] and
// `refmodel.hparams_f` f32 [rope_theta, norm_eps]; hparams_i[3] = level1_shift (1 or 0).
#include "photon/weights_format.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

template <int R> struct MR {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizes[R];
  int64_t strides[R];
};
template <int R, typename T> T *data(void *arg) {
  auto *m = static_cast<MR<R> *>(arg);
  return static_cast<T *>(m->aligned) + m->offset;
}
template <int R> const MR<R> &desc(void *arg) { return *static_cast<MR<R> *>(arg); }

struct Tensor {
  const void *p = nullptr;
  std::vector<int64_t> shape;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  const float *f() const { return static_cast<const float *>(p); }
};

struct Model {
  std::map<std::string, Tensor> t;
  int hd = 0, H = 0, Hkv = 0, D = 0;
  bool level1Shift = true;
  float theta = 10000.0f, eps = 1e-5f;
  std::vector<float> invFreq;

  const Tensor &get(const std::string &name) const {
    auto it = t.find(name);
    if (it == t.end()) {
      std::fprintf(stderr, "refmodel: weight '%s' not found in the blob\n", name.c_str());
      std::abort();
    }
    return it->second;
  }
  bool has(const std::string &name) const { return t.count(name) != 0; }
  int layers(const std::string &stack) const {
    int n = 0;
    while (has(stack + "." + std::to_string(n) + ".wq")) ++n;
    return n;
  }
};

const Model &model(void *weightsArg) {
  static std::mutex mu;
  static std::map<const void *, std::unique_ptr<Model>> cache;
  const auto &w = desc<1>(weightsArg);
  const uint8_t *base = static_cast<const uint8_t *>(w.aligned) + w.offset;
  std::lock_guard<std::mutex> lock(mu);
  auto &slot = cache[base];
  if (slot) return *slot;
  std::vector<photon::weights::TensorInfo> infos;
  std::string err;
  if (!photon::weights::parseIndex(base, static_cast<size_t>(w.sizes[0]), infos, err)) {
    std::fprintf(stderr, "refmodel: %s\n", err.c_str());
    std::abort();
  }
  auto m = std::make_unique<Model>();
  for (const auto &i : infos) m->t[i.name] = Tensor{base + i.offset, i.shape};
  const int32_t *hi = static_cast<const int32_t *>(m->get("refmodel.hparams_i").p);
  const float *hf = m->get("refmodel.hparams_f").f();
  m->hd = hi[0];
  m->H = hi[1];
  m->Hkv = hi[2];
  if (m->get("refmodel.hparams_i").numel() > 3) m->level1Shift = hi[3] != 0;
  m->theta = hf[0];
  m->eps = hf[1];
  m->D = static_cast<int>(m->get("lm_head").shape[1]);
  for (int i = 0; i < m->hd / 2; ++i)
    m->invFreq.push_back(static_cast<float>(std::pow(static_cast<double>(m->theta), -2.0 * i / m->hd)));
  slot = std::move(m);
  return *slot;
}

// y[o] = sum_i x[i] W[o, i] (+ b[o]); W [out, in] row-major.
void linear(const float *x, const float *W, const float *b, int in, int out, float *y) {
  for (int o = 0; o < out; ++o) {
    double s = 0;
    const float *w = W + static_cast<int64_t>(o) * in;
    for (int i = 0; i < in; ++i) s += static_cast<double>(x[i]) * w[i];
    y[o] = static_cast<float>(s) + (b ? b[o] : 0.0f);
  }
}

void rmsNorm(const float *x, const float *w, int n, float eps, float *y) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  float r = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
}

void rope(const Model &m, float *x /*[heads, hd]*/, int heads, int64_t pos) {
  const int half = m.hd / 2;
  for (int h = 0; h < heads; ++h) {
    float *v = x + h * m.hd;
    for (int i = 0; i < half; ++i) {
      float ang = static_cast<float>(pos) * m.invFreq[i];
      float c = std::cos(ang), s = std::sin(ang);
      float a = v[i], b = v[i + half];
      v[i] = a * c - b * s;
      v[i + half] = b * c + a * s;
    }
  }
}

// Where a stack keeps K/V of (layer, position): each [Hkv * hd].
struct KV {
  virtual ~KV() = default;
  virtual float *k(int layer, int64_t pos) = 0;
  virtual float *v(int layer, int64_t pos) = 0;
};

// The runtime's paged pool: pool [NB, Ly, 2, BS, Hkv, hd], table row of one sequence.
struct PagedKV : KV {
  float *pool;
  int64_t layers, bs, unit;
  const int32_t *table;
  float *at(int layer, int64_t pos, int kv) {
    int64_t blk = table[pos / bs];
    return pool + (((blk * layers + layer) * 2 + kv) * bs + pos % bs) * unit;
  }
  float *k(int layer, int64_t pos) override { return at(layer, pos, 0); }
  float *v(int layer, int64_t pos) override { return at(layer, pos, 1); }
};

// A window-local cache (decoders): dropped after the call.
struct LocalKV : KV {
  std::vector<float> buf;
  int64_t cap, unit;
  LocalKV(int layers, int64_t cap_, int64_t unit_) : buf(static_cast<size_t>(layers * 2 * cap_ * unit_)), cap(cap_), unit(unit_) {}
  float *k(int layer, int64_t pos) override { return buf.data() + ((layer * 2 + 0) * cap + pos) * unit; }
  float *v(int layer, int64_t pos) override { return buf.data() + ((layer * 2 + 1) * cap + pos) * unit; }
};

// Runs stack `name` over M new positions pos0..pos0+M-1 (x [M, D] in place), attending to
// cached positions 0..pos0+m; writes the new K (after RoPE) and V into kv.
void stack(const Model &m, const std::string &name, float *x, int64_t M, int64_t pos0, KV &kv) {
  const int D = m.D, H = m.H, Hkv = m.Hkv, hd = m.hd, rep = H / Hkv;
  const int F = static_cast<int>(m.get(name + ".0.w_gate").shape[0]);
  const int L = m.layers(name);
  std::vector<float> h(D), q(static_cast<size_t>(M) * H * hd), a(H * hd), g(F), u(F), o(D), sc;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int l = 0; l < L; ++l) {
    const std::string p = name + "." + std::to_string(l) + ".";
    const float *an = m.get(p + "attn_norm").f(), *wq = m.get(p + "wq").f(), *wk = m.get(p + "wk").f(),
                *wv = m.get(p + "wv").f(), *wo = m.get(p + "wo").f(), *mn = m.get(p + "mlp_norm").f(),
                *wg = m.get(p + "w_gate").f(), *wu = m.get(p + "w_up").f(), *wd = m.get(p + "w_down").f();
    for (int64_t i = 0; i < M; ++i) {
      rmsNorm(x + i * D, an, D, m.eps, h.data());
      float *qi = q.data() + i * H * hd;
      linear(h.data(), wq, nullptr, D, H * hd, qi);
      rope(m, qi, H, pos0 + i);
      float *k = kv.k(l, pos0 + i), *v = kv.v(l, pos0 + i);
      linear(h.data(), wk, nullptr, D, Hkv * hd, k);
      rope(m, k, Hkv, pos0 + i);
      linear(h.data(), wv, nullptr, D, Hkv * hd, v);
    }
    for (int64_t i = 0; i < M; ++i) {
      const int64_t n = pos0 + i + 1;
      sc.resize(static_cast<size_t>(n));
      for (int hh = 0; hh < H; ++hh) {
        const float *qh = q.data() + (i * H + hh) * hd;
        const int kvh = hh / rep;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float *kj = kv.k(l, j) + kvh * hd;
          double s = 0;
          for (int d = 0; d < hd; ++d) s += static_cast<double>(qh[d]) * kj[d];
          sc[j] = static_cast<float>(s) * scale;
          mx = std::max(mx, sc[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < n; ++j) z += std::exp(static_cast<double>(sc[j] - mx));
        for (int d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += std::exp(static_cast<double>(sc[j] - mx)) / z * kv.v(l, j)[kvh * hd + d];
          a[hh * hd + d] = static_cast<float>(acc);
        }
      }
      float *xi = x + i * D;
      linear(a.data(), wo, nullptr, H * hd, D, o.data());
      for (int d = 0; d < D; ++d) xi[d] += o[d];
      rmsNorm(xi, mn, D, m.eps, h.data());
      linear(h.data(), wg, nullptr, D, F, g.data());
      linear(h.data(), wu, nullptr, D, F, u.data());
      for (int f = 0; f < F; ++f) g[f] = g[f] / (1.0f + std::exp(-g[f])) * u[f];
      linear(g.data(), wd, nullptr, F, D, o.data());
      for (int d = 0; d < D; ++d) xi[d] += o[d];
    }
  }
  const float *fn = m.get(name + ".final_norm").f();
  for (int64_t i = 0; i < M; ++i) {
    std::vector<float> t(x + i * D, x + (i + 1) * D);
    rmsNorm(t.data(), fn, D, m.eps, x + i * D);
  }
}

// Runs a decoder stack over a whole window (fresh local cache); returns all outputs.
std::vector<float> windowStack(const Model &m, const std::string &name, const std::vector<float> &win, int64_t w) {
  std::vector<float> x(win.begin(), win.begin() + w * m.D);
  LocalKV kv(m.layers(name), w, static_cast<int64_t>(m.Hkv) * m.hd);
  stack(m, name, x.data(), w, 0, kv);
  return x;
}

// Converter: prev [D] -> R vectors [R, D].
std::vector<float> convert(const Model &m, int level, const float *prev, int &R) {
  const Tensor &w = m.get("dec" + std::to_string(level) + ".conv.w");
  R = static_cast<int>(w.shape[0] / m.D);
  std::vector<float> u(static_cast<size_t>(R) * m.D);
  linear(prev, w.f(), m.get("dec" + std::to_string(level) + ".conv.b").f(), m.D, R * m.D, u.data());
  return u;
}

// encode over the pool for one batch: a [B, n, D] inputs to the stack.
void encodeWithPool(const Model &m, const std::string &stackName, void **args, std::vector<float> &a, int64_t B, int64_t n) {
  const auto &pm = desc<6>(args[2]);
  PagedKV kv;
  kv.pool = data<6, float>(args[2]);
  kv.layers = pm.sizes[1];
  kv.bs = pm.sizes[3];
  kv.unit = pm.sizes[4] * pm.sizes[5];
  const int32_t *table = data<2, int32_t>(args[3]);
  const int64_t mb = desc<2>(args[3]).sizes[1];
  const int32_t *lens = data<1, int32_t>(args[4]);
  float *out = data<3, float>(args[5]);
  for (int64_t b = 0; b < B; ++b) {
    kv.table = table + b * mb;
    float *xb = a.data() + b * n * m.D;
    stack(m, stackName, xb, n, lens[b], kv);
    std::memcpy(out + b * n * m.D, xb, sizeof(float) * n * m.D);
  }
}

#define EXPORT extern "C" __attribute__((visibility("default")))

} // namespace

EXPORT const char *photon_abi(void) { return "photon-abi-1"; }

// encode_1: tokens i32[B, n*C1]; pool; table; lens; out f32[B, n, D]
EXPORT void photon_encode_1(void **args) {
  const Model &m = model(args[0]);
  const auto &tk = desc<2>(args[1]);
  const int32_t *tok = data<2, int32_t>(args[1]);
  const Tensor &emb = m.get("emb_enc");
  const int e = static_cast<int>(emb.shape[1]), C1 = m.D / e;
  const int64_t B = tk.sizes[0], n = tk.sizes[1] / C1;
  std::vector<float> a(static_cast<size_t>(B * n * m.D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < n * C1; ++t)
      std::memcpy(a.data() + (b * n * C1 + t) * e, emb.f() + static_cast<int64_t>(tok[b * tk.sizes[1] + t]) * e, sizeof(float) * e);
  encodeWithPool(m, "enc1", args, a, B, n);
}

static void encodeL(int level, void **args) {
  const Model &m = model(args[0]);
  const auto &xm = desc<3>(args[1]);
  const float *x = data<3, float>(args[1]);
  const std::string p = "enc" + std::to_string(level);
  const Tensor &norm = m.get(p + ".compress.norm");
  const int C = static_cast<int>(norm.numel() / m.D);
  const int64_t B = xm.sizes[0], n = xm.sizes[1] / C;
  std::vector<float> a(static_cast<size_t>(B * n * m.D)), t(static_cast<size_t>(C) * m.D);
  for (int64_t r = 0; r < B * n; ++r) {
    rmsNorm(x + r * C * m.D, norm.f(), C * m.D, m.eps, t.data());
    linear(t.data(), m.get(p + ".compress.w").f(), m.get(p + ".compress.b").f(), C * m.D, m.D, a.data() + r * m.D);
  }
  encodeWithPool(m, p, args, a, B, n);
}

static void latentL(int level, void **args) {
  const Model &m = model(args[0]);
  const auto &pm = desc<2>(args[1]);
  const float *prev = data<2, float>(args[1]);
  float *out = data<3, float>(args[2]);
  const int64_t C = desc<3>(args[2]).sizes[1];
  const std::string name = "dec" + std::to_string(level);
  for (int64_t b = 0; b < pm.sizes[0]; ++b) {
    int R = 0;
    std::vector<float> win = convert(m, level, prev + b * m.D, R);
    for (int64_t j = 0; j < C; ++j) {
      const int64_t w = R + j;
      std::vector<float> y = windowStack(m, name, win, w);
      float *dst = out + (b * C + j) * m.D;
      std::memcpy(dst, y.data() + (w - 1) * m.D, sizeof(float) * m.D);
      win.insert(win.end(), dst, dst + m.D);
    }
  }
}

EXPORT void photon_encode_2(void **a) { encodeL(2, a); }
EXPORT void photon_encode_3(void **a) { encodeL(3, a); }
EXPORT void photon_encode_4(void **a) { encodeL(4, a); }
EXPORT void photon_latent_2(void **a) { latentL(2, a); }
EXPORT void photon_latent_3(void **a) { latentL(3, a); }
EXPORT void photon_latent_4(void **a) { latentL(4, a); }

// token_step: prev f32[S, D]; tokens i32[S, C1]; pos i32[S]; logits f32[S, V]
EXPORT void photon_token_step(void **args) {
  const Model &m = model(args[0]);
  const auto &pm = desc<2>(args[1]);
  const float *prev = data<2, float>(args[1]);
  const int32_t *tok = data<2, int32_t>(args[2]);
  const int64_t C1 = desc<2>(args[2]).sizes[1];
  const int32_t *pos = data<1, int32_t>(args[3]);
  float *logits = data<2, float>(args[4]);
  const Tensor &emb = m.get("dec1.emb"), &head = m.get("lm_head");
  const int V = static_cast<int>(head.shape[0]);
  for (int64_t s = 0; s < pm.sizes[0]; ++s) {
    int R = 0;
    std::vector<float> win = convert(m, 1, prev + s * m.D, R);
    for (int64_t i = 0; i + 1 < C1; ++i) {
      const float *e = emb.f() + static_cast<int64_t>(tok[s * C1 + i]) * m.D;
      win.insert(win.end(), e, e + m.D);
    }
    std::vector<float> y = windowStack(m, "dec1", win, R + C1 - 1);
    linear(y.data() + (R - 1 + pos[s]) * m.D, head.f(), nullptr, m.D, V, logits + s * V);
  }
}

// lm_step (vanilla): tokens i32[B, n]; pool; table; lens; logits f32[B, n, V]
EXPORT void photon_lm_step(void **args) {
  const Model &m = model(args[0]);
  const auto &tk = desc<2>(args[1]);
  const int32_t *tok = data<2, int32_t>(args[1]);
  const int64_t B = tk.sizes[0], n = tk.sizes[1];
  const Tensor &emb = m.get("emb"), &head = m.get("lm_head");
  const int V = static_cast<int>(head.shape[0]);
  std::vector<float> a(static_cast<size_t>(B * n * m.D));
  for (int64_t i = 0; i < B * n; ++i) std::memcpy(a.data() + i * m.D, emb.f() + static_cast<int64_t>(tok[i]) * m.D, sizeof(float) * m.D);
  const auto &pm = desc<6>(args[2]);
  PagedKV kv;
  kv.pool = data<6, float>(args[2]);
  kv.layers = pm.sizes[1];
  kv.bs = pm.sizes[3];
  kv.unit = pm.sizes[4] * pm.sizes[5];
  const int32_t *table = data<2, int32_t>(args[3]);
  const int64_t mb = desc<2>(args[3]).sizes[1];
  const int32_t *lens = data<1, int32_t>(args[4]);
  float *logits = data<3, float>(args[5]);
  for (int64_t b = 0; b < B; ++b) {
    kv.table = table + b * mb;
    stack(m, "stack", a.data() + b * n * m.D, n, lens[b], kv);
    for (int64_t i = 0; i < n; ++i)
      linear(a.data() + (b * n + i) * m.D, head.f(), nullptr, m.D, V, logits + (b * n + i) * V);
  }
}

// forward: tokens i32[B, T]; logits f32[B, T, V] — the teacher-forced graph of model.py
// (PHOTON/Block: logits[t] is the distribution of token t; vanilla: of token t+1).
EXPORT void photon_forward(void **args) {
  const Model &m = model(args[0]);
  const auto &tk = desc<2>(args[1]);
  const int32_t *tokAll = data<2, int32_t>(args[1]);
  float *logitsAll = data<3, float>(args[2]);
  const int64_t B = tk.sizes[0], T = tk.sizes[1], D = m.D;
  const Tensor &head = m.get("lm_head");
  const int V = static_cast<int>(head.shape[0]);
  const int64_t unit = static_cast<int64_t>(m.Hkv) * m.hd;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *tok = tokAll + b * T;
    float *logits = logitsAll + b * T * V;
    if (m.has("emb")) { // vanilla
      std::vector<float> x(static_cast<size_t>(T * D));
      for (int64_t t = 0; t < T; ++t) std::memcpy(x.data() + t * D, m.get("emb").f() + static_cast<int64_t>(tok[t]) * D, sizeof(float) * D);
      LocalKV kv(m.layers("stack"), T, unit);
      stack(m, "stack", x.data(), T, 0, kv);
      for (int64_t t = 0; t < T; ++t) linear(x.data() + t * D, head.f(), nullptr, static_cast<int>(D), V, logits + t * V);
      continue;
    }
    // Encoder: X(1) .. X(L).
    const Tensor &emb = m.get("emb_enc");
    const int e = static_cast<int>(emb.shape[1]), C1 = static_cast<int>(D / e);
    int L = 1;
    while (m.has("enc" + std::to_string(L + 1) + ".final_norm")) ++L;
    std::vector<std::vector<float>> X(static_cast<size_t>(L + 1));
    std::vector<int64_t> M(static_cast<size_t>(L + 1));
    std::vector<int> C(static_cast<size_t>(L + 1), C1);
    M[1] = T / C1;
    X[1].resize(static_cast<size_t>(T * e));
    for (int64_t t = 0; t < T; ++t) std::memcpy(X[1].data() + t * e, emb.f() + static_cast<int64_t>(tok[t]) * e, sizeof(float) * e);
    { LocalKV kv(m.layers("enc1"), M[1], unit); stack(m, "enc1", X[1].data(), M[1], 0, kv); }
    for (int l = 2; l <= L; ++l) {
      const std::string p = "enc" + std::to_string(l);
      const Tensor &norm = m.get(p + ".compress.norm");
      C[l] = static_cast<int>(norm.numel() / D);
      M[l] = M[l - 1] / C[l];
      X[l].resize(static_cast<size_t>(M[l] * D));
      std::vector<float> t(static_cast<size_t>(C[l] * D));
      for (int64_t r = 0; r < M[l]; ++r) {
        rmsNorm(X[l - 1].data() + r * C[l] * D, norm.f(), static_cast<int>(C[l] * D), m.eps, t.data());
        linear(t.data(), m.get(p + ".compress.w").f(), m.get(p + ".compress.b").f(), static_cast<int>(C[l] * D), static_cast<int>(D), X[l].data() + r * D);
      }
      LocalKV kv(m.layers(p), M[l], unit);
      stack(m, p, X[l].data(), M[l], 0, kv);
    }
    // Decoder: Xhat(l-1) = G_l(Shift(Xhat(l), s_l)), Xhat(L) = X(L).
    std::vector<float> xh = X[L];
    for (int l = L; l >= 2; --l) {
      const std::string name = "dec" + std::to_string(l);
      const float *start = m.get(name + ".start").f();
      std::vector<float> next(static_cast<size_t>(M[l] * C[l] * D));
      for (int64_t g = 0; g < M[l]; ++g) {
        const float *prev = g == 0 ? start : xh.data() + (g - 1) * D;
        int R = 0;
        std::vector<float> win = convert(m, l, prev, R);
        for (int j = 0; j < C[l]; ++j) {
          std::vector<float> y = windowStack(m, name, win, R + j);
          float *dst = next.data() + (g * C[l] + j) * D;
          std::memcpy(dst, y.data() + (R + j - 1) * D, sizeof(float) * D);
          win.insert(win.end(), dst, dst + D);
        }
      }
      xh.swap(next);
    }
    const Tensor &demb = m.get("dec1.emb");
    const float *s1 = m.get("dec1.start").f();
    for (int64_t k = 0; k < M[1]; ++k) {
      const float *prev = m.level1Shift ? (k == 0 ? s1 : xh.data() + (k - 1) * D) : xh.data() + k * D;
      int R = 0;
      std::vector<float> win = convert(m, 1, prev, R);
      for (int i = 0; i + 1 < C1; ++i) {
        const float *ev = demb.f() + static_cast<int64_t>(tok[k * C1 + i]) * D;
        win.insert(win.end(), ev, ev + D);
      }
      std::vector<float> y = windowStack(m, "dec1", win, R + C1 - 1);
      for (int i = 0; i < C1; ++i)
        linear(y.data() + (R - 1 + i) * D, head.f(), nullptr, static_cast<int>(D), V, logits + (k * C1 + i) * V);
    }
  }
}

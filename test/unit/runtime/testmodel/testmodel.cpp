// A small, analytically defined model that implements the photon stage ABI
// (docs/artifact.md) for the runtime's tests, standing in for a compiled artifact. Its
// functions are chosen so that every token depends on the whole history *through the KV
// cache pool* (block tables, lens, positions), on the start latents, on the decoder shift and
// on the forced prompt tokens; `forward` computes the same model teacher-forced without any
// cache. The stages also check the protocol (weights blob in argument 0, cached positions
// intact, tables inside the pool) and count violations in photon_test_errors().
//
// Geometry: D = 8, V = 256, C = (4, 4) (family photon), C = (4) (block); caches: 1 layer,
// 1 KV head, head dim 2, block size 4 units.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

constexpr int D = 8, V = 256, C1 = 4, C2 = 4, BS = 4, HD = 2;
int g_errors = 0;

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

void checkWeights(void *arg) {
  const auto &w = desc<1>(arg);
  if (w.sizes[0] < 32 || std::memcmp(w.aligned, "PHOTONW1", 8) != 0) ++g_errors;
}

double frac(double x) { return x - std::floor(x); }
float tokHash(int32_t t) { return static_cast<float>((static_cast<uint32_t>(t) * 2654435761u) % 1000u) / 1000.0f; }

// Latent of a unit from its running sum and position.
void latentFrom(double s, int64_t p, double rate, float *out) {
  out[0] = static_cast<float>(frac(s + rate * static_cast<double>(p)));
  for (int k = 1; k < D; ++k) out[k] = static_cast<float>(frac(out[0] * (k + 1) * 1.618 + 0.07 * k));
}

// Cache slot of unit position p of sequence b: pool [NB, 1, 2, BS, 1, HD].
float *slot(float *pool, int64_t nb, const int32_t *table, int64_t mb, int64_t p, int kv) {
  int64_t blk = p / BS;
  if (blk >= mb) { ++g_errors; return nullptr; }
  int32_t id = table[blk];
  if (id < 0 || id >= nb) { ++g_errors; return nullptr; }
  return pool + ((static_cast<int64_t>(id) * 2 + kv) * BS + p % BS) * HD;
}

// Causal "attention": appends unit values at lens..lens+n-1, each output reads every cached
// position 0..p (checking the stored positions) and sums the stored values in order.
void causalStep(void **args, const float *unitValues /*[B, n]*/, int64_t B, int64_t n, double mult,
                double rate) {
  auto &pm = desc<6>(args[2]);
  float *pool = data<6, float>(args[2]);
  const int64_t nb = pm.sizes[0];
  if (pm.sizes[1] != 1 || pm.sizes[2] != 2 || pm.sizes[3] != BS || pm.sizes[4] != 1 || pm.sizes[5] != HD) ++g_errors;
  auto &tm = desc<2>(args[3]);
  const int32_t *table = data<2, int32_t>(args[3]);
  const int32_t *lens = data<1, int32_t>(args[4]);
  float *out = data<3, float>(args[5]);
  const int64_t mb = tm.sizes[1];
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t u = 0; u < n; ++u) {
      int64_t p = lens[b] + u;
      float *k = slot(pool, nb, table + b * mb, mb, p, 0);
      float *v = slot(pool, nb, table + b * mb, mb, p, 1);
      if (!k || !v) return;
      k[0] = unitValues[b * n + u];
      k[1] = static_cast<float>(p);
      v[0] = k[0];
      v[1] = -k[1];
      double s = 0;
      for (int64_t q = 0; q <= p; ++q) {
        float *kq = slot(pool, nb, table + b * mb, mb, q, 0);
        float *vq = slot(pool, nb, table + b * mb, mb, q, 1);
        if (!kq || !vq) return;
        if (kq[1] != static_cast<float>(q) || vq[1] != -static_cast<float>(q) || kq[0] != vq[0]) ++g_errors;
        s += static_cast<double>(kq[0]) * mult;
      }
      latentFrom(s, p, rate, out + (b * n + u) * D);
    }
  }
}

float unit1(const int32_t *toks) {
  float a = 0;
  for (int i = 0; i < C1; ++i) a += tokHash(toks[i]) * static_cast<float>(i + 1);
  return a;
}
float unit2(const float *x /*[C2, D]*/) {
  float a = 0;
  for (int i = 0; i < C2; ++i) a += x[i * D] * static_cast<float>(i + 1) + x[i * D + 1] * 0.5f;
  return a;
}

void latent2(const float *prev, float *out /*[C2, D]*/) {
  for (int j = 0; j < C2; ++j)
    for (int k = 0; k < D; ++k)
      out[j * D + k] = static_cast<float>(frac(prev[k] * 1.3 + 0.17 * (j + 1) + 0.01 * k));
}

void tokenLogits(const float *prev, const int32_t *toks, int pos, float *logits) {
  int64_t t = static_cast<int64_t>(std::floor(prev[0] * 997.0 + prev[1] * 13.0)) + pos * 7;
  for (int i = 0; i < pos; ++i) t += static_cast<int64_t>(toks[i]) * 31;
  int target = static_cast<int>(((t % V) + V) % V);
  for (int v = 0; v < V; ++v) {
    int d = std::abs(v - target);
    d = d < V - d ? d : V - d;
    logits[v] = -0.5f * static_cast<float>(d) + 0.001f * static_cast<float>(v % 3);
  }
}

void vanillaLogits(double s, int64_t p, int32_t tok, float *logits) {
  double h = frac(s + 0.03 * static_cast<double>(p));
  int target = static_cast<int>((static_cast<int64_t>(h * 997.0) + tok * 3) % V);
  for (int v = 0; v < V; ++v) {
    int d = std::abs(v - target);
    d = d < V - d ? d : V - d;
    logits[v] = -0.5f * static_cast<float>(d);
  }
}

// Start latents, as the artifact generator writes them into weights.bin.
void startLatent(int level, float *out) {
  for (int k = 0; k < D; ++k) out[k] = static_cast<float>(0.1 * level + 0.03 * k);
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) const char *photon_abi(void) { return "photon-abi-1"; }
__attribute__((visibility("default"))) int photon_test_errors(void) { return g_errors; }
__attribute__((visibility("default"))) void photon_test_start_latent(int level, float *out) { startLatent(level, out); }

// encode_1: tokens i32[B, n*C1]; pool; table; lens; out f32[B, n, D]
__attribute__((visibility("default"))) void photon_encode_1(void **args) {
  checkWeights(args[0]);
  auto &tk = desc<2>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[1]);
  int64_t B = tk.sizes[0], n = tk.sizes[1] / C1;
  if (tk.sizes[1] % C1 || desc<3>(args[5]).sizes[1] != n || desc<3>(args[5]).sizes[2] != D) ++g_errors;
  float units[4096];
  if (B * n > 4096) { ++g_errors; return; }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t u = 0; u < n; ++u) units[b * n + u] = unit1(toks + b * tk.sizes[1] + u * C1);
  causalStep(args, units, B, n, 0.37, 0.1);
}

// encode_2: x f32[B, n*C2, D]; pool; table; lens; out f32[B, n, D]
__attribute__((visibility("default"))) void photon_encode_2(void **args) {
  checkWeights(args[0]);
  auto &xm = desc<3>(args[1]);
  const float *x = data<3, float>(args[1]);
  int64_t B = xm.sizes[0], n = xm.sizes[1] / C2;
  if (xm.sizes[1] % C2 || xm.sizes[2] != D) ++g_errors;
  float units[4096];
  if (B * n > 4096) { ++g_errors; return; }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t u = 0; u < n; ++u) units[b * n + u] = unit2(x + (b * xm.sizes[1] + u * C2) * D);
  causalStep(args, units, B, n, 0.29, 0.05);
}

// latent_2: prev f32[B, D]; out f32[B, C2, D]
__attribute__((visibility("default"))) void photon_latent_2(void **args) {
  checkWeights(args[0]);
  auto &pm = desc<2>(args[1]);
  const float *prev = data<2, float>(args[1]);
  float *out = data<3, float>(args[2]);
  if (desc<3>(args[2]).sizes[1] != C2) ++g_errors;
  for (int64_t b = 0; b < pm.sizes[0]; ++b) latent2(prev + b * D, out + b * C2 * D);
}

// token_step: prev f32[S, D]; tokens i32[S, C1]; pos i32[S]; logits f32[S, V]
__attribute__((visibility("default"))) void photon_token_step(void **args) {
  checkWeights(args[0]);
  auto &pm = desc<2>(args[1]);
  const float *prev = data<2, float>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[2]);
  const int32_t *pos = data<1, int32_t>(args[3]);
  float *logits = data<2, float>(args[4]);
  if (desc<2>(args[2]).sizes[1] != C1 || desc<2>(args[4]).sizes[1] != V) ++g_errors;
  for (int64_t s = 0; s < pm.sizes[0]; ++s) {
    if (pos[s] < 0 || pos[s] >= C1) { ++g_errors; continue; }
    tokenLogits(prev + s * D, toks + s * C1, pos[s], logits + s * V);
  }
}

// forward (family photon, L = 2): tokens i32[B, T]; logits f32[B, T, V], no cache.
__attribute__((visibility("default"))) void photon_forward(void **args) {
  checkWeights(args[0]);
  auto &tk = desc<2>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[1]);
  float *logits = data<3, float>(args[2]);
  const int64_t B = tk.sizes[0], T = tk.sizes[1], M1 = T / C1, M2 = M1 / C2;
  if (T % (C1 * C2)) { ++g_errors; return; }
  static float X1[1 << 14][D], X2[1 << 12][D], XH[1 << 14][D];
  if (M1 > (1 << 14)) { ++g_errors; return; }
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *t = toks + b * T;
    double s = 0;
    for (int64_t p = 0; p < M1; ++p) {
      s += static_cast<double>(unit1(t + p * C1)) * 0.37;
      latentFrom(s, p, 0.1, X1[p]);
    }
    s = 0;
    for (int64_t p = 0; p < M2; ++p) {
      s += static_cast<double>(unit2(X1[p * C2])) * 0.29;
      latentFrom(s, p, 0.05, X2[p]);
    }
    float prev[D];
    for (int64_t g = 0; g < M2; ++g) {
      if (g == 0) startLatent(2, prev);
      else std::memcpy(prev, X2[g - 1], sizeof prev);
      latent2(prev, XH[g * C2]);
    }
    for (int64_t k = 0; k < M1; ++k) {
      if (k == 0) startLatent(1, prev);
      else std::memcpy(prev, XH[k - 1], sizeof prev);
      for (int i = 0; i < C1; ++i) tokenLogits(prev, t + k * C1, i, logits + (b * T + k * C1 + i) * V);
    }
  }
}

// forward for family block (L = 1): token chunk k is fed X(1)_{k-1}.
__attribute__((visibility("default"))) void photon_forward_block(void **args) {
  checkWeights(args[0]);
  auto &tk = desc<2>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[1]);
  float *logits = data<3, float>(args[2]);
  const int64_t B = tk.sizes[0], T = tk.sizes[1], M1 = T / C1;
  static float X1[1 << 14][D];
  if (T % C1 || M1 > (1 << 14)) { ++g_errors; return; }
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *t = toks + b * T;
    double s = 0;
    for (int64_t p = 0; p < M1; ++p) {
      s += static_cast<double>(unit1(t + p * C1)) * 0.37;
      latentFrom(s, p, 0.1, X1[p]);
    }
    float prev[D];
    for (int64_t k = 0; k < M1; ++k) {
      if (k == 0) startLatent(1, prev);
      else std::memcpy(prev, X1[k - 1], sizeof prev);
      for (int i = 0; i < C1; ++i) tokenLogits(prev, t + k * C1, i, logits + (b * T + k * C1 + i) * V);
    }
  }
}

// lm_step (vanilla): tokens i32[B, n]; pool; table; lens; logits f32[B, n, V]
__attribute__((visibility("default"))) void photon_lm_step(void **args) {
  checkWeights(args[0]);
  auto &tk = desc<2>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[1]);
  const int64_t B = tk.sizes[0], n = tk.sizes[1];
  auto &pm = desc<6>(args[2]);
  float *pool = data<6, float>(args[2]);
  const int32_t *table = data<2, int32_t>(args[3]);
  const int64_t mb = desc<2>(args[3]).sizes[1];
  const int32_t *lens = data<1, int32_t>(args[4]);
  float *logits = data<3, float>(args[5]);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t u = 0; u < n; ++u) {
      int64_t p = lens[b] + u;
      float *k = slot(pool, pm.sizes[0], table + b * mb, mb, p, 0);
      float *v = slot(pool, pm.sizes[0], table + b * mb, mb, p, 1);
      if (!k || !v) return;
      k[0] = v[0] = tokHash(toks[b * n + u]);
      k[1] = static_cast<float>(p);
      v[1] = -k[1];
      double s = 0;
      for (int64_t q = 0; q <= p; ++q) {
        float *kq = slot(pool, pm.sizes[0], table + b * mb, mb, q, 0);
        if (!kq) return;
        if (kq[1] != static_cast<float>(q)) ++g_errors;
        s += static_cast<double>(kq[0]) * 0.41;
      }
      vanillaLogits(s, p, toks[b * n + u], logits + (b * n + u) * V);
    }
}

// forward (vanilla): tokens i32[B, T]; logits f32[B, T, V]
__attribute__((visibility("default"))) void photon_forward_vanilla(void **args) {
  checkWeights(args[0]);
  auto &tk = desc<2>(args[1]);
  const int32_t *toks = data<2, int32_t>(args[1]);
  float *logits = data<3, float>(args[2]);
  for (int64_t b = 0; b < tk.sizes[0]; ++b) {
    double s = 0;
    for (int64_t p = 0; p < tk.sizes[1]; ++p) {
      int32_t t = toks[b * tk.sizes[1] + p];
      s += static_cast<double>(tokHash(t)) * 0.41;
      vanillaLogits(s, p, t, logits + (b * tk.sizes[1] + p) * V);
    }
  }
}

} // extern "C"

// End to end: artifacts compiled by photon-compile from test/fixtures/<name>/model.onnx must
// generate, greedily, exactly the reference's tokens in test/fixtures/<name>/gen.json, under
// HierGen and RecGen, one sequence at a time and all prompts in one batch.
//
// Artifacts are looked up as <dir>/<name>.photon with <dir> from the environment variable
// PHOTON_E2E_ARTIFACTS, else the CMake default PHOTON_E2E_ARTIFACTS_DEFAULT. Produce them with
//   photon-import test/fixtures/<name>/model.onnx -o <name>.mlir (+ weights) and
//   photon-compile ... -o <dir>/<name>.photon
// Missing artifacts skip the test with the path that was tried.
#include "artifact.h"
#include "engine.h"
#include "jsonio.h"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <cmath>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

using namespace photon::rt;

namespace {

std::string artifactDir() {
  const char *e = std::getenv("PHOTON_E2E_ARTIFACTS");
  return e && *e ? e : PHOTON_E2E_ARTIFACTS_DEFAULT;
}

// The fixtures' reference files (gen.json, logits.npy): test/fixtures, or
// $PHOTON_FIXTURES_DIR/<name> (a GPU pack carries them without the source tree).
std::string fixtureDir(const std::string &name) {
  const char *e = std::getenv("PHOTON_FIXTURES_DIR");
  return (e && *e ? std::string(e) : std::string(PHOTON_SOURCE_DIR) + "/test/fixtures") + "/" + name;
}

bool isDir(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<int32_t> ints(const Json &v) {
  std::vector<int32_t> out;
  for (const auto &x : v) out.push_back(static_cast<int32_t>(jsonInt(x)));
  return out;
}

// Minimal .npy (v1, little-endian, C order) reader for <f4 / <i4.
template <typename T>
bool readNpy(const std::string &path, std::vector<int64_t> &shape, std::vector<T> &out) {
  std::string b = photon_test::readAll(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) return false;
  uint16_t hl;
  std::memcpy(&hl, b.data() + 8, 2);
  std::string h = b.substr(10, hl);
  if (h.find(sizeof(T) == 4 && std::is_floating_point<T>::value ? "'<f4'" : "'<i4'") == std::string::npos ||
      h.find("'fortran_order': False") == std::string::npos)
    return false;
  size_t a = h.find("'shape': (") + 10, e = h.find(')', a);
  shape.clear();
  std::string dims = h.substr(a, e - a);
  for (size_t p = 0; p < dims.size();) {
    size_t q = dims.find(',', p);
    std::string d = dims.substr(p, q == std::string::npos ? std::string::npos : q - p);
    if (d.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(d));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  if (b.size() < 10 + hl + n * sizeof(T)) return false;
  out.resize(n);
  std::memcpy(out.data(), b.data() + 10 + hl, n * sizeof(T));
  return true;
}

class E2E : public ::testing::TestWithParam<std::string> {};
class RefModelE2E : public ::testing::TestWithParam<std::string> {};

} // namespace

// Greedy HierGen / RecGen tokens of artifact `art` equal gen.json of fixture `name`, one
// sequence at a time and all prompts in one batch.
static void checkAgainstGenJson(const std::string &name, const std::string &art) {
  const std::string fixture = fixtureDir(name);
  std::string text;
  ASSERT_TRUE(readFile(fixture + "/gen.json", text).isOk());
  Json gen;
  std::string err;
  ASSERT_TRUE(parseJson(text, gen, err)) << err;
  std::unique_ptr<Model> model;
  Status st = Model::load(art, {}, model);
  ASSERT_TRUE(st.isOk()) << st.message();
  const int maxNew = static_cast<int>(jsonInt(gen.at("max_new_tokens")));
  std::vector<std::vector<int32_t>> prompts;
  for (const auto &p : gen.at("prompts")) prompts.push_back(ints(p));

  for (const char *modeName : {"hiergen", "recgen"}) {
    const Json *expect = jsonGet(gen, modeName);
    if (!expect || expect->is_null()) continue;
    photon_mode mode = std::string(modeName) == "recgen" ? PHOTON_MODE_RECGEN : PHOTON_MODE_HIERGEN;
    if (mode == PHOTON_MODE_RECGEN && (model->manifest().family != PHOTON_FAMILY_PHOTON ||
                                       model->manifest().levels < 2))
      continue; // L = 1: RecGen is HierGen by definition (checked above)
    for (int batched = 0; batched < 2; ++batched) {
      EngineOptions o;
      o.mode = mode;
      o.memoryBudget = 64ull << 20;
      std::unique_ptr<Engine> e;
      st = Engine::create(*model, o, e);
      ASSERT_TRUE(st.isOk()) << st.message();
      std::map<uint64_t, std::vector<int32_t>> got;
      std::vector<uint64_t> ids;
      auto cb = [&](uint64_t id, const int32_t *t, size_t n, photon_finish) {
        got[id].insert(got[id].end(), t, t + n);
        return true;
      };
      for (size_t i = 0; i < prompts.size(); ++i) {
        SamplingParams sp;
        sp.maxTokens = maxNew;
        uint64_t id;
        ASSERT_TRUE(e->submit(prompts[i], sp, id).isOk());
        ids.push_back(id);
        if (!batched) ASSERT_TRUE(e->run(cb).isOk());
      }
      if (batched) ASSERT_TRUE(e->run(cb).isOk());
      for (size_t i = 0; i < prompts.size(); ++i)
        EXPECT_EQ(got[ids[i]], ints((*expect)[i]))
            << name << " " << modeName << (batched ? " batched" : " alone") << ", prompt " << i;
      EXPECT_EQ(e->cache().inUseBytes(), 0u);
    }
  }
}

// Teacher-forced logits of the `forward` stage against logits.npy, within gen.json's
// tolerance (what photon-run --eval / --logits-out compute).
void checkLogitsAgainstReference(const std::string &name, const std::string &art) {
  const std::string fixture = fixtureDir(name);
  std::vector<int64_t> ts, ls;
  std::vector<int32_t> toks;
  std::vector<float> want;
  ASSERT_TRUE(readNpy(fixture + "/tokens.npy", ts, toks));
  ASSERT_TRUE(readNpy(fixture + "/logits.npy", ls, want));
  ASSERT_EQ(ts.size(), 2u);
  std::unique_ptr<Model> model;
  ASSERT_TRUE(Model::load(art, {}, model).isOk());
  std::vector<float> got(want.size());
  Status st = forwardLogits(*model, toks.data(), static_cast<int32_t>(ts[0]), static_cast<int32_t>(ts[1]), got.data());
  ASSERT_TRUE(st.isOk()) << st.message();
  std::string text;
  ASSERT_TRUE(readFile(fixture + "/gen.json", text).isOk());
  Json gen;
  std::string err;
  ASSERT_TRUE(parseJson(text, gen, err));
  const Json *tol = &gen.at("tolerance").at("logits");
  double atol = tol->at("atol").get<double>(), rtol = tol->at("rtol").get<double>();
  size_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, d);
    if (d > atol + rtol * std::fabs(want[i])) ++bad;
  }
  EXPECT_EQ(bad, 0u) << name << ": " << bad << " of " << want.size() << " logits outside tolerance, max |diff| " << worst;
}

TEST_P(E2E, GreedyTokensEqualTheReference) {
  const std::string name = GetParam();
  const std::string fixture = fixtureDir(name);
  const std::string art = artifactDir() + "/" + name + ".photon";
  if (!isDir(fixture)) GTEST_SKIP() << "fixture " << fixture << " not found";
  if (!isDir(art))
    GTEST_SKIP() << "artifact " << art << " not found: compile test/fixtures/" << name
                 << "/model.onnx with photon-compile into that directory (or set "
                    "PHOTON_E2E_ARTIFACTS) to run this test";
  checkAgainstGenJson(name, art);
  checkLogitsAgainstReference(name, art);
}

// The same check with the stages of refmodel/ (a plain C++ implementation of the ABI for the
// reference models): validates the engine's generation loop against the reference
// independently of the compiler.
TEST_P(RefModelE2E, GreedyTokensEqualTheReference) {
  const std::string name = GetParam();
  const std::string fixture = fixtureDir(name);
  if (!isDir(fixture)) GTEST_SKIP() << "fixture " << fixture << " not found";
  const std::string art = ::testing::TempDir() + "photon-refmodel-" + std::to_string(getpid()) + "-" + name + ".photon";
  const std::string check = std::string(PHOTON_SYSTEM_PYTHON) + " -c 'import numpy, onnx' 2>/dev/null";
  if (std::string(PHOTON_SYSTEM_PYTHON).empty() || std::system(check.c_str()) != 0)
    GTEST_SKIP() << "the system Python with numpy and onnx is needed to wrap the fixture "
                    "(apt-get install python3-numpy python3-onnx)";
  const std::string cmd = std::string(PHOTON_SYSTEM_PYTHON) + " " + PHOTON_REFMODEL_SCRIPT + " " + fixture +
                          " " + art + " " + PHOTON_REFMODEL_LIB;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  checkAgainstGenJson(name, art);

  checkLogitsAgainstReference(name, art);
  photon_test::removeTree(art);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, E2E,
                         ::testing::Values("photon-c44", "photon-c22", "photon-l1", "photon-l3",
                                           "photon-gqa", "block", "vanilla"),
                         [](const ::testing::TestParamInfo<std::string> &i) {
                           std::string s = i.param;
                           for (auto &c : s) if (c == '-') c = '_';
                           return s;
                         });

INSTANTIATE_TEST_SUITE_P(Fixtures, RefModelE2E,
                         ::testing::Values("photon-c44", "photon-c22", "photon-l1", "photon-l3",
                                           "photon-gqa", "block", "vanilla"),
                         [](const ::testing::TestParamInfo<std::string> &i) {
                           std::string s = i.param;
                           for (auto &c : s) if (c == '-') c = '_';
                           return s;
                         });

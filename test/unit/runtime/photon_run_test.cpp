// photon-run as a user runs it: a subprocess over a test artifact (test_artifact.h).
#include "jsonio.h"
#include "test_artifact.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Result {
  int status = -1;
  std::string out;
};

// Runs a shell command, capturing stdout (and stderr when merged by the caller with 2>&1).
Result sh(const std::string &cmd) {
  Result r;
  std::FILE *p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class PhotonRun : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "photon-run-" + std::to_string(getpid());
    std::string err;
    ASSERT_TRUE(photon_test::writeArtifact(dir_, {}, err)) << err;
    photon_test::ArtifactOptions v;
    v.family = "vanilla";
    ASSERT_TRUE(photon_test::writeArtifact(dir_ + "-vanilla", v, err)) << err;
  }
  static std::string run(const std::string &args) {
    return std::string(PHOTON_RUN_EXE) + " " + args;
  }
  static std::string dir_;
};
std::string PhotonRun::dir_;

} // namespace

TEST_F(PhotonRun, Help) {
  Result r = sh(run("--help"));
  EXPECT_EQ(r.status, 0);
  for (const char *flag : {"--prompt", "--mode", "--max-tokens", "--temperature", "--top-k", "--top-p",
                           "--seed", "--prompts-file", "--json", "--eval", "--logits-out",
                           "--memory-budget", "TPM"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST_F(PhotonRun, GeneratesAndPrintsStatistics) {
  Result r = sh(run(dir_ + " --prompt 'Hello' --max-tokens 20 2>&1"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.compare(0, 5, "Hello"), 0) << r.out;
  for (const char *s : {"prefill:", "decode:  20 tokens", "cache level 1: peak", "cache level 2: peak",
                        "memory: weights", "TPM:"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST_F(PhotonRun, JsonIsValidAndModesDiffer) {
  photon::rt::Json h, g;
  std::string err;
  Result r = sh(run(dir_ + " --prompt 'abc' --max-tokens 40 --json"));
  ASSERT_EQ(r.status, 0) << r.out;
  ASSERT_TRUE(photon::rt::parseJson(r.out, h, err)) << err << "\n" << r.out;
  r = sh(run(dir_ + " --prompt 'abc' --max-tokens 40 --json --mode recgen"));
  ASSERT_EQ(r.status, 0) << r.out;
  ASSERT_TRUE(photon::rt::parseJson(r.out, g, err)) << err;
  const auto &hr = h.at("requests")[0];
  const auto &gr = g.at("requests")[0];
  EXPECT_EQ(hr.at("tokens").size(), 40u);
  EXPECT_EQ(hr.at("finish").get<std::string>(), "length");
  EXPECT_EQ(g.at("mode").get<std::string>(), "recgen");
  EXPECT_EQ(g.at("stats").at("cache_peak_bytes").at("1").get<int64_t>(), 0); // no KV(1) under RecGen
  EXPECT_GT(h.at("stats").at("cache_peak_bytes").at("1").get<int64_t>(), 0);
  EXPECT_GT(g.at("stats").at("cache_peak_bytes").at("2").get<int64_t>(), 0);
  (void)gr;
}

TEST_F(PhotonRun, PromptsFileSeedsAndStop) {
  std::string pf = dir_ + "/prompts.txt";
  std::ofstream(pf) << "first\nsecond prompt\n\nthird\n";
  std::string cmd = run(dir_ + " --prompts-file " + pf + " --max-tokens 12 --temperature 0.9 --top-k 30 --seed 4 --json");
  Result a = sh(cmd), b = sh(cmd);
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_EQ(a.out.substr(0, a.out.find("\"stats\"")), b.out.substr(0, b.out.find("\"stats\""))); // same seed, same text
  photon::rt::Json v;
  std::string err;
  ASSERT_TRUE(photon::rt::parseJson(a.out, v, err)) << err;
  EXPECT_EQ(v.at("requests").size(), 3u);
  EXPECT_EQ(v.at("stats").at("peak_batch").get<int64_t>(), 3);
}

TEST_F(PhotonRun, EvalAndLogits) {
  std::string f = dir_ + "/corpus.txt";
  std::ofstream(f) << std::string(300, 'a') << "the quick brown fox jumps over the lazy dog";
  Result r = sh(run(dir_ + " --eval " + f + " --json"));
  ASSERT_EQ(r.status, 0) << r.out;
  photon::rt::Json v;
  std::string err;
  ASSERT_TRUE(photon::rt::parseJson(r.out, v, err)) << err << r.out;
  EXPECT_EQ(v.at("window").get<int64_t>(), 64);
  EXPECT_EQ(v.at("windows").get<int64_t>(), 5);
  EXPECT_EQ(v.at("scored_tokens").get<int64_t>(), 320);
  EXPECT_GT(v.at("perplexity").get<double>(), 1.0);
  EXPECT_GT(v.at("bits_per_byte").get<double>(), 0.0);
  std::string npy = dir_ + "/logits.npy";
  r = sh(run(dir_ + " --prompt 'abcdef' --logits-out " + npy + " 2>&1"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string data = photon_test::readAll(npy);
  ASSERT_GT(data.size(), 128u);
  EXPECT_EQ(data.compare(0, 6, "\x93NUMPY"), 0);
  EXPECT_NE(data.find("'shape': (6, 256)"), std::string::npos);
  EXPECT_EQ(data.size() % 64, (6 * 256 * 4) % 64);
}

TEST_F(PhotonRun, ErrorsAreClear) {
  Result r = sh(run("/nonexistent.photon --prompt x 2>&1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("photon-run: error: cannot open artifact '/nonexistent.photon'"), std::string::npos) << r.out;
  r = sh(run(dir_ + " --prompt x --mode sideways 2>&1"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--mode: expected hiergen or recgen"), std::string::npos) << r.out;
  r = sh(run(dir_ + " --prompt x --max-tokens 100000 --memory-budget 1K 2>&1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("context 100001 needs"), std::string::npos) << r.out;
  r = sh(run(dir_ + "-vanilla --prompt x --mode recgen 2>&1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("RecGen needs a PHOTON artifact"), std::string::npos) << r.out;
  r = sh(run(dir_ + " 2>&1"));
  EXPECT_EQ(r.status, 2);
  r = sh(run(dir_ + " --prompt x --frobnicate 2>&1"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("unknown option '--frobnicate'"), std::string::npos);
}

TEST_F(PhotonRun, CtrlCStopsCleanly) {
  std::string errFile = dir_ + "/sigint.err";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    int errfd = open(errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(devnull, 1);
    dup2(errfd, 2);
    execl(PHOTON_RUN_EXE, PHOTON_RUN_EXE, dir_.c_str(), "--prompt", "x", "--max-tokens", "50000000",
          "--memory-budget", "2G", static_cast<char *>(nullptr));
    _exit(127);
  }
  usleep(500 * 1000);
  kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 130);
  std::string err = photon_test::readAll(errFile);
  EXPECT_NE(err.find("(interrupted)"), std::string::npos) << err;
  EXPECT_NE(err.find("decode:"), std::string::npos) << err;
}

// Issue 19: Ctrl-C during a long prefill stops it (the first press used to be ignored until
// the prefill ended), and --json still writes what was finished.
TEST_F(PhotonRun, CtrlCDuringLongPrefillStopsAndWritesJson) {
  // 100k prompt tokens: the vanilla test model's prefill takes tens of seconds.
  std::string pf = dir_ + "/long-prompt.txt";
  {
    std::FILE *f = std::fopen(pf.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string line(100000, 'a');
    std::fputs(line.c_str(), f);
    std::fputs("\n", f);
    std::fclose(f);
  }
  std::string outFile = dir_ + "/prefill-sigint.json", errFile = dir_ + "/prefill-sigint.err";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int outfd = open(outFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int errfd = open(errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(outfd, 1);
    dup2(errfd, 2);
    const std::string v = dir_ + "-vanilla";
    execl(PHOTON_RUN_EXE, PHOTON_RUN_EXE, v.c_str(), "--prompts-file", pf.c_str(),
          "--max-tokens", "4", "--memory-budget", "1G", "--json", static_cast<char *>(nullptr));
    _exit(127);
  }
  usleep(700 * 1000);
  auto t0 = std::chrono::steady_clock::now();
  kill(pid, SIGINT); // one press
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 130) << photon_test::readAll(errFile);
  EXPECT_LT(waited, 8.0) << "the prefill went on after Ctrl-C";
  photon::rt::Json j;
  std::string err;
  ASSERT_TRUE(photon::rt::parseJson(photon_test::readAll(outFile), j, err))
      << err << "\n" << photon_test::readAll(outFile);
  EXPECT_EQ(j["stats"]["cancelled"], true);
  ASSERT_EQ(j["requests"].size(), 1u);
  EXPECT_EQ(j["requests"][0]["finish"], "cancelled");
  EXPECT_EQ(j["requests"][0]["prompt_tokens"], 100000);
}

// Issue 19: command-line numbers are range-checked, never narrowed, and sampling flags follow
// the C API's rules (top-p 0 is not "off").
TEST_F(PhotonRun, NumbersAreRangeCheckedNotNarrowed) {
  Result r = sh(run(dir_ + " --prompt x --max-tokens 1000000000000 2>&1"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--max-tokens: expected an integer in [1, 2147483647], got '1000000000000'"),
            std::string::npos) << r.out;
  for (const char *p : {"0", "2", "nan", "-0.5"}) {
    r = sh(run(dir_ + " --prompt x --temperature 1 --top-p " + p + " 2>&1"));
    EXPECT_EQ(r.status, 2) << p;
    EXPECT_NE(r.out.find("--top-p: expected a number in (0, 1]"), std::string::npos) << r.out;
  }
  r = sh(run(dir_ + " --prompt x --top-k 4294967296 2>&1"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--top-k: expected an integer in [0, 2147483647]"), std::string::npos) << r.out;
  // A temperature that overflows a float reaches the C API's check as inf.
  r = sh(run(dir_ + " --prompt x --temperature 1e300 2>&1"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("temperature is inf; expected a finite number >= 0"), std::string::npos) << r.out;
}

// CoreMonitor (runtime/src/cores.h): the engine's thread count for --openmp artifacts when
// no count is given, from the cores other processes keep busy.
#include "cores.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

using photon::rt::CoreMonitor;

namespace {

double monotonic() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

} // namespace

TEST(CoreMonitor, EveryFreeCoreAndNoBusyOne) {
  // 2 CPUs: nobody else busy -> 2; one core busy -> 1; both busy -> still 1.
  EXPECT_EQ(CoreMonitor::decide(0.0, 2, 2, 1), 2);
  EXPECT_EQ(CoreMonitor::decide(0.05, 2, 2, 2), 2);
  EXPECT_EQ(CoreMonitor::decide(1.0, 2, 2, 2), 1);
  EXPECT_EQ(CoreMonitor::decide(3.5, 2, 2, 2), 1);
  // 8 CPUs, 2.9 cores busy elsewhere -> 5.
  EXPECT_EQ(CoreMonitor::decide(2.9, 8, 8, 8), 5);
  EXPECT_EQ(CoreMonitor::decide(2.9, 8, 8, 1), 5);
}

TEST(CoreMonitor, HalfBusyCoreKeepsThePreviousChoice) {
  // Others at 0.35-0.65 of a core on 2 CPUs: neither flips the previous decision.
  for (double o : {0.4, 0.5, 0.6}) {
    EXPECT_EQ(CoreMonitor::decide(o, 2, 2, 2), 2) << o;
    EXPECT_EQ(CoreMonitor::decide(o, 2, 2, 1), 1) << o;
  }
  EXPECT_EQ(CoreMonitor::decide(0.3, 2, 2, 1), 2);
  EXPECT_EQ(CoreMonitor::decide(0.7, 2, 2, 2), 1);
}

TEST(CoreMonitor, CappedByTheThreadLimitAndBeforeTheFirstWindow) {
  EXPECT_EQ(CoreMonitor::decide(0.0, 8, 3, 3), 3);
  EXPECT_EQ(CoreMonitor::decide(-1, 8, 4, 4), 4); // nothing measured yet: keep
  EXPECT_EQ(CoreMonitor::decide(0.0, 1, 4, 1), 1);
}

TEST(CoreMonitor, CountsAnotherProcessBusy) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "one CPU: the monitor always picks 1 thread";
  CoreMonitor m(2, 0.0);
  (void)m.pick(); // first sample
  // A child process spins for 0.3 s: its CPU time is "others".
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    double t0 = monotonic();
    volatile double x = 0;
    while (monotonic() - t0 < 0.3) x = x + 1;
    _exit(0);
  }
  int status = 0;
  rusage ru{};
  ASSERT_EQ(wait4(pid, &status, 0, &ru), pid);
  const double childCpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
                          ru.ru_stime.tv_usec * 1e-6;
  (void)m.pick();
  ASSERT_GT(m.lastWindowSeconds(), 0.25);
  // The machine's busy time over the window minus ours includes all of the child's CPU time
  // (less /proc/stat's 10 ms ticks at both ends).
  EXPECT_GE(m.othersBusy() * m.lastWindowSeconds(), childCpu - 0.03) << "child CPU " << childCpu << " s";
  EXPECT_GE(m.current(), 1);
  EXPECT_LE(m.current(), 2);
}

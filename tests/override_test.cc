// libdepot.so as a drop-in malloc: programs run with it preloaded (and, as a
// control, without), a fork-heavy program, memory returned to the OS, a
// late dlopen, and the thread life cycle of the static library.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;
using depot_test::Runfile;
using depot_test::Sh;

std::string Preload() { return "env LD_PRELOAD=" + Runfile("libdepot.so") + " "; }

class Program : public ::testing::TestWithParam<const char *> {};

TEST_P(Program, PassesOnTheCLibraryAndOnDepot) {
  std::string prog = Runfile(std::string("tests/progs/") + GetParam());
  Result control = Sh(prog);
  EXPECT_EQ(control.status, 0) << control.output;
  EXPECT_NE(control.output.find("PASS libc"), std::string::npos) << control.output;
  Result depot = Sh(Preload() + prog);
  EXPECT_EQ(depot.status, 0) << depot.output;
  EXPECT_NE(depot.output.find("PASS depot"), std::string::npos) << depot.output;
}

INSTANTIATE_TEST_SUITE_P(Preloaded, Program,
                         ::testing::Values("malloc_semantics", "cxx_containers",
                                           "memalign_heavy", "fork_threads"));

TEST(Override, TrimReturnsAGibibyteToTheOs) {
  Result r = Sh(Preload() + Runfile("tests/progs/trim_rss") + " 1024");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());  // the RSS figures, for the log
}

TEST(Override, PurgeDelayReturnsMemoryWithoutTrim) {
  // With purge_delay_ms=0 pages go back as soon as their spans are free;
  // only the thread caches and central pools still hold freed blocks.
  Result r = Sh("env DEPOT_CONF=purge_delay_ms=0 " + Preload() +
                Runfile("tests/progs/trim_rss") + " 256");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Override, IdleProcessGivesMemoryBackWithoutBeingCalled) {
  // 512 MiB in small and large blocks over 4 threads, all freed, then the
  // process sleeps: the background purger brings resident memory below 5%
  // of the peak within purge_delay_ms + 1 s.
  Result r = Sh(Preload() + Runfile("tests/progs/idle_rss") + " 512 1000");
  EXPECT_EQ(r.status, 0) << r.output;
  std::printf("%s", r.output.c_str());
  // The same with a shorter delay set by the configuration.
  r = Sh("env DEPOT_CONF=purge_delay_ms=300 " + Preload() +
         Runfile("tests/progs/idle_rss") + " 256 300");
  EXPECT_EQ(r.status, 0) << r.output;
  // A forked child of a process with a purger gets one of its own.
  r = Sh(Preload() + Runfile("tests/progs/idle_rss") + " 256 1000 fork");
  EXPECT_EQ(r.status, 0) << r.output;
  // And without the purger the memory stays: the control.
  r = Sh("env DEPOT_CONF=background_purge=0 " + Preload() +
         Runfile("tests/progs/idle_rss") + " 128 300");
  EXPECT_EQ(r.status, 1) << r.output;
}

TEST(Override, AnswersGlibcsQuestionsAndPrintsStatisticsOnASignal) {
  Result r = Sh("env DEPOT_CONF=stats_signal=SIGUSR2 " + Preload() +
                Runfile("tests/progs/glibc_questions"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Depot memory statistics"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("background purger: "), std::string::npos) << r.output;
}

TEST(Override, HardLimitEveryFamilyFailsWithEnomem) {
  Result r = Sh("env DEPOT_CONF=memory_limit=128m " + Preload() +
                Runfile("tests/progs/limit_fill"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot ENOMEM"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());
}

TEST(Override, LateDlopen) {
  Result r = Sh(Runfile("tests/progs/dlopen_late") + " " + Runfile("libdepot.so"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS"), std::string::npos) << r.output;
}

TEST(Override, ThreadLifeCycleLeavesNothingInUse) {
  Result r = Sh(Runfile("tests/progs/lifecycle"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS in_use=0"), std::string::npos) << r.output;
}

}  // namespace

// Behaviour chosen by the environment at start-up (DEPOTMALLOC,
// DEPOTMALLOCSTATS, DEPOT_CONF), checked in fresh processes of env_probe.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;

Result RunProbe(const std::string &env, const char *mode) {
  return depot_test::Sh("env " + env + " " + depot_test::Runfile("tests/env_probe") + " " +
                        mode);
}

TEST(Env, DebugHooksFromDepotmalloc) {
  Result plain = RunProbe("-u DEPOTMALLOC", "overflow");
  EXPECT_EQ(plain.status, 0);
  EXPECT_NE(plain.output.find("survived"), std::string::npos);
  Result debug = RunProbe("DEPOTMALLOC=debug", "overflow");
  EXPECT_NE(debug.status, 0);
  EXPECT_NE(debug.output.find("bad trailing pad byte"), std::string::npos)
      << debug.output;
  EXPECT_EQ(debug.output.find("survived"), std::string::npos);
}

TEST(Env, MallocRoutesDomainsToTheCLibrary) {
  EXPECT_NE(RunProbe("-u DEPOTMALLOC", "owner").output.find("owner=depot"), std::string::npos);
  EXPECT_NE(RunProbe("DEPOTMALLOC=malloc", "owner").output.find("owner=libc"), std::string::npos);
  Result both = RunProbe("DEPOTMALLOC=malloc_debug", "overflow");
  EXPECT_NE(both.status, 0);
  EXPECT_NE(both.output.find("bad trailing pad byte"), std::string::npos) << both.output;
}

TEST(Env, UnknownDepotmallocIsReportedAndIgnored) {
  Result r = RunProbe("DEPOTMALLOC=fancy", "owner");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("DEPOTMALLOC=fancy: expected debug, malloc or malloc_debug"),
            std::string::npos);
  EXPECT_NE(r.output.find("owner=depot"), std::string::npos);
}

TEST(Env, StatisticsAtExit) {
  for (const char *env : {"DEPOTMALLOCSTATS=1", "DEPOT_CONF=stats=1"}) {
    Result r = RunProbe(env, "stats");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("Depot memory statistics"), std::string::npos) << env;
    EXPECT_NE(r.output.find("\n  64        "), std::string::npos) << r.output;
  }
  EXPECT_EQ(RunProbe("-u DEPOTMALLOCSTATS", "stats").output, "");
}

TEST(Env, ConfigurationReachesTheCore) {
  Result r = RunProbe("DEPOT_CONF=tcache_max_bytes=64k,tcache_batch=8,on_bad_free=warn", "options");
  EXPECT_NE(r.output.find("tcache_max_bytes=65536 tcache_batch=8 abort_on_bad_pointer=0"),
            std::string::npos)
      << r.output;
  Result bad = RunProbe("DEPOT_CONF=tcache_batch=lots", "options");
  EXPECT_EQ(bad.status, 0);
  EXPECT_NE(bad.output.find("tcache_batch=lots (DEPOT_CONF): bad value"), std::string::npos);
  EXPECT_NE(bad.output.find("tcache_batch=32 "), std::string::npos);
  Result strict = RunProbe("DEPOT_CONF=strict_config=1,tcache_batch=lots", "options");
  EXPECT_NE(strict.status, 0);
  EXPECT_NE(strict.output.find("aborting"), std::string::npos);
}

}  // namespace

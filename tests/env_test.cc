// Behaviour chosen by the environment at start-up (DEPOTMALLOC,
// DEPOTMALLOCSTATS, DEPOT_CONF), checked in fresh processes of env_probe.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;

Result RunProbe(const std::string &env, const std::string &mode) {
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

// DEPOTMALLOCSTATS takes the configuration's booleans; anything else is a
// bad value like any other (one line; fatal with strict_config=1).
TEST(Env, StatisticsSwitchIsABoolean) {
  for (const char *on : {"1", "yes", "true", "on", "YES"}) {
    Result r = RunProbe(std::string("DEPOTMALLOCSTATS=") + on, "stats");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("Depot memory statistics"), std::string::npos) << on;
  }
  for (const char *off : {"0", "no", "false", "off", "Off", ""}) {
    Result r = RunProbe(std::string("DEPOTMALLOCSTATS=") + off, "stats");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.output, "") << off;
  }
  Result bad = RunProbe("DEPOTMALLOCSTATS=maybe", "stats");
  EXPECT_EQ(bad.status, 0);
  EXPECT_EQ(bad.output,
            "depot: DEPOTMALLOCSTATS=maybe: bad value; expected 0 or 1 (also "
            "true/false, yes/no, on/off); using 0\n");
  Result strict = RunProbe("DEPOTMALLOCSTATS=2 DEPOT_CONF=strict_config=1", "stats");
  EXPECT_EQ(strict.status, 1);
  EXPECT_NE(strict.output.find("exiting with status 1"), std::string::npos) << strict.output;
}

// A configuration file that would block (a FIFO with no writer, /dev/stdin
// on a pipe that stays open) is refused at once, on one line.
TEST(Env, ConfigurationFileNeverHangs) {
  char dir[] = "/tmp/depot_env_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Result r = RunProbe("DEPOT_CONF_FILE=" + fifo + " timeout 20", "options");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, r.output.find('\n') + 1),
            "depot: config: DEPOT_CONF_FILE '" + fifo +
                "' is a FIFO, not a regular file; using the defaults for the keys it would "
                "set\n");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);  // the write end stays open: a read would block
  Result in = RunProbe("DEPOT_CONF_FILE=/dev/stdin timeout 20", "options <&" +
                                                                  std::to_string(fds[0]));
  EXPECT_EQ(in.status, 0) << in.output;
  EXPECT_NE(in.output.find("DEPOT_CONF_FILE '/dev/stdin' is a FIFO"), std::string::npos)
      << in.output;
  Result strict = RunProbe("DEPOT_CONF_FILE=" + fifo + " DEPOT_CONF=strict_config=1 timeout 20",
                           "options");
  EXPECT_EQ(strict.status, 1) << strict.output;
  Result d = RunProbe(std::string("DEPOT_CONF_FILE=") + dir + " DEPOT_CONF=strict_config=1",
                      "options");
  EXPECT_EQ(d.status, 1) << d.output;
  EXPECT_NE(d.output.find("is a directory"), std::string::npos) << d.output;
  close(fds[0]);
  close(fds[1]);
  unlink(fifo.c_str());
  rmdir(dir);
}

// numa=bind: naming a node this machine lacks: a warning, or with
// strict_config=1 a clean refusal (status 1, no core dump).
TEST(Env, MissingNumaNodeIsFatalWhenStrict) {
  Result warn = RunProbe("DEPOT_CONF=numa=bind:0+1", "options");
  EXPECT_EQ(warn.status, 0);
  EXPECT_NE(warn.output.find("numa=bind:0+1: node 1 does not exist here; ignored"),
            std::string::npos) << warn.output;
  Result strict = RunProbe("DEPOT_CONF=strict_config=1,numa=bind:1", "options");
  EXPECT_EQ(strict.status, 1) << strict.output;
  EXPECT_NE(strict.output.find("node 1 does not exist here"), std::string::npos);
  EXPECT_NE(strict.output.find("strict_config=1 and 1 error above; exiting with status 1"),
            std::string::npos) << strict.output;
  EXPECT_EQ(strict.output.find("tcache_max_bytes="), std::string::npos) << "main never ran";
  Result ok = RunProbe("DEPOT_CONF=strict_config=1,numa=bind:0", "options");
  EXPECT_EQ(ok.status, 0) << ok.output;
}

TEST(Env, EchoedValuesStayOnOneLine) {
  Result r = RunProbe("DEPOTMALLOC=\"$(printf 'de\\nbug\\033[2J')\"", "owner");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("DEPOTMALLOC=de\\nbug\\x1b[2J: expected debug"), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
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
  EXPECT_EQ(strict.status, 1) << "a clean exit, not abort()";
  EXPECT_NE(strict.output.find("exiting with status 1"), std::string::npos);
}

}  // namespace

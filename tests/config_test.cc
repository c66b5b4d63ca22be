// The configuration parser: every key, every kind of bad value, and the
// precedence environment > file > default.
#include <depot/depot.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "alloc/config.h"
#include "alloc/numa_policy.h"

namespace {

// Loads (file text, env text) and returns what was printed on stderr.
std::string Load(const char *file_text, const char *env, int *errors = nullptr) {
  std::string path;
  if (file_text) {
    char tmpl[] = "/tmp/depot_conf_XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, file_text, strlen(file_text)), ssize_t(strlen(file_text)));
    close(fd);
    path = tmpl;
  }
  testing::internal::CaptureStderr();
  int e = depot_config_load_from(file_text ? path.c_str() : nullptr, env);
  std::string err = testing::internal::GetCapturedStderr();
  if (errors) *errors = e;
  if (!path.empty()) unlink(path.c_str());
  return err;
}

uint64_t Get(depot_conf_key_t k) { return depot_config_get(k); }

TEST(Config, DefaultsComeFromTheTable) {
  EXPECT_EQ(Load(nullptr, nullptr), "");
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++) {
    EXPECT_STREQ(depot_config_text(depot_conf_key_t(k)), depot_conf_defs[k].default_text);
    EXPECT_EQ(depot_config_source(depot_conf_key_t(k)), DEPOT_CONF_FROM_DEFAULT);
    EXPECT_NE(depot_conf_defs[k].help[0], 0) << "every key has help text";
  }
  EXPECT_EQ(Get(DEPOT_CONF_tcache_max_bytes), 4u << 20);
  EXPECT_EQ(Get(DEPOT_CONF_arena_reserve_bytes), uint64_t(64) << 30);
}

TEST(Config, EveryKeyAcceptsAGoodValue) {
  int errors = -1;
  std::string err = Load(nullptr,
                         "stats=yes, verbose=off,strict_config=0,on_bad_free=warn,"
                         "tcache_max_bytes=512k,tcache_batch=64,"
                         "arena_reserve_bytes=1G,huge_threshold_bytes=1mb,"
                         "numa=bind:0,numa_strict=1,purge_delay_ms=0,purge=free",
                         &errors);
  EXPECT_EQ(err, "");
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(Get(DEPOT_CONF_stats), 1u);
  EXPECT_EQ(Get(DEPOT_CONF_verbose), 0u);
  EXPECT_EQ(Get(DEPOT_CONF_on_bad_free), 1u);  // index of "warn"
  EXPECT_EQ(Get(DEPOT_CONF_tcache_max_bytes), 512u << 10);
  EXPECT_EQ(Get(DEPOT_CONF_tcache_batch), 64u);
  EXPECT_EQ(Get(DEPOT_CONF_arena_reserve_bytes), uint64_t(1) << 30);
  EXPECT_EQ(Get(DEPOT_CONF_huge_threshold_bytes), 1u << 20);
  EXPECT_STREQ(depot_config_text(DEPOT_CONF_numa), "bind:0");
  EXPECT_EQ(Get(DEPOT_CONF_numa_strict), 1u);
  EXPECT_EQ(Get(DEPOT_CONF_purge_delay_ms), 0u);
  EXPECT_EQ(Get(DEPOT_CONF_purge), 1u);  // index of "free"
  EXPECT_EQ(depot_config_source(DEPOT_CONF_tcache_batch), DEPOT_CONF_FROM_ENV);
  EXPECT_STREQ(depot_config_text(DEPOT_CONF_tcache_batch), "64");
}

TEST(Config, NumaValues) {
  depot_numa_policy_t policy;
  uint64_t mask;
  EXPECT_EQ(depot_numa_parse("off", 3, &policy, &mask), 0);
  EXPECT_EQ(policy, DEPOT_NUMA_OFF);
  EXPECT_EQ(depot_numa_parse("interleave", 10, &policy, &mask), 0);
  EXPECT_EQ(policy, DEPOT_NUMA_INTERLEAVE);
  EXPECT_EQ(depot_numa_parse("bind:0,2,63", 11, &policy, &mask), 0);
  EXPECT_EQ(policy, DEPOT_NUMA_BIND);
  EXPECT_EQ(mask, (uint64_t(1) << 63) | 5u);
  for (const char *bad : {"bind:", "bind:64", "bind:1,", "bind:a", "bind:-1", "locale",
                          "bind:1,,2", "bind:3-1", "bind:1-", "bind:+1", "bind:1++2",
                          "bind:0-64", "bind:1-2-3", "bind:1+", "bind:1 +2"})
    EXPECT_EQ(depot_numa_parse(bad, strlen(bad), &policy, &mask), -1) << bad;
}

// A node list that DEPOT_CONF can carry: '+' and ranges; ',' stays accepted.
TEST(Config, NumaNodeListsSurviveTheItemSeparator) {
  depot_numa_policy_t policy;
  uint64_t mask;
  EXPECT_EQ(depot_numa_parse("bind:0+2", 8, &policy, &mask), 0);
  EXPECT_EQ(policy, DEPOT_NUMA_BIND);
  EXPECT_EQ(mask, 5u);
  EXPECT_EQ(depot_numa_parse("bind:0-3", 8, &policy, &mask), 0);
  EXPECT_EQ(mask, 15u);
  EXPECT_EQ(depot_numa_parse("BIND:1-2+8+60-63", 16, &policy, &mask), 0);
  EXPECT_EQ(mask, (uint64_t(15) << 60) | (1u << 8) | 6u);
  for (const char *env : {"numa=bind:0+2,stats=1", "stats=1,numa=bind:0,2",
                          "numa=bind:0,2,stats=1", "numa=bind:0-2,stats=1"}) {
    int errors = -1;
    EXPECT_EQ(Load(nullptr, env, &errors), "") << env;
    EXPECT_EQ(errors, 0) << env;
    EXPECT_EQ(Get(DEPOT_CONF_stats), 1u) << env;
    EXPECT_EQ(depot_config_source(DEPOT_CONF_numa), DEPOT_CONF_FROM_ENV) << env;
  }
  Load(nullptr, "numa=bind:0,2,stats=1");
  EXPECT_STREQ(depot_config_text(DEPOT_CONF_numa), "bind:0,2");
  EXPECT_EQ(Load("numa=bind:0,2\n", nullptr), "");
  EXPECT_STREQ(depot_config_text(DEPOT_CONF_numa), "bind:0,2");
  // Only numa='s node list goes on past a comma: a stray piece after another
  // key is an item of its own, so a good strict_config=1 before it holds.
  int errors = 0;
  std::string err = Load(nullptr, "tcache_batch=8,junk,numa=bind:0,2,x", &errors);
  EXPECT_EQ(errors, 2);
  EXPECT_NE(err.find("'junk' (DEPOT_CONF) is not key=value"), std::string::npos) << err;
  EXPECT_NE(err.find("'x' (DEPOT_CONF) is not key=value"), std::string::npos) << err;
  EXPECT_EQ(Get(DEPOT_CONF_tcache_batch), 8u);
  EXPECT_STREQ(depot_config_text(DEPOT_CONF_numa), "bind:0,2");
}

// What is echoed stays on one line, whatever bytes the user typed.
TEST(Config, ControlCharactersAreEscaped) {
  int errors = 0;
  std::string err = Load(nullptr, "tcache_batch=1\n2\x1b[31m\r\t\x7f\xff\\", &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("tcache_batch=1\\n2\\x1b[31m\\r\\t\\x7f\\xff\\\\ (DEPOT_CONF)"),
            std::string::npos) << err;
  for (const char *env : {"x\ny=1", "\x01\x02", "stats=1,stats=\n"}) {
    err = Load(nullptr, env, &errors);
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), errors) << err;
    for (char c : err) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << err;
  }
  // A long value is cut with "...", still one line.
  std::string lots = "tcache_batch=" + std::string(5000, '\x01');
  err = Load(nullptr, lots.c_str(), &errors);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
  EXPECT_NE(err.find("\\x01..."), std::string::npos) << err;
}

// A file of exactly the limit is whole; one byte more is reported.
TEST(Config, FileSizesAroundTheLimit) {
  for (size_t size : {size_t(DEPOT_CONF_FILE_MAX) - 1, size_t(DEPOT_CONF_FILE_MAX),
                      size_t(DEPOT_CONF_FILE_MAX) + 1}) {
    std::string text = "stats=1\n";
    text += std::string(size - text.size() - 1, '#') + "\n";
    ASSERT_EQ(text.size(), size);
    int errors = -1;
    std::string err = Load(text.c_str(), nullptr, &errors);
    if (size <= DEPOT_CONF_FILE_MAX) {
      EXPECT_EQ(err, "") << size;
      EXPECT_EQ(errors, 0) << size;
    } else {
      EXPECT_EQ(errors, 1);
      EXPECT_NE(err.find("is larger than 16384 bytes; the rest is ignored"),
                std::string::npos) << err;
    }
    EXPECT_EQ(Get(DEPOT_CONF_stats), 1u);
  }
}

// Not a regular file, or unreadable: one line, never a hang, never taken
// as empty.
TEST(Config, SpecialFilesAreRefused) {
  char dir[] = "/tmp/depot_conf_dir_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct {
    const char *path, *why;
  } cases[] = {{dir, "is a directory"},
               {fifo.c_str(), "is a FIFO, not a regular file"},
               {"/dev/null", "is not a regular file"},
               {"/proc/self/mem", "cannot be read"}};
  for (const auto &c : cases) {
    testing::internal::CaptureStderr();
    int errors = depot_config_load_from(c.path, "stats=1");
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(errors, 1) << c.path;
    EXPECT_EQ(err, "depot: config: DEPOT_CONF_FILE '" + std::string(c.path) + "' " +
                       c.why + "; using the defaults for the keys it would set\n");
    EXPECT_EQ(Get(DEPOT_CONF_stats), 1u) << "the environment still applies";
  }
  unlink(fifo.c_str());
  rmdir(dir);
}

struct Bad {
  const char *env;
  const char *message;  // a piece of the one line printed
};

class ConfigBad : public ::testing::TestWithParam<Bad> {};

TEST_P(ConfigBad, IsReportedOnOneLineAndChangesNothing) {
  int errors = 0;
  std::string err = Load(nullptr, GetParam().env, &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_NE(err.find(GetParam().message), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(Get(DEPOT_CONF_tcache_batch), 32u) << "the default stays";
  EXPECT_EQ(Get(DEPOT_CONF_tcache_max_bytes), 4u << 20);
  EXPECT_EQ(Get(DEPOT_CONF_stats), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Values, ConfigBad,
    ::testing::Values(
        Bad{"tcache_batch=", "tcache_batch= (DEPOT_CONF): empty value; expected "
                             "an integer from 2 to 256; using 32"},
        Bad{"tcache_batch=abc", "tcache_batch=abc (DEPOT_CONF): bad value"},
        Bad{"tcache_batch=-5", "tcache_batch=-5 (DEPOT_CONF): bad value"},
        Bad{"tcache_batch=1", "expected an integer from 2 to 256; using 32"},
        Bad{"tcache_batch=257", "expected an integer from 2 to 256"},
        Bad{"tcache_batch=12x", "bad value"},
        Bad{"tcache_batch=99999999999999999999999", "bad value"},
        Bad{"tcache_max_bytes=17179869184g", "tcache_max_bytes=17179869184g"},
        Bad{"tcache_max_bytes=2t", "with an optional k, m or g suffix; using 4m"},
        Bad{"tcache_max_bytes=2q", "using 4m"},
        Bad{"tcache_max_bytes=2g", "from 0 to 1073741824 bytes"},
        Bad{"stats=maybe", "stats=maybe (DEPOT_CONF): bad value; expected 0 or 1"},
        Bad{"on_bad_free=explode", "expected one of abort|warn; using abort"},
        Bad{"no_such_key=1", "unknown key 'no_such_key' (DEPOT_CONF); ignored. "
                             "Keys: stats, verbose"},
        Bad{"tcache_batch", "'tcache_batch' (DEPOT_CONF) is not key=value"},
        Bad{"numa=sideways", "numa=sideways (DEPOT_CONF): bad value; expected off, "
                             "local, interleave or bind:<nodes> (e.g. bind:0+2, "
                             "bind:0-3); using local"},
        Bad{"purge_delay_ms=4000000", "expected an integer from 0 to 3600000"},
        Bad{"purge=lazy", "expected one of dontneed|free"}));

TEST(Config, DuplicateKeyIsReportedAndTheLaterWins) {
  int errors = 0;
  std::string err = Load(nullptr, "tcache_batch=8,tcache_batch=16", &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_NE(err.find("tcache_batch given twice (DEPOT_CONF); the later value '16' "
                     "is used"),
            std::string::npos)
      << err;
  EXPECT_EQ(Get(DEPOT_CONF_tcache_batch), 16u);
}

TEST(Config, EnvironmentOverridesFileOverridesDefault) {
  std::string err = Load(
      "# a comment line\n"
      "tcache_batch = 8   # trailing comment\n"
      "\n"
      "tcache_max_bytes=1m\n"
      "stats=1\n",
      "tcache_batch=100");
  EXPECT_EQ(err, "");
  EXPECT_EQ(Get(DEPOT_CONF_tcache_batch), 100u);
  EXPECT_EQ(depot_config_source(DEPOT_CONF_tcache_batch), DEPOT_CONF_FROM_ENV);
  EXPECT_EQ(Get(DEPOT_CONF_tcache_max_bytes), 1u << 20);
  EXPECT_EQ(depot_config_source(DEPOT_CONF_tcache_max_bytes), DEPOT_CONF_FROM_FILE);
  EXPECT_EQ(Get(DEPOT_CONF_stats), 1u);
  EXPECT_EQ(Get(DEPOT_CONF_huge_threshold_bytes), 2u << 20);
  EXPECT_EQ(depot_config_source(DEPOT_CONF_huge_threshold_bytes), DEPOT_CONF_FROM_DEFAULT);
  EXPECT_STREQ(depot_config_source_name(DEPOT_CONF_FROM_FILE), "file");
}

TEST(Config, FileErrorsNameTheLine) {
  int errors = 0;
  std::string err = Load("stats=1\nverbose=2\n", nullptr, &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_NE(err.find("line 2): bad value"), std::string::npos) << err;
  EXPECT_EQ(Get(DEPOT_CONF_stats), 1u);
}

TEST(Config, UnreadableFileIsReported) {
  testing::internal::CaptureStderr();
  int errors = depot_config_load_from("/nonexistent/depot.conf", "stats=1");
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(errors, 1);
  EXPECT_NE(err.find("DEPOT_CONF_FILE '/nonexistent/depot.conf' cannot be opened"),
            std::string::npos);
  EXPECT_EQ(Get(DEPOT_CONF_stats), 1u) << "the environment still applies";
}

TEST(ConfigDeath, StrictConfigMakesErrorsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // A clean exit with status 1, not abort() (SIGABRT, a core dump).
  EXPECT_EXIT(depot_config_load_from(nullptr, "strict_config=1,tcache_batch=0"),
              testing::ExitedWithCode(1),
              "tcache_batch=0(.|\n)*strict_config=1 and 1 error above; exiting with "
              "status 1\n$");
  char dir[] = "/tmp/depot_conf_dir_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  EXPECT_EXIT(depot_config_load_from(dir, "strict_config=1"), testing::ExitedWithCode(1),
              "is a directory(.|\n)*exiting with status 1");
  EXPECT_EXIT(depot_config_load_from("/proc/self/mem", "strict_config=1"),
              testing::ExitedWithCode(1), "cannot be read(.|\n)*exiting with status 1");
  rmdir(dir);
  // Without errors, strict is harmless.
  EXPECT_EQ(Load(nullptr, "strict_config=1,stats=0"), "");
}

}  // namespace

// DepotMem_OptionName lists exactly the names GetOption answers for: every
// key, then every statistic, then NULL.
TEST(OptionName, EnumeratesEveryKeyAndStatistic) {
  unsigned keys = 0, stats = 0;
  char buf[256];
  for (unsigned i = 0; const char *name = DepotMem_OptionName(i); i++) {
    (std::strncmp(name, "stats.", 6) == 0 ? stats : keys)++;
    if (stats) {
      EXPECT_EQ(std::strncmp(name, "stats.", 6), 0) << "keys first";
    }
    EXPECT_EQ(DepotMem_GetOption(name, buf, sizeof buf), 0) << name;
  }
  EXPECT_GE(keys, 20u);
  EXPECT_GE(stats, 10u);
  EXPECT_EQ(DepotMem_OptionName(keys + stats), nullptr);
  EXPECT_EQ(DepotMem_OptionName(~0u), nullptr);
  EXPECT_STREQ(DepotMem_OptionName(0), "stats") << "the reference's order";
}

// The bad-configuration driver: random and adversarial DEPOT_CONF strings
// and files, special files, and sizes at and around every limit, a bounded
// number of each.  Whatever the input, loading returns (never a hang), says
// one line per error and nothing when there is none, prints only printable
// characters, and leaves every key within what it accepts; with
// strict_config=1 a bad configuration ends the process with status 1 and no
// core dump.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alloc/config.h"
#include "alloc/numa_policy.h"
#include "tests/subprocess.h"

namespace {

std::string TempPath(const char *name) {
  const char *dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

void WriteFile(const std::string &path, const std::string &text) {
  FILE *f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(text.data(), 1, text.size(), f), text.size());
  fclose(f);
}

// Loads (file, env) with strict_config=0 forced last, and checks what every
// load must give.  Returns the errors.
int LoadAndCheck(const char *file, const std::string &env) {
  // An environment string ends at its first NUL byte: cut there, so that
  // the forced strict_config=0 is really the last item.
  std::string forced = env.substr(0, env.find('\0')) + ",strict_config=0";
  testing::internal::CaptureStderr();
  int errors = depot_config_load_from(file, forced.c_str());
  std::string err = testing::internal::GetCapturedStderr();
  std::string shown = env.size() > 80 ? env.substr(0, 80) + "..." : env;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), errors) << shown << "\n" << err;
  for (char c : err)
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f))
        << "raw byte " << int((unsigned char)c) << " in: " << err;
  for (size_t at = 0; at < err.size(); at = err.find('\n', at) + 1)
    EXPECT_EQ(err.compare(at, 15, "depot: config: "), 0) << err;
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++) {
    const depot_conf_def_t &d = depot_conf_defs[k];
    uint64_t v = depot_config_get(depot_conf_key_t(k));
    if (d.type == DEPOT_CONF_BOOL || d.type == DEPOT_CONF_UINT || d.type == DEPOT_CONF_SIZE) {
      EXPECT_GE(v, d.min) << d.name;
      EXPECT_LE(v, d.max) << d.name;
    }
  }
  const char *numa = depot_config_text(DEPOT_CONF_numa);
  depot_numa_policy_t policy;
  uint64_t mask;
  EXPECT_EQ(depot_numa_parse(numa, strlen(numa), &policy, &mask), 0) << numa;
  return errors;
}

// Values at and around every key's limits, and the shapes that break parsers.
std::vector<std::string> AdversarialItems() {
  std::vector<std::string> items;
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++) {
    const depot_conf_def_t &d = depot_conf_defs[k];
    std::string key = d.name;
    if (d.type == DEPOT_CONF_UINT || d.type == DEPOT_CONF_SIZE || d.type == DEPOT_CONF_BOOL) {
      for (uint64_t v : {d.min, d.max, d.max + 1, d.min - 1, d.max * 2, ~uint64_t(0)})
        items.push_back(key + "=" + std::to_string(v));
      items.push_back(key + "=18446744073709551616");  // 2^64
      items.push_back(key + "=00000000000000000000000000001");
    }
    if (d.type == DEPOT_CONF_SIZE)
      for (const char *s : {"1k", "1K", "1kb", "16777216k", "64m", "1g", "17179869184g",
                            "1t", "k", "1kk", "1 k", "-1k"})
        items.push_back(key + "=" + s);
    for (const char *s : {"", " ", "=", "==", "\t", "\n", "\x1b[2J", "\xff\xfe", "#",
                          "1,", ",", "on", "OFF", "Yes", "maybe"})
      items.push_back(key + "=" + s);
    items.push_back(key);
    items.push_back(" " + key + " = 1 ");
    items.push_back(key + "=" + std::string(63, '1'));
    items.push_back(key + "=" + std::string(64, '1'));
    items.push_back(key + "=" + std::string(65, '1'));
  }
  for (const char *s :
       {"numa=bind:0", "numa=bind:63", "numa=bind:64", "numa=bind:0-63", "numa=bind:0-64",
        "numa=bind:3-1", "numa=bind:0+2", "numa=bind:0,2", "numa=bind:0,,2", "numa=bind:",
        "numa=bind:+", "numa=bind:-", "numa=bind:0-", "numa=bind:1-2-3", "numa=BIND:1",
        "numa=interleave", "numa=Local", "numa=bind:0+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16",
        "numa=bind:0+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+17+18+19+20+21+22"})
    items.push_back(s);
  items.push_back(std::string(5000, ','));
  items.push_back(std::string(5000, '='));
  items.push_back("stats=1" + std::string(20000, ' '));
  items.push_back(std::string(1, '\0') + "stats=1");
  return items;
}

TEST(ConfigDriver, AdversarialAndRandomStrings) {
  std::vector<std::string> items = AdversarialItems();
  std::mt19937_64 rng(19);
  // Each item alone, in DEPOT_CONF and as a file line.
  std::string file = TempPath("driver.conf");
  for (const std::string &item : items) {
    LoadAndCheck(nullptr, item);
    WriteFile(file, item + "\n");
    LoadAndCheck(file.c_str(), "");
  }
  // Random joins of items, and random bytes (2,000 of each).
  const char alphabet[] = "abcdefghijklmnopqrstuvwxyz_=,+-:#0123456789kmgKMG \t\n\r\x01\x7f\xff";
  for (int i = 0; i < 2000; i++) {
    std::string s;
    for (int n = 1 + int(rng() % 6); n > 0; n--)
      s += items[rng() % items.size()] + (rng() % 4 ? "," : "");
    LoadAndCheck(nullptr, s);
    std::string r;
    for (size_t n = rng() % 200; n > 0; n--)
      r += rng() % 3 ? alphabet[rng() % (sizeof alphabet - 1)] : char(rng() % 256);
    r.erase(std::remove(r.begin(), r.end(), '\0'), r.end());
    LoadAndCheck(nullptr, r);
    if (i % 10 == 0) {
      std::replace(s.begin(), s.end(), ',', '\n');
      WriteFile(file, s + "\n" + r);
      LoadAndCheck(file.c_str(), "");
    }
  }
  unlink(file.c_str());
}

TEST(ConfigDriver, FileSizesAroundTheLimit) {
  std::string file = TempPath("sized.conf");
  for (size_t size : {size_t(0), size_t(1), size_t(DEPOT_CONF_FILE_MAX) - 1,
                      size_t(DEPOT_CONF_FILE_MAX), size_t(DEPOT_CONF_FILE_MAX) + 1,
                      size_t(DEPOT_CONF_FILE_MAX) * 64}) {
    // One key, then comment lines to the size: valid from end to end.
    std::string text = size >= 8 ? "stats=1\n" : "";
    while (text.size() < size) {
      size_t line = std::min<size_t>(size - text.size(), 100);
      text += std::string(line - 1, '#') + "\n";
    }
    WriteFile(file, text);
    int errors = LoadAndCheck(file.c_str(), "");
    if (size <= DEPOT_CONF_FILE_MAX) {
      EXPECT_EQ(errors, 0) << size;
    } else {
      EXPECT_EQ(errors, 1) << size;
      testing::internal::CaptureStderr();
      depot_config_load_from(file.c_str(), nullptr);
      std::string err = testing::internal::GetCapturedStderr();
      EXPECT_NE(err.find("is larger than 16384 bytes"), std::string::npos) << size;
    }
  }
  unlink(file.c_str());
}

TEST(ConfigDriver, SpecialFiles) {
  std::string dir = TempPath("special");
  mkdir(dir.c_str(), 0700);
  std::string fifo = dir + "/fifo", link = dir + "/link", ctl = dir + "/a\nb\x1b";
  unlink(fifo.c_str());
  unlink(link.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(symlink(fifo.c_str(), link.c_str()), 0);
  for (const std::string &path : {dir, fifo, link, std::string("/dev/null"),
                                   std::string("/dev/zero"), std::string("/dev/tty"),
                                   std::string("/proc/self/mem"), std::string("/nonexistent"),
                                   ctl, dir + "/"}) {
    EXPECT_EQ(LoadAndCheck(path.c_str(), "stats=1"), 1) << path;
    EXPECT_EQ(depot_config_get(DEPOT_CONF_stats), 1u) << path;
  }
  // An empty path means no file.
  EXPECT_EQ(LoadAndCheck("", ""), 0);
  unlink(link.c_str());
  unlink(fifo.c_str());
  rmdir(dir.c_str());
}

// In a fresh process with strict_config=1: a bad configuration is a clean
// exit with status 1 (never SIGABRT, never a hang); a good one runs.
TEST(ConfigDriver, StrictRefusesCleanly) {
  std::string probe = depot_test::Runfile("tests/env_probe");
  std::string fifo = TempPath("strict.fifo");
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct {
    std::string env;
    int status;
  } cases[] = {
      {"DEPOT_CONF=strict_config=1,tcache_batch=1", 1},
      {"DEPOT_CONF=strict_config=1,tcache_batch=257", 1},
      {"DEPOT_CONF=strict_config=1,tcache_batch=256", 0},
      {"DEPOT_CONF=strict_config=1,numa=bind:63", 1},
      {"DEPOT_CONF=strict_config=1,numa=bind:64", 1},
      {"DEPOT_CONF=strict_config=1,numa=bind:0", 0},
      {"DEPOT_CONF=strict_config=1,no_such_key=1", 1},
      {"DEPOT_CONF=strict_config=1,stats", 1},
      {"DEPOT_CONF=strict_config=1 DEPOT_CONF_FILE=" + fifo, 1},
      {"DEPOT_CONF=strict_config=1 DEPOT_CONF_FILE=/dev/zero", 1},
      {"DEPOT_CONF=strict_config=1 DEPOT_CONF_FILE=/", 1},
      {"DEPOT_CONF=strict_config=1 DEPOTMALLOC=fast", 1},
      {"DEPOT_CONF=strict_config=1 DEPOTMALLOCSTATS=2", 1},
      {"DEPOT_CONF=strict_config=1 DEPOTMALLOCSTATS=off", 0},
      {"DEPOT_CONF='strict_config=1,huge_threshold_bytes=3145729'", 1},
      {"DEPOT_CONF='strict_config=1,huge_threshold_bytes=3m'", 0},
      {"DEPOT_CONF='strict_config=1,arena_reserve_bytes=64m'", 0},
      {"DEPOT_CONF='strict_config=1,arena_reserve_bytes=67108863'", 1},
  };
  for (const auto &c : cases) {
    depot_test::Result r = depot_test::Sh("env " + c.env + " timeout 20 " + probe + " options");
    EXPECT_EQ(r.status, c.status) << c.env << "\n" << r.output;
    if (c.status == 1) {
      EXPECT_NE(r.output.find("exiting with status 1\n"), std::string::npos) << r.output;
      EXPECT_EQ(r.output.find("tcache_max_bytes="), std::string::npos) << "main ran";
    }
  }
  unlink(fifo.c_str());
}

}  // namespace

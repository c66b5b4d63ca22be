// Memory control: the control-group reader against fake cgroup trees, the
// hard and soft memory limits in this process (set at run time through the
// control interface), the control interface's errors, and a real run in a
// child memory cgroup where this test may create one.
#include <errno.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/limit.h"
#include "depot/depot.h"
#include "tests/probe.h"
#include "tests/subprocess.h"

namespace {

// A fake cgroup tree under a temporary directory.
class FakeCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/depot_cg_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { depot_test::Sh("rm -rf " + root_); }
  void Write(const std::string &rel, const std::string &text) {
    std::string path = root_ + "/" + rel;
    depot_test::Sh("mkdir -p $(dirname " + path + ")");
    FILE *f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    fputs(text.c_str(), f);
    fclose(f);
  }
  int Read(uint64_t *out) {
    return depot_cgroup_limit((root_ + "/self").c_str(), (root_ + "/fs").c_str(), out);
  }
  std::string root_;
};

TEST_F(FakeCgroup, V2MaxAndHighTheSmaller) {
  Write("self", "0::/app\n");
  Write("fs/app/memory.max", "1073741824\n");
  Write("fs/app/memory.high", "805306368\n");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, 805306368u);
}

TEST_F(FakeCgroup, V2MaxMeansNoLimit) {
  Write("self", "0::/app\n");
  Write("fs/app/memory.max", "max\n");
  Write("fs/app/memory.high", "max\n");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, UINT64_MAX);
}

TEST_F(FakeCgroup, V2NestedTakesTheSmallestAncestor) {
  Write("self", "0::/a/b/c\n");
  Write("fs/a/memory.max", "268435456\n");
  Write("fs/a/b/memory.max", "max\n");
  Write("fs/a/b/c/memory.max", "1073741824\n");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, 268435456u);
}

TEST_F(FakeCgroup, V1LimitInBytesAndItsUnlimitedValue) {
  Write("self", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n");
  Write("fs/memory/docker/abc/memory.limit_in_bytes", "536870912\n");
  Write("fs/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
  Write("fs/memory.max", "1048576\n");  // v2 files are not read on v1
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, 536870912u);
  Write("fs/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, UINT64_MAX);
}

TEST_F(FakeCgroup, V1ControllerListedWithOthers) {
  Write("self", "7:cpu,memory:/job\n");
  Write("fs/memory/job/memory.limit_in_bytes", "104857600");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, 104857600u);
}

TEST_F(FakeCgroup, GarbageCountsAsNoLimit) {
  Write("self", "0::/g\n");
  Write("fs/g/memory.max", "12ab\n");
  Write("fs/g/memory.high", "-5\n");
  Write("fs/memory.max", "\x01\x02garbage");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, UINT64_MAX);
}

TEST_F(FakeCgroup, MissingOrMalformedSelfIsAnError) {
  uint64_t v = 0;
  EXPECT_EQ(Read(&v), ENOENT);  // no self file
  Write("self", "garbage without colons\n::\n");
  EXPECT_EQ(Read(&v), ENOENT);
  Write("self", "0::/nowhere\n");  // no limit file at any level
  EXPECT_EQ(Read(&v), ENOENT);
}

TEST_F(FakeCgroup, ContainerRootPath) {
  // Inside a cgroup namespace the group is "/": the mount's own files.
  Write("self", "0::/\n");
  Write("fs/memory.max", "2147483648\n");
  uint64_t v = 0;
  ASSERT_EQ(Read(&v), 0);
  EXPECT_EQ(v, 2147483648u);
}

uint64_t Stat(const char *name) {
  char buf[64];
  EXPECT_EQ(DepotMem_GetOption(name, buf, sizeof buf), 0) << DepotMem_OptionError();
  return strtoull(buf, nullptr, 10);
}

TEST(Control, ReadsAndSetsByName) {
  char buf[64];
  ASSERT_EQ(DepotMem_GetOption("purge_delay_ms", buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "1000");
  ASSERT_EQ(DepotMem_SetOption("purge_delay_ms", "250"), 0);
  ASSERT_EQ(DepotMem_GetOption("purge_delay_ms", buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "250");
  ASSERT_EQ(DepotMem_SetOption("purge_delay_ms", "1000"), 0);
  ASSERT_EQ(DepotMem_GetOption("tcache_batch", buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "32");
  EXPECT_GT(Stat("stats.resident_bytes"), 0u);
  EXPECT_GT(Stat("stats.os_mapped_bytes"), 0u);
}

TEST(Control, ClearErrors) {
  char buf[64];
  EXPECT_EQ(DepotMem_GetOption("no_such_key", buf, sizeof buf), ENOENT);
  EXPECT_NE(std::string(DepotMem_OptionError()).find("no_such_key: no such"), std::string::npos);
  EXPECT_EQ(DepotMem_GetOption("stats.nope", buf, sizeof buf), ENOENT);
  EXPECT_EQ(DepotMem_SetOption("purge_delay_ms", "99999999"), EINVAL);
  EXPECT_NE(std::string(DepotMem_OptionError()).find("an integer from 0 to 3600000"),
            std::string::npos)
      << DepotMem_OptionError();
  EXPECT_EQ(DepotMem_SetOption("memory_limit", "lots"), EINVAL);
  EXPECT_EQ(DepotMem_SetOption("background_purge", "sometimes"), EINVAL);
  // Guarded sampling: its pool is made at start-up or never, so a process
  // started without it can set only 0.
  EXPECT_EQ(DepotMem_SetOption("guard_sample", "100"), EPERM);
  EXPECT_NE(std::string(DepotMem_OptionError()).find("only at start-up"),
            std::string::npos)
      << DepotMem_OptionError();
  char gbuf[32];
  ASSERT_EQ(DepotMem_GetOption("guard_sample", gbuf, sizeof gbuf), 0);
  EXPECT_STREQ(gbuf, "0");
  EXPECT_EQ(DepotMem_SetOption("guard_sample", "0"), 0);
  EXPECT_EQ(DepotMem_SetOption("tcache_batch", "8"), EPERM);
  EXPECT_NE(std::string(DepotMem_OptionError()).find("fixed at start-up"), std::string::npos);
  EXPECT_EQ(DepotMem_SetOption("stats.held_bytes", "0"), EPERM);
  EXPECT_EQ(DepotMem_SetOption("nope", "1"), ENOENT);
  char tiny[2];
  EXPECT_EQ(DepotMem_GetOption("purge", tiny, sizeof tiny), ERANGE);
}

// Every key of the configuration can be read through the interface.
TEST(Control, EveryKeyReads) {
  for (const char *k : {"stats", "numa", "purge", "memory_limit", "memory_limit_margin",
                        "memory_limit_soft", "thp", "stats_signal", "background_purge"}) {
    char buf[128];
    EXPECT_EQ(DepotMem_GetOption(k, buf, sizeof buf), 0) << k;
  }
}

TEST(Limit, HardLimitRefusesAndRecovers) {
  ASSERT_EQ(DepotMem_SetOption("background_purge", "0"), 0);
  DepotMem_Trim();
  uint64_t held0 = Stat("stats.held_bytes");
  uint64_t hits0 = Stat("stats.memory_limit_hits");
  std::string limit = std::to_string((held0 >> 20) + 64) + "m";
  ASSERT_EQ(DepotMem_SetOption("memory_limit", limit.c_str()), 0);
  EXPECT_EQ(Stat("stats.memory_limit_bytes"), (((held0 >> 20) + 64) << 20));
  std::vector<std::pair<unsigned char *, size_t>> live;
  size_t sizes[] = {100, 3000, 40000, 300000, 3u << 20};
  for (int i = 0;; i++) {
    size_t size = sizes[i % 5];
    errno = 0;
    auto *p = static_cast<unsigned char *>(DepotMem_Malloc(size));
    if (!p) {
      EXPECT_EQ(errno, ENOMEM);
      break;
    }
    memset(p, i & 0xFF, size);
    live.push_back({p, size});
    ASSERT_LT(i, 100000) << "no limit reached";
  }
  EXPECT_LE(Stat("stats.held_bytes"), Stat("stats.memory_limit_bytes") + (1u << 20));
  errno = 0;
  EXPECT_EQ(DepotObject_Calloc(1, 8u << 20), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(DepotMem_RawMalloc(64u << 20), nullptr);
  EXPECT_GT(Stat("stats.memory_limit_hits"), hits0);
  for (size_t i = 0; i < live.size(); i++)
    for (size_t j = 0; j < live[i].second; j += 997)
      ASSERT_EQ(live[i].first[j], (unsigned char)(i & 0xFF)) << "block " << i;
  for (size_t i = 0; i < live.size(); i += 2) DepotMem_Free(live[i].first);
  void *again = DepotMem_Malloc(1u << 20);
  EXPECT_NE(again, nullptr) << "no recovery after frees";
  DepotMem_Free(again);
  for (size_t i = 1; i < live.size(); i += 2) DepotMem_Free(live[i].first);
  ASSERT_EQ(DepotMem_SetOption("memory_limit", "0"), 0);
  EXPECT_EQ(depot_check_heap(), 0);
}

TEST(Limit, SoftLimitPurgesBeforeGrowing) {
  ASSERT_EQ(DepotMem_SetOption("background_purge", "0"), 0);
  // No purge falls due during the test (a slow build on a loaded machine
  // could pass the default second between the frees and the count).
  ASSERT_EQ(DepotMem_SetOption("purge_delay_ms", "600000"), 0);
  DepotMem_Trim();
  // 40 MiB of large blocks, freed: their pages wait for the purge delay.
  std::vector<void *> v;
  for (int i = 0; i < 40; i++) v.push_back(DepotMem_Malloc(1u << 20));
  for (size_t i = 0; i < v.size(); i++) ASSERT_NE(v[i], nullptr) << i;
  for (void *p : v) DepotMem_Free(p);
  v.clear();
  EXPECT_GE(Stat("stats.dirty_bytes"), 30u << 20);
  // The hard limit 64 MiB above what is held now, the soft one 8 MiB above
  // it (set now: above the soft limit, a freed span that joins purged pages
  // is purged at once, arena.c's free_run).
  uint64_t held1 = Stat("stats.held_bytes"), hard = held1 + (64u << 20);
  std::string limit = std::to_string(hard);
  std::string soft = std::to_string((held1 + (8u << 20)) * 100 / hard);
  ASSERT_EQ(DepotMem_SetOption("memory_limit", limit.c_str()), 0);
  ASSERT_EQ(DepotMem_SetOption("memory_limit_soft", soft.c_str()), 0);
  uint64_t purges0 = Stat("stats.soft_limit_purges");
  // 40 MiB of huge blocks need new memory: past the soft limit, the free
  // pages go back first, and nothing fails.
  for (int i = 0; i < 10; i++) {
    void *p = DepotMem_Malloc(4u << 20);
    ASSERT_NE(p, nullptr) << "failed at " << i;
    memset(p, 1, 4u << 20);
    v.push_back(p);
  }
  EXPECT_GT(Stat("stats.soft_limit_purges"), purges0);
  EXPECT_LT(Stat("stats.dirty_bytes"), 30u << 20);
  for (void *p : v) DepotMem_Free(p);
  ASSERT_EQ(DepotMem_SetOption("memory_limit", "0"), 0);
  ASSERT_EQ(DepotMem_SetOption("memory_limit_soft", "90"), 0);
  ASSERT_EQ(DepotMem_SetOption("purge_delay_ms", "1000"), 0);
}

// Past the soft limit the allocating thread also empties the caches of
// idle threads before Depot grows (no purger here: only it can).
TEST(Limit, SoftLimitFlushesIdleThreadsCaches) {
  ASSERT_EQ(DepotMem_SetOption("background_purge", "0"), 0);
  ASSERT_EQ(DepotMem_SetOption("idle_flush_ms", "50"), 0);
  ASSERT_EQ(DepotMem_SetOption("tcache_max_bytes", "16m"), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<bool> ready{false};
  std::atomic<long> tid{0};
  std::thread t([&] {
    for (int round = 0; round < 3; round++) {
      std::vector<void *> v;
      for (size_t size = 16; size <= 4096; size += 16)
        for (size_t n = 0; n * size < (128u << 10); n++)
          v.push_back(DepotMem_Malloc(size));
      for (void *p : v) DepotMem_Free(p);
    }
    tid = (long)syscall(SYS_gettid);
    ready = true;
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), 1);  // blocked: idle
    void *p = DepotMem_Malloc(100);     // takes its emptied cache back
    EXPECT_NE(p, nullptr);
    DepotMem_Free(p);
  });
  while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Until the thread sleeps in its read (10 s at most: a loaded machine
  // may not have run it there yet), then four times idle_flush_ms.
  for (int i = 0; i < 10000 && probe_thread_state(tid.load()) != 'S'; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  uint64_t flushes0 = Stat("stats.idle_cache_flushes");
  uint64_t purges0 = Stat("stats.soft_limit_purges");
  uint64_t held0 = Stat("stats.held_bytes");
  std::string limit = std::to_string((held0 >> 20) + 64) + "m";
  ASSERT_EQ(DepotMem_SetOption("memory_limit", limit.c_str()), 0);
  ASSERT_EQ(DepotMem_SetOption("memory_limit_soft", "50"), 0);
  std::vector<void *> v;
  for (int i = 0; i < 12 && Stat("stats.soft_limit_purges") == purges0; i++) {
    void *p = DepotMem_Malloc(4u << 20);
    ASSERT_NE(p, nullptr) << "failed at " << i;
    v.push_back(p);
  }
  EXPECT_GT(Stat("stats.soft_limit_purges"), purges0);
  EXPECT_GT(Stat("stats.idle_cache_flushes"), flushes0)
      << "the blocked thread's cache was not emptied at the soft limit";
  for (void *p : v) DepotMem_Free(p);
  ASSERT_EQ(DepotMem_SetOption("memory_limit", "0"), 0);
  ASSERT_EQ(DepotMem_SetOption("memory_limit_soft", "90"), 0);
  ASSERT_EQ(write(fds[1], "g", 1), 1);
  t.join();
  close(fds[0]);
  close(fds[1]);
  ASSERT_EQ(DepotMem_SetOption("tcache_max_bytes", "4m"), 0);
  ASSERT_EQ(DepotMem_SetOption("idle_flush_ms", "1000"), 0);
  EXPECT_EQ(depot_check_heap(), 0);
}

// A real child memory cgroup with a limit, where this test may make one:
// a program preloaded with Depot under memory_limit=cgroup gets ENOMEM
// before the kernel's OOM killer acts.
TEST(Limit, RealCgroupChildGetsEnomemBeforeTheOomKiller) {
  using depot_test::Sh;
  if (geteuid() != 0) GTEST_SKIP() << "not root: cannot create a memory cgroup";
  // Our own group, v1 memory controller or v2.
  depot_test::Result self = Sh("cat /proc/self/cgroup");
  std::string dir, limit_file, procs;
  size_t v1 = self.output.find(":memory:");
  if (v1 != std::string::npos) {
    std::string path = self.output.substr(v1 + 8, self.output.find('\n', v1) - v1 - 8);
    dir = "/sys/fs/cgroup/memory" + path;
    limit_file = "memory.limit_in_bytes";
  } else if (self.output.find("0::/") != std::string::npos) {
    size_t at = self.output.find("0::/");
    dir = "/sys/fs/cgroup" + self.output.substr(at + 3, self.output.find('\n', at) - at - 3);
    limit_file = "memory.max";
  }
  if (dir.empty()) GTEST_SKIP() << "no memory cgroup found in /proc/self/cgroup";
  std::string child = dir + "/depot_limit_test_" + std::to_string(getpid());
  if (mkdir(child.c_str(), 0755) != 0)
    GTEST_SKIP() << "cannot create " << child << ": " << strerror(errno);
  depot_test::Result set =
      Sh("echo 268435456 > " + child + "/" + limit_file + " && cat " + child + "/" + limit_file);
  if (set.status != 0 || set.output.find("268435456") == std::string::npos) {
    rmdir(child.c_str());
    GTEST_SKIP() << "cannot set a memory limit on " << child << ": " << set.output;
  }
  std::string lib = depot_test::Runfile("libdepot.so");
  std::string prog = depot_test::Runfile("tests/progs/limit_fill");
  depot_test::Result r = Sh("sh -c 'echo $$ > " + child + "/cgroup.procs && exec env " +
                            "DEPOT_CONF=memory_limit=cgroup LD_PRELOAD=" + lib + " " + prog + "'");
  Sh("rmdir " + child);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 0) << "status " << r.status << " (137: the OOM killer): " << r.output;
  EXPECT_NE(r.output.find("PASS depot ENOMEM"), std::string::npos) << r.output;
}

}  // namespace

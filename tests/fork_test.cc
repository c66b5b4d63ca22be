// Fork while other threads hold Depot's locks: a statistics report and a
// configuration change (reload of the configuration and the NUMA map) run
// in loops beside allocating threads while the main thread forks.  The
// fork handlers take every lock of alloc/README.md's table (the core's
// after the C library's stdio list lock); if one were missing, or taken
// out of order, a child would find a lock held by a thread that does not
// exist in it (and hang in its first report or reload) or the parent would
// deadlock in fork.  Then a few hundred forks while threads allocate and
// others keep stdio busy (getline on long lines, fflush(NULL)).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/sizeclass.h"
#include "depot/depot.h"
#include "runtime/topology.h"

namespace {

TEST(Fork, WhileReportAndConfigurationChangeAreInProgress) {
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  std::atomic<bool> stop{false};
  std::atomic<long> reports{0}, reloads{0};
  std::vector<std::thread> ts;
  ts.emplace_back([&] {  // statistics reports, lock 1 and the core's locks
    while (!stop.load()) {
      DepotMem_PrintStats(devnull, reports % 2 ? DEPOT_STATS_JSON : 0);
      reports++;
    }
  });
  ts.emplace_back([&] {  // configuration changes, locks 2, 3 and 4
    while (!stop.load()) {
      depot_config_load_from(nullptr, reloads % 2 ? "purge_delay_ms=1000"
                                                  : "purge_delay_ms=1000,numa=local");
      depot_topology_reload();
      reloads++;
    }
  });
  for (int t = 0; t < 2; t++)
    ts.emplace_back([&, t] {  // allocation: pools, arenas, huge, metadata
      std::vector<void *> keep;
      for (unsigned i = 0; !stop.load(); i++) {
        size_t size = i % 64 == 0 ? (size_t(3) << 20) : 16 + (i * 37 + t) % 40000;
        keep.push_back(DepotMem_Malloc(size));
        if (keep.size() > 200) {
          for (void *p : keep) DepotMem_Free(p);
          keep.clear();
        }
      }
      for (void *p : keep) DepotMem_Free(p);
    });
  int children = 0, clean = 0;
  for (; children < 40; children++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child: every lock must be free.  alarm() turns a hang into a
      // failure the parent sees.
      alarm(10);
      void *p = DepotMem_Malloc(100);
      void *q = DepotMem_Malloc(size_t(5) << 20);
      DepotMem_Free(p);
      DepotMem_Free(q);
      if (DepotMem_PrintStats(devnull, 0) != 0) _exit(3);
      if (depot_config_load_from(nullptr, "purge_delay_ms=1000") != 0) _exit(4);
      if (depot_topology_reload() != 0) _exit(5);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) clean++;
    else ADD_FAILURE() << "child " << children << " ended with status " << status;
  }
  stop = true;
  for (auto &t : ts) t.join();
  close(devnull);
  EXPECT_EQ(clean, children);
  EXPECT_GT(reports.load(), 0);
  EXPECT_GT(reloads.load(), 0);
  depot_check_heap();
}

TEST(Fork, HundredsWhileThreadsAllocateAndStdioIsBusy) {
  char path[] = "/tmp/depot_fork_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  FILE *w = fdopen(fd, "w");
  std::string line(50000, 'x');
  for (int i = 0; i < 4; i++) std::fprintf(w, "%s\n", line.c_str());
  std::fclose(w);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; t++)
    ts.emplace_back([&] {  // stdio: a stream's lock held while allocating
      FILE *f = std::fopen(path, "r");
      while (f && !stop.load()) {
        std::rewind(f);
        char *buf = nullptr;
        size_t cap = 0;
        while (getline(&buf, &cap, f) > 0) {
          std::free(buf);
          buf = nullptr;
          cap = 0;
        }
        std::free(buf);
      }
      if (f) std::fclose(f);
    });
  ts.emplace_back([&] {  // the list of streams held while taking theirs
    // Paused between calls: the list lock is not fair, and fork() (glibc's
    // own as much as the handlers) must get it now and then.
    while (!stop.load()) {
      std::fflush(nullptr);
      usleep(100);
    }
  });
  for (int t = 0; t < 2; t++)
    ts.emplace_back([&, t] {  // Depot: pools, arenas, huge blocks
      std::vector<void *> keep;
      for (unsigned i = 0; !stop.load(); i++) {
        size_t size = i % 97 == 0 ? (size_t(3) << 20) : 16 + (i * 53 + t) % 60000;
        keep.push_back(DepotMem_Malloc(size));
        if (keep.size() > 100) {
          for (void *p : keep) DepotMem_Free(p);
          keep.clear();
          usleep(100);  // on two cores, leave fork() some time to get the locks
        }
      }
      for (void *p : keep) DepotMem_Free(p);
    });
  int clean = 0;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const int forks = 200;  // a fork copies the shadow's page tables: ~0.4 s
#else
  const int forks = 300;
#endif
  for (int i = 0; i < forks; i++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(10);
      void *p = DepotMem_Malloc(100), *q = DepotMem_Malloc(60000);
      DepotMem_Free(p);
      DepotMem_Free(q);
      _exit(p && q ? 0 : 3);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) clean++;
    else ADD_FAILURE() << "child " << i << " ended with status " << status;
  }
  stop = true;
  for (auto &t : ts) t.join();
  unlink(path);
  EXPECT_EQ(clean, forks);
  depot_check_heap();
}

// A child of a fork frees blocks that a thread it lost allocated: that
// thread's heap has no owner in the child, so it counts as parked and the
// child's posts go straight back to its spans (they waited in its inbox for
// good, out of use).
TEST(Fork, ChildsFreesOfALostThreadsBlocksComeBack) {
  const unsigned MEM = 1, n = 3000;
  const unsigned cls = depot_size_to_class(1400);
  std::vector<void *> blocks;
  std::mutex m;
  std::condition_variable cv;
  bool ready = false, done = false;
  std::thread t([&] {
    for (unsigned i = 0; i < n; i++) blocks.push_back(DepotMem_Malloc(1400));
    std::unique_lock<std::mutex> l(m);
    ready = true;
    cv.notify_all();
    cv.wait(l, [&] { return done; });  // alive across the fork
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return ready; });
  }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);
    auto out = [&] {
      depot_class_stats_t st;
      depot_core_class_stats(MEM, cls, &st);
      return st.out - st.stacked;
    };
    uint64_t before = out();
    for (void *p : blocks) DepotMem_Free(p);
    depot_thread_flush();  // posts what the outbox still holds
    uint64_t after = out();
    if (after + n != before) {
      std::fprintf(stderr, "blocks out of spans: %llu before, %llu after\n",
                   (unsigned long long)before, (unsigned long long)after);
      _exit(1);
    }
    _exit(depot_check_heap() == 0 ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  {
    std::lock_guard<std::mutex> l(m);
    done = true;
    cv.notify_all();
  }
  t.join();
  for (void *p : blocks) DepotMem_Free(p);
}

}  // namespace

// Idle threads' caches (alloc/idle.c): the purger empties the cache of a
// thread that is blocked in a system call and has taken no slow path for
// idle_flush_ms, while the thread stays alive; the thread then takes its
// cache back and allocates as before, with no block handed out twice, and
// other threads' frees of its blocks meanwhile go back to its spans.  A
// thread that computes is never flushed, nor one that may be waiting in a
// signal handler; a thread that exits while parked
// tears down; a forked child recycles the caches of the threads it lost.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/sizeclass.h"
#include "tests/probe.h"

namespace {

constexpr unsigned RAW = 0;
constexpr unsigned kIdleMs = 100;

struct Block {
  unsigned char *p;
  size_t size;
  uint32_t seed;
};

void Fill(const Block &b) {
  for (size_t i = 0; i < b.size; i++) b.p[i] = (unsigned char)(b.seed + i * 7);
}
bool Intact(const Block &b) {
  for (size_t i = 0; i < b.size; i++)
    if (b.p[i] != (unsigned char)(b.seed + i * 7)) return false;
  return true;
}

// Blocks in every thread cache of the process (a snapshot).
size_t CachedBlocks() {
  size_t n = 0;
  for (unsigned d = 0; d < 3; d++)
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
      depot_class_stats_t st;
      depot_core_class_stats(d, cls, &st);
      n += st.cached;
    }
  return n;
}

probe_idle_stats_t IdleStats() {
  probe_idle_stats_t st;
  probe_idle_stats(&st);
  return st;
}

// Allocates blocks of many classes and frees them: the calling thread's
// cache ends up holding several MiB.  Returns the bytes it holds, which
// vary: a bin the thread has not refilled for 100 ms gives back half of
// what it holds at the thread's next slow path (tcache.c, gc_pass), so a
// fill that a loaded machine slows down keeps less (3.4 to 7.2 MiB in the
// debug build beside three busy loops on two cores).
size_t FillCache() {
  for (int round = 0; round < 3; round++)  // bins grow a batch at a time
    for (unsigned d = 0; d < 3; d++) {
      std::vector<void *> v;
      for (size_t size = 16; size <= 16384;
           size += size < 1024 ? 16 : size / 4) {
        for (size_t n = 0; n * size < (256u << 10); n++) {
          void *p = depot_alloc_call(size, d);
          if (!p) break;
          memset(p, 0xA5, size);
          v.push_back(p);
        }
      }
      for (void *p : v) depot_free_call(p, d);
    }
  return probe_tcache_held_bytes();
}

void Configure() {
  // The main thread's cache is emptied: the tests count cached blocks.
  depot_thread_flush();
  ASSERT_EQ(depot_config_set(DEPOT_CONF_tcache_max_bytes, "16m", nullptr, 0),
            0);
  ASSERT_EQ(depot_config_set(DEPOT_CONF_purge_delay_ms, "100", nullptr, 0), 0);
  ASSERT_EQ(depot_config_set(DEPOT_CONF_background_purge, "1", nullptr, 0), 0);
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "100", nullptr, 0), 0);
}

// Waits up to 20 s for pred; returns the milliseconds it took, or -1.
template <class Pred>
long WaitFor(Pred pred) {
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    long ms = (long)std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    if (pred()) return ms;
    if (ms > 20000) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// A thread that fills its cache, keeps some live blocks, and blocks reading
// a pipe until told to go on.
class Sleeper {
 public:
  Sleeper() {
    EXPECT_EQ(pipe(fds_), 0);
    t_ = std::thread([this] { Run(); });
    while (!ready_.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Sleeper() {
    close(fds_[0]);
    close(fds_[1]);
  }
  size_t held() const { return held_; }
  // Wakes the thread: it checks its live blocks, then (unless it is to
  // exit at once) allocates anew and checks that nothing overlaps.
  void Wake(bool exit_at_once) {
    char c = exit_at_once ? 'x' : 'g';
    EXPECT_EQ(write(fds_[1], &c, 1), 1);
    t_.join();
  }
  bool ok() const { return ok_; }
  // Frees what the thread left live (after Wake(true)), from the caller.
  void FreeLive() {
    for (const Block &b : live_) depot_free_call(b.p, RAW);
    live_.clear();
  }

 private:
  void Run() {
    for (uint32_t i = 0; i < 2000; i++) {
      Block b{(unsigned char *)depot_alloc_call(16 + (i % 64) * 24, RAW),
              16 + (i % 64) * 24, i * 2654435761u};
      if (!b.p) {
        ok_ = false;
        break;
      }
      Fill(b);
      live_.push_back(b);
    }
    held_ = FillCache();
    ready_.store(true);
    char c = 0;
    // Blocked in read(2): idle as far as the allocator can tell.
    ssize_t r = read(fds_[0], &c, 1);
    if (r != 1) ok_ = false;
    for (const Block &b : live_)
      if (!Intact(b)) ok_ = false;
    if (c == 'x') return;  // exits with its cache parked
    std::vector<Block> fresh;
    std::set<unsigned char *> seen;
    for (const Block &b : live_) seen.insert(b.p);
    for (uint32_t i = 0; i < 20000; i++) {
      size_t size = 16 + (i * 37) % 4000;
      Block b{(unsigned char *)depot_alloc_call(size, RAW), size,
              i * 40503u + 7};
      if (!b.p || !seen.insert(b.p).second) {
        ok_ = false;  // out of memory, or a block handed out twice
        break;
      }
      Fill(b);
      fresh.push_back(b);
    }
    for (const Block &b : live_)
      if (!Intact(b)) ok_ = false;
    for (const Block &b : fresh) {
      if (!Intact(b)) ok_ = false;
      depot_free_call(b.p, RAW);
    }
    for (const Block &b : live_) depot_free_call(b.p, RAW);
    live_.clear();
  }

  int fds_[2];
  std::thread t_;
  std::atomic<bool> ready_{false};
  size_t held_ = 0;
  bool ok_ = true;
  std::vector<Block> live_;
};

// Every block went back: once everything is freed and trimmed, every page
// of every segment is free again.
void ExpectNothingLost() {
  depot_check_heap();
  depot_trim();
  depot_check_heap();
  depot_core_stats_t st;
  depot_core_stats(&st);
  EXPECT_EQ(st.free_pages, st.segments * probe_span_max_pages());
}

TEST(IdleTest, BlockedThreadIsFlushedAndRecovers) {
  Configure();
  probe_idle_stats_t before = IdleStats();
  Sleeper s;
  ASSERT_GT(s.held(), (size_t)1 << 20) << "the cache should hold MiBs";
  size_t cached = CachedBlocks();
  long ms = WaitFor([&] {
    return IdleStats().flushed > before.flushed && CachedBlocks() == 0;
  });
  ASSERT_GE(ms, 0) << "the blocked thread's cache was never flushed";
  probe_idle_stats_t after = IdleStats();
  EXPECT_GE(after.blocks - before.blocks, cached);
  printf(
      "idle_flush_ms=%u: %zu bytes (%zu blocks) flushed %ld ms after the "
      "thread blocked\n",
      kIdleMs, s.held(), cached, ms);
  s.Wake(false);
  EXPECT_TRUE(s.ok()) << "a live block changed or a block was handed out twice";
  ExpectNothingLost();
}

// While a thread sleeps with its cache flushed, other threads' frees of its
// blocks go back to its spans as they are posted: its heap is marked parked
// (idle.c, park_heap).  Until 2026-12-02 they waited in its inbox, without
// bound, until the thread ran again.  When it wakes the mark goes, and it
// allocates as before.
TEST(IdleTest, FreesOfASleepingThreadsBlocksDoNotWaitInItsInbox) {
  Configure();
  probe_idle_stats_t before = IdleStats();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<void *> blocks;
  std::atomic<void *> heap{nullptr};
  std::atomic<bool> ready{false};
  std::atomic<int> parked_after_wake{-1};
  std::thread t([&] {
    for (uint32_t i = 0; i < 3000; i++) {
      void *p = depot_alloc_call(16 + (i % 64) * 16, RAW);
      if (p) memset(p, 0x5A, 16);
      blocks.push_back(p);
    }
    heap.store(probe_own_heap());
    ready.store(true);
    char c = 0;
    if (read(fds[0], &c, 1) != 1) return;  // blocked: idle
    void *p = depot_alloc_call(48, RAW);   // takes the cache back
    parked_after_wake.store(probe_heap_parked(heap.load()));
    depot_free_call(p, RAW);
  });
  while (!ready.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_NE(heap.load(), nullptr) << "the thread has no heap of its own";
  ASSERT_GE(WaitFor([&] {
              return IdleStats().flushed > before.flushed &&
                     CachedBlocks() == 0;
            }),
            0)
      << "the sleeping thread's cache was never flushed";
  for (void *p : blocks) {
    ASSERT_NE(p, nullptr);
    depot_free_call(p, RAW);  // remote frees, into this thread's outbox
  }
  depot_thread_flush();  // posts the outbox to the sleeper's heap
  EXPECT_GE(WaitFor([] { return CachedBlocks() == 0; }), 0)
      << CachedBlocks() << " blocks wait in the sleeping thread's inbox";
  char c = 'g';
  ASSERT_EQ(write(fds[1], &c, 1), 1);
  t.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(parked_after_wake.load(), 0)
      << "the heap stayed parked after its thread took its cache back";
  ExpectNothingLost();
}

void NoOp(int) {}

// A thread waiting under a signal mask of its own (ppoll's, as sigsuspend
// and pselect install one) is never flushed: the kernel shows that mask as
// the thread's, so a signal handler waiting there (a stop-the-world handler
// that interrupted a fast path) would look like a thread outside any
// handler.  The same wait without a mask is flushed (the control).
TEST(IdleTest, ThreadWaitingUnderItsOwnSignalMaskIsNotFlushed) {
  Configure();
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = NoOp;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  for (int masked = 1; masked >= 0; masked--) {
    probe_idle_stats_t before = IdleStats();
    std::atomic<bool> ready{false}, done{false};
    std::atomic<int> parked{-1};
    std::thread t([&] {
      FillCache();
      ready.store(true);
      sigset_t none;
      sigemptyset(&none);
      // Blocks until SIGUSR2 comes (nothing to poll, no timeout).
      ppoll(nullptr, 0, nullptr, masked ? &none : nullptr);
      parked.store(probe_own_cache_parked());
      done.store(true);
    });
    while (!ready.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // (Other threads, this one among them while it sleeps, may be flushed
    // meanwhile: the thread says itself whether its cache was taken.)
    if (masked) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * kIdleMs));
    } else {
      EXPECT_GE(WaitFor([&] { return IdleStats().flushed > before.flushed; }),
                0);
    }
    // Sent until the wait ends (one sent before the wait began would be
    // handled and leave it waiting).
    while (!done.load()) {
      pthread_kill(t.native_handle(), SIGUSR2);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    t.join();
    if (masked) {
      EXPECT_EQ(parked.load(), 0)
          << "a thread waiting under its own signal mask was flushed";
    } else {
      EXPECT_EQ(parked.load(), 1)
          << "the control: a thread in ppoll without a mask is flushed";
    }
  }
  ASSERT_EQ(sigaction(SIGUSR2, &old, nullptr), 0);
  ExpectNothingLost();
}

int handler_pipe[2];
std::atomic<int> handler_saw_parked{-1};
// A stop-the-world handler: waits (in read) until told to go on.
void WaitingHandler(int) {
  char c;
  if (read(handler_pipe[0], &c, 1) == 1)
    handler_saw_parked.store(probe_own_cache_parked());
}

// A thread started with SIGUSR2 blocked (as threads that must not take
// signals are started) that unblocks it later, and whose SIGUSR2 handler
// then waits: the flusher refuses it (the signal is blocked inside the
// handler, and the thread no longer blocks it outside: its idle-bin passes
// took it out of the mask it started with, tcache.h's sigmask0).
TEST(IdleTest, HandlerOfASignalUnblockedAfterStartIsNotFlushed) {
  Configure();
  ASSERT_EQ(pipe(handler_pipe), 0);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = WaitingHandler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  sigset_t usr2, prev;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr2, &prev), 0);
  std::atomic<bool> ready{false}, go{false};
  std::thread t([&] {
    FillCache();  // the cache is made with SIGUSR2 blocked
    pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
    // Slow paths for longer than an idle-bin pass's period (100 ms).
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 <
           std::chrono::milliseconds(300)) {
      std::vector<void *> v;
      for (int i = 0; i < 2000; i++) v.push_back(depot_alloc_call(4096, RAW));
      for (void *p : v) depot_free_call(p, RAW);
    }
    ready.store(true);
    // Runs (no system call: never flushed) until the handler has been.
    while (!go.load()) {
    }
  });
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &prev, nullptr), 0);
  while (!ready.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  pthread_kill(t.native_handle(), SIGUSR2);  // the handler waits
  std::this_thread::sleep_for(std::chrono::milliseconds(10 * kIdleMs));
  char c = 'g';
  ASSERT_EQ(write(handler_pipe[1], &c, 1), 1);
  go.store(true);
  t.join();
  EXPECT_EQ(handler_saw_parked.load(), 0)
      << "flushed while a handler of a signal it unblocked waited";
  ASSERT_EQ(sigaction(SIGUSR2, &old, nullptr), 0);
  close(handler_pipe[0]);
  close(handler_pipe[1]);
  ExpectNothingLost();
}

TEST(IdleTest, BusyThreadIsNotFlushed) {
  Configure();
  std::atomic<bool> stop{false}, ready{false};
  std::atomic<size_t> held{0};
  std::thread t([&] {
    held.store(FillCache());
    ready.store(true);
    uint64_t x = 1;
    // Computes, with no system call, until told to stop.
    while (!stop.load(std::memory_order_relaxed))
      x = x * 6364136223846793005u + 1;
    if (x == 42) printf("unlikely\n");
  });
  while (!ready.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  size_t cached = CachedBlocks();
  ASSERT_GT(cached, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(10 * kIdleMs));
  EXPECT_EQ(CachedBlocks(), cached) << "a running thread's cache was touched";
  stop.store(true);
  t.join();
  ExpectNothingLost();
}

TEST(IdleTest, ThreadExitsWhileParked) {
  Configure();
  probe_idle_stats_t before = IdleStats();
  Sleeper s;
  ASSERT_GE(WaitFor([&] { return IdleStats().flushed > before.flushed; }), 0);
  s.Wake(true);
  EXPECT_TRUE(s.ok());
  s.FreeLive();
  ExpectNothingLost();
}

// Threads that use their caches between short sleeps while the purger parks
// and flushes them as often as it can: every block keeps its contents, no
// block is handed out twice, and nothing is lost.
TEST(IdleTest, ChurnWhileParkingAndFlushing) {
  Configure();
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "1", nullptr, 0), 0);
  probe_idle_stats_t before = IdleStats();
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      std::vector<Block> live;
      uint32_t rng = 12345 + t;
      auto t0 = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - t0 <
             std::chrono::milliseconds(1500)) {
        for (int k = 0; k < 64; k++) {
          rng = rng * 1103515245u + 12345u;
          size_t size = 8 + (rng >> 8) % 2000;
          Block b{(unsigned char *)depot_alloc_call(size, RAW), size, rng};
          if (!b.p) {
            bad = true;
            return;
          }
          Fill(b);
          live.push_back(b);
        }
        // Free about half, at random, checking each block first.
        for (size_t i = 0; i < live.size();) {
          rng = rng * 1103515245u + 12345u;
          if (rng & 0x100) {
            if (!Intact(live[i])) bad = true;
            depot_free_call(live[i].p, RAW);
            live[i] = live.back();
            live.pop_back();
          } else {
            i++;
          }
        }
        // A short blocking system call: the purger may park and flush now.
        if (rng & 0x200)
          std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      for (const Block &b : live) {
        if (!Intact(b)) bad = true;
        depot_free_call(b.p, RAW);
      }
    });
  for (auto &t : threads) t.join();
  EXPECT_FALSE(bad.load()) << "a block changed while live, or ran out";
  probe_idle_stats_t after = IdleStats();
  printf("parked %llu, flushed %llu, refused %llu\n",
         after.parked - before.parked, after.flushed - before.flushed,
         after.refused - before.refused);
  EXPECT_GT(after.flushed, before.flushed) << "the purger never flushed";
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "100", nullptr, 0), 0);
  ExpectNothingLost();
}

TEST(IdleTest, ForkedChildRecyclesCachesOfLostThreads) {
  Configure();
  // Purger off: the caches are looked at only by the child's explicit call.
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "0", nullptr, 0), 0);
  Sleeper s;
  size_t cached = CachedBlocks();
  ASSERT_GT(cached, 0u);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // No thread may start in this child (sanitizers refuse it): no purger.
    depot_config_set(DEPOT_CONF_background_purge, "0", nullptr, 0);
    probe_idle_stats_t b = IdleStats();
    probe_idle_flush(kIdleMs);
    probe_idle_stats_t a = IdleStats();
    int bad = a.orphans == b.orphans || CachedBlocks() != 0;
    void *p = depot_alloc_call(64, RAW);
    depot_free_call(p, RAW);
    depot_check_heap();
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the child did not recycle the lost thread's cache";
  // The parent's thread still has its cache, untouched.
  EXPECT_EQ(CachedBlocks(), cached);
  s.Wake(false);
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "100", nullptr, 0), 0);
  ExpectNothingLost();
}

// A child recycles the cache of a lost thread that the fork caught inside
// a fast path (probe.h: a free between its bin's room and its head): a
// flush that trusted the count walked off the end of the list (SIGSEGV);
// the child's flusher recounts first.
TEST(IdleTest, ForkedChildRecyclesALostCacheCaughtMidFree) {
  Configure();
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "0", nullptr, 0), 0);
  Sleeper s;
  ASSERT_GT(CachedBlocks(), 0u);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    depot_config_set(DEPOT_CONF_background_purge, "0", nullptr, 0);
    int changed = probe_lost_caches_mid_free();
    probe_idle_stats_t b = IdleStats();
    probe_idle_flush(kIdleMs);
    probe_idle_stats_t a = IdleStats();
    int bad = changed == 0             ? 3
              : a.orphans == b.orphans ? 4
              : CachedBlocks() != 0    ? 5
                                       : 0;
    void *p = depot_alloc_call(64, RAW);
    depot_free_call(p, RAW);
    depot_check_heap();
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status
      << " (exit 3: nothing to change, 4: no orphan recycled, 5: blocks "
         "left cached; a signal: the recycling crashed)";
  s.Wake(false);
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(depot_config_set(DEPOT_CONF_idle_flush_ms, "100", nullptr, 0), 0);
  ExpectNothingLost();
}

// Threads start and end (each takes a thread heap for its cache and parks
// it again) while the main thread forks: no child may find a heap that a
// starting thread had taken from the parked list but not yet listed its
// cache for (neither parked nor any listed cache's, its inbox was never
// drained: the child's frees of its blocks stayed there for good).  A
// cache now takes its heap and is listed, and drops its heap and is
// unlisted, under one hold of the registry lock, which fork holds.
TEST(IdleTest, ForkedChildFindsEveryHeapParkedOrOwned) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> churn;
  for (int k = 0; k < 3; k++)
    churn.emplace_back([&] {
      while (!stop.load())
        std::thread([] {
          depot_free_call(depot_alloc_call(64, RAW), RAW);
        }).join();
    });
  int bad = 0, forks = 300;
  for (int i = 0; i < forks && !bad; i++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(probe_unowned_heaps() == 0 ? 0 : 1);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    bad = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop = true;
  for (auto &t : churn) t.join();
  EXPECT_EQ(bad, 0) << "a child found a heap neither parked nor owned";
}

}  // namespace

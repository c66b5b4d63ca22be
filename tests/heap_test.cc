// First-class heaps (DepotHeap_*, issue 15): the Depot API's contract for
// every function, reset and destroy (alone, under concurrent allocation in
// other heaps, while other threads' caches hold the heap's blocks), the byte
// limit, wrong-family and wrong-heap detection, statistics and the report,
// fork and thread exit.  NUMA placement is in numa_test.cc.
#include <depot/depot.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"

namespace {

DepotHeap *Make(const char *name, size_t limit = 0) {
  DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
  o.name = name;
  o.limit_bytes = limit;
  DepotHeap *h = DepotHeap_New(&o);
  EXPECT_NE(h, nullptr);
  return h;
}

DepotHeapStats Stats(DepotHeap *h) {
  DepotHeapStats s;
  s.size = sizeof s;
  EXPECT_EQ(DepotHeap_Stats(h, &s), 0);
  return s;
}

// Sizes across small classes, large page runs and huge mappings.
const size_t kSizes[] = {
    0,    1,    16,    17,    100,    128,     129,
    1000, 4096, 32768, 32769, 100000, 1 << 20, size_t(8) << 20};

// ---- the contract ------------------------------------------------------------

TEST(HeapApi, NewWithNullOptionsAndName) {
  DepotHeap *h = DepotHeap_New(nullptr);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(std::string(DepotHeap_Name(h)).rfind("heap-", 0), 0u);
  DepotHeap_Destroy(h);
  h = Make("named");
  EXPECT_STREQ(DepotHeap_Name(h), "named");
  DepotHeap_Destroy(h);
}

TEST(HeapApi, BadOptionsAreEinval) {
  DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
  o.size = 4;  // not even the first fields
  errno = 0;
  EXPECT_EQ(DepotHeap_New(&o), nullptr);
  EXPECT_EQ(errno, EINVAL);
  o = DEPOT_HEAP_OPTIONS_INIT;
  o.node = 64;  // no such node
  errno = 0;
  EXPECT_EQ(DepotHeap_New(&o), nullptr);
  EXPECT_EQ(errno, EINVAL);
  o.node = -2;
  EXPECT_EQ(DepotHeap_New(&o), nullptr);
}

TEST(HeapApi, EverySizeIsAlignedUsableAndKnowsItsHeap) {
  DepotHeap *h = Make("sizes");
  std::vector<void *> v;
  for (size_t n : kSizes) {
    errno = 0;
    char *p = static_cast<char *>(DepotHeap_Malloc(h, n));
    ASSERT_NE(p, nullptr) << n;
    EXPECT_EQ(errno, 0) << "success leaves errno alone";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    EXPECT_GE(DepotHeap_UsableSize(p), n ? n : 1);
    EXPECT_EQ(DepotHeap_Of(p), h);
    memset(p, 0xAB, n);
    v.push_back(p);
  }
  std::set<void *> distinct(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), v.size()) << "zero-byte blocks are distinct";
  for (void *p : v) DepotHeap_Free(p);
  EXPECT_EQ(depot_check_heap(), 0);
  DepotHeap_Destroy(h);
}

TEST(HeapApi, OverflowAndHugeRequestsFailWithEnomem) {
  DepotHeap *h = Make("overflow");
  errno = 0;
  EXPECT_EQ(DepotHeap_Malloc(h, size_t(PTRDIFF_MAX) + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(DepotHeap_Calloc(h, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(DepotHeap_AlignedAlloc(h, 64, size_t(PTRDIFF_MAX) + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  DepotHeap_Destroy(h);
}

TEST(HeapApi, CallocZeroesEvenReusedMemory) {
  DepotHeap *h = Make("calloc");
  for (size_t n : kSizes) {  // dirty the memory first
    void *p = DepotHeap_Malloc(h, n);
    memset(p, 0xFF, n);
    DepotHeap_Free(p);
  }
  for (size_t n : kSizes) {
    unsigned char *p = static_cast<unsigned char *>(DepotHeap_Calloc(h, 1, n));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < n; i += 61) ASSERT_EQ(p[i], 0) << n << " @" << i;
    if (n) {
      EXPECT_EQ(p[n - 1], 0);
    }
    DepotHeap_Free(p);
  }
  EXPECT_NE(DepotHeap_Calloc(h, 0, 0), nullptr);
  DepotHeap_Destroy(h);
}

TEST(HeapApi, ReallocKeepsContentsAcrossKinds) {
  DepotHeap *h = Make("realloc");
  char *p = static_cast<char *>(DepotHeap_Realloc(h, nullptr, 10));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(DepotHeap_Of(p), h);
  memcpy(p, "0123456789", 10);
  size_t prev = 10;
  for (size_t n : {100u, 5000u, 40000u, 300000u, 20000000u, 64u, 0u}) {
    p = static_cast<char *>(DepotHeap_Realloc(h, p, n));
    ASSERT_NE(p, nullptr) << n;
    EXPECT_EQ(DepotHeap_Of(p), h);
    size_t keep = std::min<size_t>(std::min<size_t>(prev, n), 10);
    EXPECT_EQ(memcmp(p, "0123456789", keep), 0) << n;
    prev = n ? n : 1;
  }
  // A failed realloc leaves the block as it was.
  memcpy(p, "x", 1);
  errno = 0;
  EXPECT_EQ(DepotHeap_Realloc(h, p, size_t(PTRDIFF_MAX) + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(p[0], 'x');
  DepotHeap_Free(p);
  DepotHeap_Destroy(h);
}

TEST(HeapApi, AlignedAlloc) {
  DepotHeap *h = Make("aligned");
  for (size_t a = 1; a <= (size_t(1) << 21); a <<= 1)
    for (size_t n : {size_t(0), size_t(1), a, 3 * a + 1}) {
      void *p = DepotHeap_AlignedAlloc(h, a, n);
      ASSERT_NE(p, nullptr) << a << " " << n;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << a;
      EXPECT_EQ(DepotHeap_Of(p), h);
      DepotHeap_Free(p);
    }
  errno = 0;
  EXPECT_EQ(DepotHeap_AlignedAlloc(h, 48, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  DepotHeap_Destroy(h);
}

TEST(HeapApi, ForeignPointersAreNotHeapBlocks) {
  DepotHeap_Free(nullptr);  // nothing
  void *m = DepotMem_Malloc(40);
  int local = 0;
  EXPECT_EQ(DepotHeap_Of(m), nullptr);
  EXPECT_EQ(DepotHeap_Of(&local), nullptr);
  EXPECT_EQ(DepotHeap_Of(nullptr), nullptr);
  EXPECT_EQ(DepotHeap_UsableSize(m), 0u);
  EXPECT_EQ(DepotHeap_UsableSize(nullptr), 0u);
  DepotMem_Free(m);
}

// ---- reset and destroy ---------------------------------------------------------

TEST(HeapLifetime, ResetFreesEverythingAndKeepsTheHeap) {
  DepotHeap *h = Make("reset");
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 20000; i++)
      ASSERT_NE(DepotHeap_Malloc(h, size_t(i % 700) * 16 + 1), nullptr);
    ASSERT_NE(DepotHeap_Malloc(h, 200000), nullptr);
    ASSERT_NE(DepotHeap_Malloc(h, size_t(16) << 20), nullptr);
    DepotHeapStats s = Stats(h);
    EXPECT_EQ(s.blocks_in_use, 20002u);
    EXPECT_GT(s.bytes_held, 0u);
    DepotHeap_Reset(h);
    s = Stats(h);
    EXPECT_EQ(s.blocks_in_use, 0u);
    EXPECT_EQ(s.bytes_held, 0u);
    EXPECT_EQ(s.spans, 0u);
    EXPECT_GT(s.peak_bytes_held, 0u);
    EXPECT_EQ(depot_check_heap(), 0);
  }
  DepotHeap_Destroy(h);
}

TEST(HeapLifetime, ThousandsOfHeapsAlive) {
  std::vector<DepotHeap *> hs;
  for (int i = 0; i < 5000; i++) {
    DepotHeap *h = DepotHeap_New(nullptr);
    ASSERT_NE(h, nullptr);
    void *p = DepotHeap_Malloc(h, 64);
    ASSERT_EQ(DepotHeap_Of(p), h);
    hs.push_back(h);
  }
  std::set<DepotHeap *> distinct(hs.begin(), hs.end());
  EXPECT_EQ(distinct.size(), hs.size());
  for (DepotHeap *h : hs) DepotHeap_Destroy(h);
  EXPECT_EQ(depot_check_heap(), 0);
}

// Threads work in heaps of their own, checking their blocks' contents, while
// the main thread resets and destroys other heaps.
TEST(HeapLifetime, ResetAndDestroyUnderConcurrentAllocationInOtherHeaps) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      DepotHeap *mine = Make(("worker-" + std::to_string(t)).c_str());
      std::vector<unsigned char *> v;
      for (unsigned i = 0; !stop.load() || i < 20000; i++) {
        size_t n = 16 + (i * 7919u) % 3000;
        unsigned char *p =
            static_cast<unsigned char *>(DepotHeap_Malloc(mine, n));
        if (!p) {
          bad++;
          break;
        }
        p[0] = static_cast<unsigned char>(t);
        p[n - 1] = static_cast<unsigned char>(i);
        v.push_back(p);
        if (v.size() > 500) {
          unsigned char *q = v[(i * 31u) % v.size()];
          if (q[0] != t || DepotHeap_Of(q) != mine) bad++;
          v.erase(v.begin() + (i * 31u) % v.size());
          DepotHeap_Free(q);
        }
        if (i % 5000 == 4999) {  // the owner may reset its own heap
          DepotHeap_Reset(mine);
          v.clear();
        }
      }
      DepotHeap_Destroy(mine);
    });
  for (int r = 0; r < 200; r++) {
    DepotHeap *h = Make("churn");
    for (int i = 0; i < 300; i++) DepotHeap_Malloc(h, size_t(i) * 13 + 1);
    if (r % 2) DepotHeap_Reset(h);
    DepotHeap_Destroy(h);
  }
  stop = true;
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(depot_check_heap(), 0);
}

// A heap destroyed while another thread's cache holds its blocks: nothing
// is handed out twice and no block of the old heap comes back.
TEST(HeapLifetime, DestroyWhileOtherThreadsCacheItsBlocks) {
  for (int round = 0; round < 20; round++) {
    DepotHeap *old = Make("old");
    std::atomic<int> phase{0};
    std::set<void *> old_blocks;
    std::vector<void *> got;
    DepotHeap *fresh = nullptr;
    std::thread t([&] {
      std::vector<void *> v;
      for (int i = 0; i < 2000; i++) v.push_back(DepotHeap_Malloc(old, 48));
      old_blocks.insert(v.begin(), v.end());
      for (void *p : v) DepotHeap_Free(p);  // into this thread's cache
      phase = 1;
      while (phase.load() != 2) std::this_thread::yield();
      for (int i = 0; i < 3000; i++) got.push_back(DepotHeap_Malloc(fresh, 48));
    });
    while (phase.load() != 1) std::this_thread::yield();
    DepotHeap_Destroy(old);
    fresh = Make("fresh");  // probably old's slot again
    std::vector<void *> mine;
    for (int i = 0; i < 3000; i++) mine.push_back(DepotHeap_Malloc(fresh, 48));
    phase = 2;
    t.join();
    std::set<void *> all;
    for (void *p : got) {
      ASSERT_EQ(DepotHeap_Of(p), fresh);
      all.insert(p);
    }
    for (void *p : mine) all.insert(p);
    EXPECT_EQ(all.size(), got.size() + mine.size())
        << "a block handed out twice";
    DepotHeapStats s = Stats(fresh);
    EXPECT_EQ(s.blocks_in_use, 6000u);
    DepotHeap_Destroy(fresh);
  }
  EXPECT_EQ(depot_check_heap(), 0);
}

// A thread's free fast path trusts the span it remembers per class (heap.h)
// only while no span has left the heap since.  Here a span of heap a that
// thread t remembers is emptied by another thread, leaves a, and is reused by
// heap b; t then frees a block of b there, with a still its most recent heap.
// The block must go to b: were it taken for a's, t's next allocation from a
// would hand out b's block.
TEST(HeapLifetime, SpanLeavingAHeapIsNotTakenForItsBlocksAnyMore) {
  DepotMem_Trim();  // no spare spans: b's next span is the one a gives up
  DepotHeap *a = Make("a"), *b = Make("b");
  const size_t kSize = 4096;  // 32 blocks a span, refills of 16
  std::atomic<int> phase{0};
  std::vector<void *> first;
  void *of_b = nullptr;
  std::vector<void *> after;
  std::thread t([&] {
    // Fills one span of a and remembers it (its last refill).
    for (int i = 0; i < 32; i++) first.push_back(DepotHeap_Malloc(a, kSize));
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    DepotHeap_Free(of_b);  // a block of b, in the span t remembers for a
    for (int i = 0; i < 64; i++) after.push_back(DepotHeap_Malloc(a, kSize));
  });
  while (phase.load() != 1) std::this_thread::yield();
  // A second span of a, full too.  Spans get blocks back in threads' exits;
  // t's span is given up once empty if it is not the first of its class
  // then (the one a keeps): its first half goes back, a block of the second
  // span (which then leads), and its second half.
  std::vector<void *> second;
  for (int i = 0; i < 32; i++) second.push_back(DepotHeap_Malloc(a, kSize));
  auto free_in_thread = [](std::vector<void *> v) {
    std::thread([&v] {
      for (void *p : v) DepotHeap_Free(p);
    }).join();
  };
  free_in_thread({first.begin(), first.begin() + 16});
  free_in_thread({second.back()});
  second.pop_back();
  free_in_thread({first.begin() + 16, first.end()});
  EXPECT_EQ(Stats(a).spans, 1u);
  std::set<void *> span(first.begin(), first.end());
  std::vector<void *> mine;
  for (int i = 0; i < 64 && !of_b; i++) {
    void *p = DepotHeap_Malloc(b, kSize);
    if (span.count(p)) of_b = p;
    else mine.push_back(p);
  }
  phase = 2;
  t.join();
  ASSERT_NE(of_b, nullptr) << "b did not reuse the span a gave up";
  for (void *p : after) {
    ASSERT_EQ(DepotHeap_Of(p), a);
    ASSERT_NE(p, of_b) << "a block of b handed out by a";
  }
  EXPECT_EQ(Stats(b).blocks_in_use, mine.size());
  EXPECT_EQ(depot_check_heap(), 0);
  for (void *p : second) DepotHeap_Free(p);
  DepotHeap_Destroy(a);
  DepotHeap_Destroy(b);
  EXPECT_EQ(depot_check_heap(), 0);
}

// A heap keeps its huge blocks in a set of its own (heap.c), grown as they
// come and shrunk one by one; reset frees those left without a walk of the
// process's huge table.
TEST(HeapLifetime, ManyHugeBlocksFreedOneByOneAndByReset) {
  ASSERT_EQ(DepotMem_SetOption("huge_threshold_bytes", "64k"), 0);
  DepotHeap *h = Make("huge");
  std::vector<void *> v;
  unsigned r = 1;
  for (int i = 0; i < 600; i++) {  // the set grows twice
    // Irregular sizes: addresses in no progression, so that they collide.
    r = r * 1103515245u + 12345u;
    void *p = DepotHeap_Malloc(h, 70000 + (r >> 8) % 300000);
    ASSERT_NE(p, nullptr);
    memset(p, i, 64);
    v.push_back(p);
  }
  EXPECT_EQ(Stats(h).blocks_in_use, 600u);
  for (size_t i = 0; i < v.size(); i += 3) {
    DepotHeap_Free(v[i]);
    v[i] = nullptr;
  }
  EXPECT_EQ(Stats(h).blocks_in_use, 400u);
  for (size_t i = 0; i < v.size(); i++)
    if (v[i]) {
      ASSERT_EQ(DepotHeap_Of(v[i]), h);
      ASSERT_EQ(*(unsigned char *)v[i], (unsigned char)i);
    }
  EXPECT_EQ(depot_check_heap(), 0);
  DepotHeap_Reset(h);
  DepotHeapStats s = Stats(h);
  EXPECT_EQ(s.blocks_in_use, 0u);
  EXPECT_EQ(s.bytes_held, 0u);
  for (void *p : v)
    if (p) EXPECT_EQ(DepotHeap_Of(p), nullptr);
  EXPECT_EQ(depot_check_heap(), 0);
  void *again = DepotHeap_Malloc(h, 100000);  // a new set after the reset
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(DepotHeap_Of(again), h);
  DepotHeap_Destroy(h);
  EXPECT_EQ(depot_check_heap(), 0);
  ASSERT_EQ(DepotMem_SetOption("huge_threshold_bytes", "2m"), 0);
}

// ---- the limit -------------------------------------------------------------------

TEST(HeapLimit, FailsAtTheLimitAndRecoversAfterFree) {
  const size_t limit = size_t(1) << 20;
  DepotHeap *h = Make("limited", limit);
  std::vector<void *> v;
  void *p;
  errno = 0;
  while ((p = DepotHeap_Malloc(h, 1000)) != nullptr) {
    v.push_back(p);
    ASSERT_LT(v.size(), 100000u) << "the limit never hit";
  }
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_GT(v.size(), 500u);
  DepotHeapStats s = Stats(h);
  EXPECT_LE(s.bytes_held, limit);
  EXPECT_GE(s.limit_hits, 1u);
  EXPECT_EQ(s.limit_bytes, limit);
  errno = 0;
  EXPECT_EQ(DepotHeap_Malloc(h, 200000), nullptr) << "a large block too";
  EXPECT_EQ(errno, ENOMEM);
  for (void *q : v) DepotHeap_Free(q);
  // Another class, then a large block: the freed spans make room.
  std::vector<void *> w;
  for (int i = 0; i < 40; i++) {
    void *q = DepotHeap_Malloc(h, 16000);
    ASSERT_NE(q, nullptr) << i;
    w.push_back(q);
  }
  for (void *q : w) DepotHeap_Free(q);
  void *big = DepotHeap_Malloc(h, 500000);
  EXPECT_NE(big, nullptr);
  DepotHeap_Free(big);
  EXPECT_EQ(depot_check_heap(), 0);
  DepotHeap_Destroy(h);
}

uint64_t Stat(const char *name) {
  char buf[64];
  EXPECT_EQ(DepotMem_GetOption(name, buf, sizeof buf), 0);
  return strtoull(buf, nullptr, 10);
}

// A heap's own limit is the heap's business: with the process's memory
// limit set too, reaching the heap's limit neither purges the process's
// memory nor counts as a hit of the process's limit (until 2026-12-02 small
// blocks did both); and where the process's limit refuses, the heap's limit
// hits do not count it.
TEST(HeapLimit, AHeapsLimitAndTheProcesssAreCountedApart) {
  std::string room = std::to_string(Stat("stats.held_bytes") + (64u << 20));
  ASSERT_EQ(DepotMem_SetOption("memory_limit", room.c_str()), 0);
  uint64_t hits0 = Stat("stats.memory_limit_hits");
  uint64_t purges0 = Stat("stats.soft_limit_purges");
  DepotHeap *h = Make("own-limit", size_t(1) << 20);
  std::vector<void *> v;
  for (void *p; (p = DepotHeap_Malloc(h, 1000)) != nullptr;) {
    v.push_back(p);
    ASSERT_LT(v.size(), 100000u) << "the limit never hit";
  }
  EXPECT_GE(Stats(h).limit_hits, 1u);
  EXPECT_EQ(Stat("stats.memory_limit_hits"), hits0)
      << "the heap's limit counted as the process's";
  EXPECT_EQ(Stat("stats.soft_limit_purges"), purges0)
      << "the heap's limit purged the process";
  for (void *p : v) DepotHeap_Free(p);
  DepotHeap_Destroy(h);

  // The process's limit refuses a heap far below its own.
  room = std::to_string(Stat("stats.held_bytes") + (4u << 20));
  ASSERT_EQ(DepotMem_SetOption("memory_limit", room.c_str()), 0);
  h = Make("process-limit", size_t(1) << 30);
  v.clear();
  for (void *p; (p = DepotHeap_Malloc(h, 1000)) != nullptr;) {
    v.push_back(p);
    ASSERT_LT(v.size(), 1000000u) << "the process's limit never hit";
  }
  EXPECT_GT(Stat("stats.memory_limit_hits"), hits0);
  EXPECT_EQ(Stats(h).limit_hits, 0u) << "not the heap's limit that refused";
  for (void *p : v) DepotHeap_Free(p);
  DepotHeap_Destroy(h);
  ASSERT_EQ(DepotMem_SetOption("memory_limit", "0"), 0);
  EXPECT_EQ(depot_check_heap(), 0);
}

// ---- wrong families and wrong heaps -------------------------------------------

using HeapDeath = ::testing::Test;

TEST(HeapDeath, HeapBlockFreedByADomain) {
  DepotHeap *h = Make("req");
  void *p = DepotHeap_Malloc(h, 40);
  EXPECT_DEATH(DepotMem_RawFree(p),
               "block of a heap \\('req'.*used with domain 'raw'");
  EXPECT_DEATH(DepotMem_Free(p), "block of a heap \\('req'.*domain 'mem'");
  EXPECT_DEATH(DepotObject_Realloc(p, 100), "realloc.*heap \\('req'");
  void *big = DepotHeap_Malloc(h, 100000);
  EXPECT_DEATH(DepotMem_RawFree(big), "block of a heap \\('req'");
  DepotHeap_Destroy(h);
}

TEST(HeapDeath, DomainBlockFreedIntoAHeap) {
  void *m = DepotMem_RawMalloc(40);
  EXPECT_DEATH(DepotHeap_Free(m),
               "DepotHeap_Free.*domain 'raw' is not a heap's");
  DepotHeap *h = Make("x");
  EXPECT_DEATH(DepotHeap_Realloc(h, m, 100), "DepotHeap_Realloc.*not a heap's");
  int local;
  EXPECT_DEATH(DepotHeap_Free(&local),
               "DepotHeap_Free.*not allocated by Depot");
  DepotHeap_Destroy(h);
  DepotMem_RawFree(m);
}

TEST(HeapDeath, BlockOfOneHeapReallocatedInAnother) {
  DepotHeap *a = Make("a"), *b = Make("b");
  void *p = DepotHeap_Malloc(a, 40);
  EXPECT_DEATH(DepotHeap_Realloc(b, p, 100),
               "block of heap 'a' reallocated as if in heap 'b'");
  DepotHeap_Destroy(a);
  DepotHeap_Destroy(b);
}

TEST(HeapDeath, UseAfterResetOrDestroy) {
  DepotHeap *h = Make("gone");
  void *small = DepotHeap_Malloc(h, 64);
  void *large = DepotHeap_Malloc(h, 100000);
  DepotHeap_Reset(h);
  EXPECT_DEATH(DepotHeap_Free(large), "DepotHeap_Free.*not a live block");
  EXPECT_DEATH(DepotHeap_Free(small),
               "DepotHeap_Free.*(not a live block|reset or destroyed)");
  DepotHeap_Destroy(h);
  EXPECT_DEATH(DepotHeap_Malloc(h, 10), "not a live heap");
  EXPECT_DEATH(DepotHeap_Destroy(h), "DepotHeap_Destroy.*not a live heap");
}

TEST(HeapDeath, DoubleFreeInTheCache) {
  DepotHeap *h = Make("twice");
  void *p = DepotHeap_Malloc(h, 64);
  DepotHeap_Free(p);
  EXPECT_DEATH(DepotHeap_Free(p),
               "double free detected in the thread cache.*heap 'twice'");
  DepotHeap_Destroy(h);
}

TEST(HeapDeath, DoubleFreeByTwoThreads) {
  // Freed by another thread into its cache, then here while it waits there
  // (the thread lives on: its exit would put the block back on its span):
  // the block carries the free key and is not on this thread's bin.
  DepotHeap *h = Make("two threads");
  void *p = DepotHeap_Malloc(h, 64);
  std::atomic<int> step{0};
  std::thread t([p, &step] {
    DepotHeap_Free(p);
    step = 1;
    while (step != 2) std::this_thread::yield();
  });
  while (step != 1) std::this_thread::yield();
  EXPECT_DEATH(
      DepotHeap_Free(p),
      "DepotHeap_Free\\(0x[0-9a-f]+\\): double free detected in a pool "
      "or another thread's cache \\(a 64-byte block of heap 'two "
      "threads' freed twice\\)");
  step = 2;
  t.join();
  DepotHeap_Destroy(h);
}

// ---- statistics ------------------------------------------------------------------

TEST(HeapStats, CountsAndTheReport) {
  DepotHeap *h = Make("stats \"heap\"");
  std::vector<void *> v;
  for (int i = 0; i < 1000; i++) v.push_back(DepotHeap_Malloc(h, 100));
  v.push_back(DepotHeap_Malloc(h, 50000));
  DepotHeapStats s = Stats(h);
  EXPECT_EQ(s.blocks_in_use, 1001u);
  EXPECT_EQ(s.bytes_in_use, 1000u * 112 + 57344);  // class 112, 7 pages
  EXPECT_GE(s.bytes_held, s.bytes_in_use);
  EXPECT_GE(s.peak_bytes_held, s.bytes_held);
  EXPECT_EQ(s.node, DEPOT_HEAP_NODE_ANY);
  EXPECT_STREQ(s.name, "stats \"heap\"");
  for (int i = 0; i < 500; i++) DepotHeap_Free(v[i]);
  s = Stats(h);
  EXPECT_EQ(s.blocks_in_use, 501u);
  EXPECT_EQ(s.bytes_in_use, 500u * 112 + 57344);
  // The report: by name, in text and JSON (the name escaped).
  FILE *f = tmpfile();
  ASSERT_EQ(DepotMem_PrintStats(fileno(f), 0), 0);
  ASSERT_EQ(DepotMem_PrintStats(fileno(f), DEPOT_STATS_JSON), 0);
  rewind(f);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  fclose(f);
  EXPECT_NE(text.find("heaps\n"), std::string::npos);
  EXPECT_NE(text.find("stats \"heap\""), std::string::npos);
  EXPECT_NE(text.find("\"heaps\":[{\"name\":\"stats \\\"heap\\\"\",\"node\":-1,"
                      "\"blocks_in_use\":501,"),
            std::string::npos)
      << text.substr(text.size() > 600 ? text.size() - 600 : 0);
  DepotHeapStats tiny;
  tiny.size = 8;
  errno = 0;
  EXPECT_EQ(DepotHeap_Stats(h, &tiny), -1);
  EXPECT_EQ(errno, EINVAL);
  DepotHeap_Destroy(h);
  s.size = sizeof s;
  EXPECT_EQ(DepotHeap_Stats(h, &s), -1) << "a destroyed heap has none";
}

// ---- fork and thread exit ----------------------------------------------------------

TEST(HeapProcess, ForkChildKeepsWorkingHeaps) {
  DepotHeap *h = Make("forked");
  std::atomic<bool> stop{false};
  // Another thread busy in a heap of its own: fork takes the heaps' locks.
  std::thread busy([&] {
    DepotHeap *b = Make("busy");
    while (!stop.load()) {
      void *p = DepotHeap_Malloc(b, 500);
      DepotHeap_Free(p);
      DepotHeap_Reset(b);
    }
    DepotHeap_Destroy(b);
  });
  char *p = static_cast<char *>(DepotHeap_Malloc(h, 64));
  strcpy(p, "parent");
  for (int k = 0; k < 20; k++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int ok = strcmp(p, "parent") == 0 && DepotHeap_Of(p) == h;
      for (int i = 0; i < 10000 && ok; i++) {
        void *q = DepotHeap_Malloc(h, size_t(i % 300) + 1);
        ok = q && DepotHeap_Of(q) == h;
        if (i % 3) DepotHeap_Free(q);
      }
      DepotHeap_Reset(h);
      DepotHeap *c = DepotHeap_New(nullptr);
      ok = ok && c && DepotHeap_Malloc(c, 100) != nullptr;
      DepotHeap_Destroy(c);
      ok = ok && depot_check_heap() == 0;
      _exit(ok ? 0 : 1);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << k;
  }
  stop = true;
  busy.join();
  DepotHeap_Destroy(h);
}

TEST(HeapProcess, ThreadExitGivesItsCacheBack) {
  DepotHeap *h = Make("exiting");
  std::vector<void *> kept;
  for (int t = 0; t < 8; t++)
    std::thread([&] {
      std::vector<void *> v;
      for (int i = 0; i < 3000; i++) v.push_back(DepotHeap_Malloc(h, 64));
      for (int i = 0; i < 3000; i++)
        if (i % 10) DepotHeap_Free(v[i]);
        else kept.push_back(v[i]);
    }).join();
  DepotHeapStats s = Stats(h);
  EXPECT_EQ(s.blocks_cached, 0u) << "exited threads' caches went back";
  EXPECT_EQ(s.blocks_in_use, kept.size());
  for (void *p : kept) DepotHeap_Free(p);  // from another thread
  EXPECT_EQ(depot_check_heap(), 0);
  DepotHeap_Destroy(h);
}

}  // namespace

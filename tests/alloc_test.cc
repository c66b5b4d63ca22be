// The core's entry points: sizes, alignment, usable size, realloc, calloc,
// domains and the handling of pointers Depot never handed out.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <set>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/sizeclass.h"
#include "tests/probe.h"

namespace {

constexpr unsigned RAW = 0, MEM = 1, OBJ = 2;

void fill(void *p, size_t n, unsigned seed) {
  auto *b = static_cast<unsigned char *>(p);
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 131 + i * 7);
}
bool check(const void *p, size_t n, unsigned seed) {
  auto *b = static_cast<const unsigned char *>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed * 131 + i * 7)) return false;
  return true;
}

TEST(Alloc, ZeroBytesGivesDistinctUsablePointers) {
  std::set<void *> seen;
  for (int i = 0; i < 100; i++) {
    void *p = depot_alloc_call(0, RAW);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second);
    EXPECT_GE(depot_usable_size(p), 1u);
  }
  for (void *p : seen) depot_free_call(p, RAW);
}

TEST(Alloc, EveryClassIsAlignedWithItsUsableSize) {
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    size_t cs = depot_class_size[c];
    for (size_t s : {cs - 15, cs - 1, cs}) {
      std::vector<void *> v;
      for (int i = 0; i < 20; i++) {
        void *p = depot_alloc_call(s, OBJ);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(uintptr_t(p) % 16, 0u) << "size " << s;
        EXPECT_EQ(depot_usable_size(p), cs) << "size " << s;
        EXPECT_EQ(depot_domain_of(p), int(OBJ));
        fill(p, cs, unsigned(i));
        v.push_back(p);
      }
      for (size_t i = 0; i < v.size(); i++) {
        EXPECT_TRUE(check(v[i], cs, unsigned(i)));
        depot_free_call(v[i], OBJ);
      }
    }
  }
}

TEST(Alloc, LargeAndHugeBlocks) {
  for (size_t s : {size_t(32769), size_t(40000), size_t(1) << 20,
                   size_t(3) << 20, size_t(10) << 20, size_t(64) << 20}) {
    void *p = depot_alloc_call(s, MEM);
    ASSERT_NE(p, nullptr) << s;
    EXPECT_EQ(uintptr_t(p) % 16, 0u);
    size_t u = depot_usable_size(p);
    EXPECT_GE(u, s);
    EXPECT_LT(u, s + s / 8 + 8192);
    EXPECT_EQ(depot_domain_of(p), int(MEM));
    memset(p, 0xAB, u);
    depot_free_call(p, MEM);
    EXPECT_EQ(depot_usable_size(p), 0u) << "freed block still looks live";
  }
}

TEST(Alloc, AlignedAllocationUpTo16MiB) {
  for (size_t align = 32; align <= (size_t(16) << 20); align *= 2) {
    for (size_t s :
         {size_t(1), size_t(100), align, 3 * align / 2, size_t(40000)}) {
      void *p = depot_aligned_alloc(align, s, RAW);
      ASSERT_NE(p, nullptr) << "align " << align << " size " << s;
      EXPECT_EQ(uintptr_t(p) % align, 0u) << "align " << align << " size " << s;
      EXPECT_GE(depot_usable_size(p), s);
      memset(p, 0x5A, s);
      depot_free_call(p, RAW);
    }
  }
}

TEST(Alloc, AlignedAllocationRejectsBadAlignment) {
  for (size_t align : {size_t(0), size_t(3), size_t(24), size_t(1000)}) {
    errno = 0;
    EXPECT_EQ(depot_aligned_alloc(align, 64, RAW), nullptr);
    EXPECT_EQ(errno, EINVAL);
  }
}

TEST(Alloc, ReallocKeepsContentsAcrossClassChanges) {
  const size_t sizes[] = {
      1, 17, 100, 1000, 5000, 33000, 200000, 3 << 20, size_t(10) << 20};
  void *p = depot_alloc_call(1, MEM);
  fill(p, 1, 9);
  size_t have = 1;
  for (size_t s : sizes) {  // grow through small, large and huge
    p = depot_realloc(p, s, MEM);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(check(p, have, 9)) << "growing to " << s;
    fill(p, s, 9);
    have = s;
  }
  for (int i = int(sizeof sizes / sizeof sizes[0]) - 2; i >= 0; i--) {
    p = depot_realloc(p, sizes[i], MEM);  // and shrink back
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(check(p, sizes[i], 9)) << "shrinking to " << sizes[i];
  }
  void *q = depot_realloc(p, 0, MEM);  // resizes to a minimum block
  ASSERT_NE(q, nullptr);
  depot_free_call(q, MEM);
  void *r = depot_realloc(nullptr, 50, MEM);  // realloc(NULL) allocates
  ASSERT_NE(r, nullptr);
  depot_free_call(r, MEM);
}

// Allocates from bytes (a RAW block) and reallocs it up by step to at most
// to, checking at each step that the contents moved with it; counts in
// *moves the steps to a size above count_above that moved the block.
// Returns the grown block, or NULL after a failed expectation.
static void *grow_by_steps(size_t from, size_t to, size_t step, unsigned seed,
                           size_t count_above, size_t *moves) {
  void *p = depot_alloc_call(from, RAW);
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return nullptr;
  fill(p, from, seed);
  for (size_t have = from, s = from + step; s <= to; have = s, s += step) {
    void *q = depot_realloc(p, s, RAW);
    EXPECT_NE(q, nullptr) << "growing to " << s;
    if (q == nullptr) return nullptr;
    EXPECT_TRUE(check(q, have, seed)) << "growing to " << s;
    if (!check(q, have, seed)) return nullptr;
    if (q != p && s > count_above) ++*moves;
    fill(q, s, seed);
    p = q;
  }
  return p;
}

TEST(Alloc, AGrowingSmallBlockMovesToAPageRunThatGrowsInPlace) {
  // Grown by 256 bytes at a time from 64 bytes to 256 KiB: class
  // boundaries are crossed all the way to 32 KiB, but from 4 KiB on the
  // block is a page run placed where it has room (the front of a long
  // free span) and takes the pages after it, so it moves at most once
  // there (into its run), each move keeping the contents.
  size_t moves_above_4k = 0;
  void *p = grow_by_steps(64, 262144, 256, 5, 4096, &moves_above_4k);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(depot_usable_size(p), 262144u) << "a page run";
  EXPECT_LE(moves_above_4k, 1u);
  // And it shrinks in place while it stays a page run of at most twice
  // what is asked.
  EXPECT_EQ(depot_realloc(p, 200000, RAW), p);
  depot_free_call(p, RAW);
}

TEST(Alloc, ABlockGrownBySmallStepsSkipsClasses) {
  // Grown 16 bytes at a time from 32 bytes to 4000: 26 class boundaries,
  // but a block that must move for a small step gets half again its size,
  // so it moves about ten times.
  size_t moves = 0;
  void *p = grow_by_steps(32, 4000, 16, 6, 0, &moves);
  ASSERT_NE(p, nullptr);
  EXPECT_LE(moves, 20u);
  EXPECT_GE(moves, 8u);
  // A big step gets what it asks for, no more.
  void *r = depot_realloc(p, 1000, RAW);  // shrinks (more than half empty)
  ASSERT_NE(r, nullptr);
  void *t = depot_realloc(r, 2000, RAW);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(depot_usable_size(t), depot_class_size[depot_size_to_class(2000)]);
  depot_free_call(t, RAW);
}

TEST(Alloc, IdleBinsGiveTheirBlocksBack) {
  // A bin filled once and then left alone: while the thread keeps missing
  // in other classes (slow paths), the idle bin gives back half of what it
  // holds each idle-bin period (100 ms).
  const unsigned cls = depot_size_to_class(720);  // a class nothing else uses
  auto cached = [&] {
    depot_class_stats_t st;
    depot_core_class_stats(OBJ, cls, &st);
    return st.cached;
  };
  std::vector<void *> v;
  for (int i = 0; i < 64; i++) v.push_back(depot_alloc_call(720, OBJ));
  for (void *p : v) depot_free_call(p, OBJ);
  size_t full = cached();
  ASSERT_GE(full, 16u) << "the bin keeps freed blocks";
  // Misses and overflows in another class until the idle bin is down to a
  // quarter (two idle periods at least), for at most 10 s: a loaded machine
  // runs few iterations per period, and without the trimming it never ends.
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long ms = 0;
  while (cached() > full / 4 && ms < 10000) {
    std::vector<void *> w;
    for (int i = 0; i < 300; i++) w.push_back(depot_alloc_call(3000, OBJ));
    for (void *p : w) depot_free_call(p, OBJ);
    clock_gettime(CLOCK_MONOTONIC, &t);
    ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
  }
  EXPECT_LE(cached(), full / 4) << "an idle bin kept its blocks";
  EXPECT_GE(ms, 90) << "two idle-bin passes are 100 ms apart";
}

TEST(Alloc, CallocZeroesRecycledMemory) {
  for (size_t s : {size_t(48), size_t(3000), size_t(50000), size_t(5) << 20}) {
    void *d = depot_alloc_call(s, RAW);
    memset(d, 0xFF, s);
    depot_free_call(d, RAW);
    auto *z = static_cast<unsigned char *>(depot_calloc(1, s, RAW));
    ASSERT_NE(z, nullptr);
    for (size_t i = 0; i < s; i++) ASSERT_EQ(z[i], 0) << "byte " << i;
    depot_free_call(z, RAW);
  }
  void *p = depot_calloc(0, 10, RAW);
  EXPECT_NE(p, nullptr);
  depot_free_call(p, RAW);
}

TEST(Alloc, OversizedRequestsFailWithENOMEM) {
  const size_t too_big[] = {size_t(PTRDIFF_MAX) + 1, SIZE_MAX, SIZE_MAX - 4095};
  for (size_t s : too_big) {
    errno = 0;
    EXPECT_EQ(depot_alloc_call(s, RAW), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(depot_aligned_alloc(64, s, RAW), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  errno = 0;
  EXPECT_EQ(depot_calloc(SIZE_MAX / 2, 3, RAW), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(depot_calloc(size_t(1) << 32, size_t(1) << 32, RAW), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void *p = depot_alloc_call(100, RAW);
  fill(p, 100, 3);
  errno = 0;
  EXPECT_EQ(depot_realloc(p, SIZE_MAX, RAW), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(check(p, 100, 3)) << "failed realloc must keep the block";
  depot_free_call(p, RAW);
  // A request that passes the size check but that the OS cannot map.
  errno = 0;
  EXPECT_EQ(depot_alloc_call(size_t(PTRDIFF_MAX) - 4096, RAW), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Alloc, OwnershipCheckNeverFaults) {
  int on_stack;
  static int in_data;
  void *small = depot_alloc_call(24, RAW);
  void *large = depot_alloc_call(100000, RAW);
  void *huge = depot_alloc_call(size_t(8) << 20, RAW);
  EXPECT_TRUE(depot_owns(small));
  EXPECT_TRUE(depot_owns(large));
  EXPECT_TRUE(depot_owns(huge));
  const uintptr_t junk[] = {0,
                            1,
                            uintptr_t(&on_stack),
                            uintptr_t(&in_data),
                            0xdeadbeef,
                            uintptr_t(-1),
                            uintptr_t(0xffff800000000000ull),
                            uintptr_t(1) << 46,
                            uintptr_t(small) + 8,
                            uintptr_t(large) + 8192,
                            uintptr_t(huge) + 16};
  for (uintptr_t a : junk) {
    EXPECT_FALSE(depot_owns(reinterpret_cast<void *>(a))) << std::hex << a;
    EXPECT_EQ(depot_usable_size(reinterpret_cast<void *>(a)), 0u);
  }
  // The segment header of a live block's segment is not a block either.
  EXPECT_FALSE(depot_owns(
      reinterpret_cast<void *>(uintptr_t(small) & ~uintptr_t((4 << 20) - 1))));
  depot_free_call(small, RAW);
  depot_free_call(large, RAW);
  depot_free_call(huge, RAW);
  EXPECT_FALSE(depot_owns(large));
  EXPECT_FALSE(depot_owns(huge));
  depot_free_call(nullptr, RAW);  // nothing happens
}

class AllocDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(AllocDeath, FreeWithAnotherDomainIsCaught) {
  void *p = depot_alloc_call(64, MEM);
  EXPECT_DEATH(
      depot_free_call(p, RAW),
      "free\\(0x[0-9a-f]+\\): block of domain 'mem' used with domain 'raw'");
  void *l = depot_alloc_call(100000, OBJ);
  EXPECT_DEATH(depot_free_call(l, MEM), "domain 'obj' used with domain 'mem'");
  void *h = depot_alloc_call(size_t(8) << 20, RAW);
  EXPECT_DEATH(depot_free_call(h, OBJ), "domain 'raw' used with domain 'obj'");
  EXPECT_DEATH(depot_realloc(p, 10, OBJ),
               "realloc.*domain 'mem' used with domain 'obj'");
  depot_free_call(p, MEM);
  depot_free_call(l, OBJ);
  depot_free_call(h, RAW);
}

TEST_F(AllocDeath, ForeignAndInteriorPointersAreCaught) {
  int on_stack;
  EXPECT_DEATH(depot_free_call(&on_stack, RAW), "not allocated by Depot");
  // Small blocks: the slow path (and the realloc path) checks the block
  // start; the cache-hit fast path of free deliberately does not.
  char *p = static_cast<char *>(depot_alloc_call(64, RAW));
  EXPECT_DEATH(depot_realloc(p + 16, 100, RAW),
               "realloc.*not the start of a block");
  char *l = static_cast<char *>(depot_alloc_call(100000, RAW));
  EXPECT_DEATH(depot_free_call(l + 8192, RAW), "not the start of a block");
  // realloc of a page run reads the page table first: an interior pointer
  // and a wrong domain still reach the full path's reports.
  EXPECT_DEATH(depot_realloc(l + 8192, 100, RAW),
               "realloc.*not the start of a block");
  EXPECT_DEATH(depot_realloc(l, 200000, MEM),
               "realloc.*domain 'raw' used with domain 'mem'");
  depot_free_call(p, RAW);
  depot_free_call(l, RAW);
  EXPECT_DEATH(
      depot_free_call(l, RAW),
      "not a live block \\(freed already");  // double free of a large block
}

// malloc_usable_size's fast path (depot_usable_size_fast): the block's size
// at its start, never more than the bytes left inside it; an interior
// pointer is reported in debug builds.
TEST_F(AllocDeath, UsableSizeNeverOverReports) {
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    size_t cs = depot_class_size[c];
    std::vector<char *> v;
    for (int i = 0; i < 3; i++)
      v.push_back(static_cast<char *>(depot_alloc_call(cs, RAW)));
    for (char *p : v) {
      EXPECT_EQ(probe_usable_size_fast(p), cs) << cs;
      if (probe_check_level() >= 2) continue;
      for (size_t into : {size_t(16), cs / 2, cs - 16}) {
        if (into > 0 && into < cs) {
          EXPECT_EQ(probe_usable_size_fast(p + into), cs - into)
              << cs << "+" << into;
        }
      }
    }
    for (char *p : v) depot_free_call(p, RAW);
  }
  char *p = static_cast<char *>(depot_alloc_call(64, RAW));
  if (probe_check_level() >= 2)
    EXPECT_DEATH(
        probe_usable_size_fast(p + 16),
        "malloc_usable_size\\(0x[0-9a-f]+\\): not the start of a block");
  else EXPECT_EQ(probe_usable_size_fast(p + 16), 48u);
  char *l = static_cast<char *>(depot_alloc_call(100000, RAW));
  EXPECT_GE(probe_usable_size_fast(l), 100000u);
  EXPECT_EQ(probe_usable_size_fast(l + 4096), 0u) << "inside a large block";
  depot_free_call(p, RAW);
  depot_free_call(l, RAW);
}

TEST_F(AllocDeath, DoubleFreeInTheThreadCacheIsCaught) {
  // The second free finds the block on its bin (glibc's tcache key check).
  for (size_t size : {16, 32, 200, 4000, 32768}) {
    void *p = depot_alloc_call(size, OBJ);
    EXPECT_DEATH(
        {
          depot_free_call(p, OBJ);
          depot_free_call(p, OBJ);
        },
        "free\\(0x[0-9a-f]+\\): double free detected in the thread cache "
        "\\(a [0-9]+-byte block of domain 'obj' freed twice\\)");
    depot_free_call(p, OBJ);
  }
}

TEST_F(AllocDeath, DoubleFreeWithNoThreadCacheIsCaught) {
  // tcache_max_bytes=0: every free goes to the pool, a block at a time,
  // carrying the free key as a block in a bin does.
  void *p = depot_alloc_call(48, RAW);
  EXPECT_DEATH(
      {
        char err[160];
        if (depot_config_set(DEPOT_CONF_tcache_max_bytes, "0", err,
                             sizeof err) != 0)
          abort();
        depot_thread_flush();
        void *q = depot_alloc_call(48, RAW);
        depot_free_call(q, RAW);
        depot_free_call(q, RAW);
      },
      "free\\(0x[0-9a-f]+\\): double free detected in a pool or another "
      "thread's cache \\(a 48-byte block of domain 'raw' freed twice\\)");
  depot_free_call(p, RAW);
}

// The free fast path's compare lets a bin of no class through when the
// thread's owner is node 0's shared heap (owner_entry 0) and the page has no
// small class (entry 0): the bin's room, always 0, must send the free to the
// slow path, which frees the block as usual.
TEST(Alloc, FreeOfAPageOfNoClassUnderOwnerEntryZeroMisses) {
  depot_free_call(depot_alloc_call(32, RAW), RAW);  // the thread has a cache
  for (size_t size : {size_t(40000), size_t(100000), size_t(300000)}) {
    void *l = depot_alloc_call(size, RAW);
    ASSERT_NE(l, nullptr);
    if (!probe_region_contains(l)) {  // no region: nothing to test here
      depot_free_call(l, RAW);
      continue;
    }
    EXPECT_EQ(probe_free_as_node0_shared_owner(l), 1) << size;
  }
  EXPECT_EQ(depot_check_heap(), 0);
}

// The same bin of no class must send a garbage pointer to the miss before
// the block's second word is read: at the region's last bytes it lies past
// the region's end (unmapped), and the free must be reported, not fault.
// In a fresh process (the death test's) the region's last page is free.
TEST_F(AllocDeath, GarbageAtTheRegionEndUnderOwnerEntryZeroIsReported) {
  void *p = depot_alloc_call(32, RAW);  // the thread has a cache
  bool region = probe_region_contains(p);
  depot_free_call(p, RAW);
  if (!region) GTEST_SKIP() << "no heap region";
  EXPECT_DEATH(
      {
        if (!probe_free_region_end_as_node0_shared_owner())
          fprintf(stderr, "the region's last page serves a small class\n");
        abort();
      },
      "depot: free\\(0x[0-9a-f]+\\): ");
}

TEST(Alloc, ABlockCarryingTheFreeKeyIsTakenForAFreedOne) {
  // A small block carries the key from its free until an allocation clears
  // it, wherever it waits: so a free of a block that carries it is a double
  // free, reported with where the block waits (this thread's bin, found by
  // a walk, or elsewhere: another thread's cache, a pool).
  void *p = depot_alloc_call(32, RAW);
  depot_free_call(p, RAW);
  uintptr_t key = static_cast<uintptr_t *>(p)[1];  // what free wrote
  EXPECT_EQ(key & 1, 1u);
  std::vector<void *> v;
  for (int i = 0; i < 200; i++) {
    void *q = depot_alloc_call(32, RAW);
    EXPECT_NE(static_cast<uintptr_t *>(q)[1], key)
        << "alloc must clear the key";
    v.push_back(q);
  }
  static_cast<uintptr_t *>(v[7])[1] = key;  // as if it waited free elsewhere
  EXPECT_DEATH(depot_free_call(v[7], RAW),
               "free\\(0x[0-9a-f]+\\): double free detected in a pool or "
               "another thread's cache \\(a 32-byte block");
  static_cast<uintptr_t *>(v[7])[1] = 0;
  for (void *q : v) depot_free_call(q, RAW);
}

TEST(Alloc, BlocksBackOnTheirSpansCarryNoFreeKey) {
  // A block that goes back onto its span's list leaves the key behind, so
  // that the memory a span gives to its next use holds none (a program's
  // copy of it in a block's second word would make that block's free a
  // reported double free).  One block stays live: its span, the others'
  // too, stays a small span, not purged.
  std::vector<void *> v;
  for (int i = 0; i < 64; i++) v.push_back(depot_alloc_call(48, RAW));
  void *keep = v.back();
  v.pop_back();
  for (void *q : v) depot_free_call(q, RAW);
  uintptr_t key = static_cast<uintptr_t *>(v.back())[1];  // on the bin
  EXPECT_EQ(key & 1, 1u);
  depot_trim();  // the cache and the pools into the spans
  int keyed = 0;
  for (void *q : v) keyed += static_cast<uintptr_t *>(q)[1] == key;
  EXPECT_EQ(keyed, 0);
  depot_free_call(keep, RAW);
}

TEST(Alloc, WarnModeReportsAndLeaksInsteadOfAborting) {
  int on_stack;
  depot_options.on_bad_free = DEPOT_ON_BAD_FREE_WARN;
  testing::internal::CaptureStderr();
  depot_free_call(&on_stack, RAW);
  std::string err = testing::internal::GetCapturedStderr();
  depot_options.on_bad_free = DEPOT_ON_BAD_FREE_ABORT;
  EXPECT_NE(err.find("not allocated by Depot (ignored; the block is leaked)"),
            std::string::npos)
      << err;
}

TEST(Alloc, WarnModeIgnoresADoubleFree) {
  // The second free is reported and changes nothing: the block is on the
  // bin once, so it is handed out once.
  void *p = depot_alloc_call(80, RAW);
  depot_free_call(p, RAW);
  depot_options.on_bad_free = DEPOT_ON_BAD_FREE_WARN;
  testing::internal::CaptureStderr();
  depot_free_call(p, RAW);
  std::string err = testing::internal::GetCapturedStderr();
  depot_options.on_bad_free = DEPOT_ON_BAD_FREE_ABORT;
  EXPECT_NE(err.find("double free detected in the thread cache (a 80-byte "
                     "block of domain 'raw' freed twice) (ignored; the block "
                     "stays free)"),
            std::string::npos)
      << err;
  void *a = depot_alloc_call(80, RAW), *b = depot_alloc_call(80, RAW);
  EXPECT_EQ(a, p);
  EXPECT_NE(b, p);
  depot_free_call(a, RAW);
  depot_free_call(b, RAW);
}

}  // namespace

// depot_check_heap must catch what it claims to: a thread cache bin whose
// list no longer matches its count (here a block pushed twice, which makes
// the list a cycle, as a double free in the cache would).
TEST(CheckHeapDeathTest, CatchesACorruptedCacheBin) {
  EXPECT_DEATH(
      {
        void *p = depot_alloc_call(48, 0);
        depot_free_call(p, 0);
        *static_cast<void **>(p) = p;  // the bin's list now loops
        depot_check_heap();
      },
      "internal check failed.*tcache.c");
}

TEST(CheckHeap, PassesOnAHealthyHeap) {
  std::vector<void *> v;
  for (size_t i = 0; i < 3000; i++)
    v.push_back(depot_alloc_call(1 + i * 13 % 40000, i % 3));
  EXPECT_EQ(depot_check_heap(), 0);
  for (size_t i = 0; i < v.size(); i++) depot_free_call(v[i], i % 3);
  depot_trim();
  EXPECT_EQ(depot_check_heap(), 0);
}

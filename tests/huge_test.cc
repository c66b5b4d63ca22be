// Huge blocks and the cache of freed mappings on their own: reuse keeps the
// pages and their contents, a cached range is split to serve a smaller
// request and grown for a longer one (also where it spans two mappings,
// which mremap refuses; one that cannot grow stays cached), adjacent freed
// ranges are joined, a range longer than the cache is unmapped alone, and
// cached ranges are unmapped once the purge delay has passed or on trim, and
// not before.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/huge.h"
#include "alloc/limit.h"
#include "alloc/os.h"

namespace {

constexpr unsigned MEM = 1;
constexpr size_t MiB = size_t(1) << 20;
constexpr unsigned kLongDelayMs = 600000;

struct Block {
  char *p;
  size_t dirty, usable;
};

Block Alloc(size_t size) {
  Block b{nullptr, 0, 0};
  b.p = static_cast<char *>(
      depot_huge_alloc(size, 4096, MEM, &b.dirty, &b.usable));
  return b;
}

depot_huge_stats_t Stats() {
  depot_huge_stats_t st;
  depot_huge_stats(&st);
  return st;
}

// Whether every page of [p, p + n) is mapped (mincore fails with ENOMEM on
// an unmapped page).
bool Mapped(const void *p, size_t n) {
  std::vector<unsigned char> v((n + 4095) / 4096);
  if (mincore(const_cast<void *>(p), n, v.data()) == 0) return true;
  EXPECT_EQ(errno, ENOMEM);
  return false;
}

// A setting changed as a running program would change it.
void SetConfig(depot_conf_key_t id, const char *value) {
  char err[160];
  ASSERT_EQ(depot_config_set(id, value, err, sizeof err), 0) << err;
}

// The purge delay, changed as a running program would (the core reads it
// with depot_config_live).
void SetPurgeDelay(unsigned ms) {
  SetConfig(DEPOT_CONF_purge_delay_ms, std::to_string(ms).c_str());
}

class Huge : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(depot_init(), 0);
    depot_huge_release_cache();
    SetPurgeDelay(kLongDelayMs);
    ASSERT_EQ(Stats().cached, 0u);
  }
  void TearDown() override {
    SetConfig(DEPOT_CONF_memory_limit, "0");
    SetConfig(DEPOT_CONF_memory_limit_margin, "10%");
    SetConfig(DEPOT_CONF_memory_limit_soft, "90");
    depot_huge_release_cache();
    SetPurgeDelay(kLongDelayMs);
  }
};

TEST_F(Huge, ReuseKeepsThePagesAndTheirContents) {
  Block a = Alloc(4 * MiB);
  ASSERT_NE(a.p, nullptr);
  EXPECT_EQ(a.usable, 4 * MiB);
  EXPECT_EQ(a.dirty, 0u) << "a fresh mapping holds only zeros";
  memset(a.p, 0x3C, a.usable);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(Stats().blocks, 0u);
  EXPECT_EQ(Stats().cached, 1u);
  EXPECT_EQ(Stats().cached_bytes, 4 * MiB);
  EXPECT_TRUE(Mapped(a.p, a.usable)) << "unmapped before the purge delay";

  Block b = Alloc(4 * MiB);
  ASSERT_EQ(b.p, a.p) << "the cached range was not reused";
  EXPECT_EQ(b.dirty, 4 * MiB) << "a reused range may hold old data";
  EXPECT_EQ(Stats().cached, 0u);
  EXPECT_EQ(Stats().blocks, 1u);
  for (size_t i = 0; i < b.usable; i += 4096) ASSERT_EQ(b.p[i], 0x3C);
  ASSERT_EQ(depot_huge_free(b.p), 1);
}

TEST_F(Huge, SplitsTheSmallestCachedRangeThatFits) {
  // Two cached ranges, 8 and 16 MiB, kept apart by a live spacer.
  Block big = Alloc(16 * MiB), spacer = Alloc(4 * MiB), small = Alloc(8 * MiB);
  ASSERT_TRUE(big.p && spacer.p && small.p);
  ASSERT_EQ(depot_huge_free(big.p), 1);
  ASSERT_EQ(depot_huge_free(small.p), 1);
  ASSERT_EQ(Stats().cached, 2u) << "the two ranges are adjacent after all";

  // 3 MiB comes from the front of the 8 MiB range; the rest stays cached.
  Block a = Alloc(3 * MiB);
  ASSERT_EQ(a.p, small.p) << "not split from the smallest range that fits";
  EXPECT_EQ(a.dirty, 3 * MiB);
  EXPECT_EQ(Stats().cached, 2u);
  EXPECT_EQ(Stats().cached_bytes, 21 * MiB);
  // 5 MiB fits the 5 MiB left exactly.
  Block b = Alloc(5 * MiB);
  ASSERT_EQ(b.p, small.p + 3 * MiB);
  EXPECT_EQ(Stats().cached, 1u);
  EXPECT_EQ(Stats().cached_bytes, 16 * MiB);
  EXPECT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(depot_huge_free(b.p), 1);
  EXPECT_EQ(depot_huge_free(spacer.p), 1);
}

TEST_F(Huge, JoinsAdjacentFreedRanges) {
  // Two adjacent blocks, split from one freed 8 MiB mapping.
  Block x = Alloc(8 * MiB);
  ASSERT_NE(x.p, nullptr);
  ASSERT_EQ(depot_huge_free(x.p), 1);
  Block a = Alloc(4 * MiB), b = Alloc(4 * MiB);
  ASSERT_EQ(a.p, x.p);
  ASSERT_EQ(b.p, x.p + 4 * MiB);
  ASSERT_EQ(Stats().cached, 0u);

  // Freed in the order that needs a join on the left.
  ASSERT_EQ(depot_huge_free(b.p), 1);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(Stats().cached, 1u) << "adjacent ranges were not joined";
  EXPECT_EQ(Stats().cached_bytes, 8 * MiB);

  // The joined range serves a request of its whole size.
  Block c = Alloc(8 * MiB);
  EXPECT_EQ(c.p, x.p);
  EXPECT_EQ(c.dirty, 8 * MiB);
  EXPECT_EQ(Stats().cached, 0u);
  ASSERT_EQ(depot_huge_free(c.p), 1);
}

TEST_F(Huge, GrowsAShorterCachedRangeKeepingItsContents) {
  Block a = Alloc(4 * MiB);
  ASSERT_NE(a.p, nullptr);
  memset(a.p, 0x5A, a.usable);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  Block b = Alloc(6 * MiB);
  ASSERT_NE(b.p, nullptr);
  EXPECT_EQ(b.dirty, 4 * MiB) << "not the cached 4 MiB, grown";
  EXPECT_EQ(Stats().cached, 0u);
  for (size_t i = 0; i < 4 * MiB; i += 4096) ASSERT_EQ(b.p[i], 0x5A);
  ASSERT_EQ(depot_huge_free(b.p), 1);
}

// A 4 MiB block at a known address whose pages after it are free and which
// spans two mappings (VMAs), the shape that mremap refuses to grow: an
// 8 MiB block is freed, its front 4 MiB taken (and filled with 0x5A), the
// cached rest unmapped, and the block's second half given other flags
// (MADV_RANDOM splits the mapping in two).
char *TwoMappingBlock() {
  Block x = Alloc(8 * MiB);
  if (!x.p) return nullptr;
  EXPECT_EQ(depot_huge_free(x.p), 1);
  Block a = Alloc(4 * MiB);
  EXPECT_EQ(a.p, x.p);
  if (a.p != x.p) return nullptr;
  depot_huge_release_cache(); /* unmaps the back 4 MiB */
  EXPECT_FALSE(Mapped(x.p + 4 * MiB, 4 * MiB));
  memset(a.p, 0x5A, a.usable);
  EXPECT_EQ(madvise(a.p + 2 * MiB, 2 * MiB, MADV_RANDOM), 0);
  return a.p;
}

// The same range freed: cached.
char *TwoMappingRange() {
  char *a = TwoMappingBlock();
  if (a) {
    EXPECT_EQ(depot_huge_free(a), 1);
  }
  return a;
}

// Whether a mapping of /proc/self/maps starts at p.
bool MappingStartsAt(const void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return false;
  char line[512];
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    found = strtoull(line, nullptr, 16) == reinterpret_cast<uintptr_t>(p);
  fclose(f);
  return found;
}

TEST_F(Huge, GrowsARangeOfTwoMappingsInPlace) {
  char *a = TwoMappingRange();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(MappingStartsAt(a + 2 * MiB)) << "the range is one mapping";
  ASSERT_EQ(Stats().cached_bytes, 4 * MiB);

  Block b = Alloc(6 * MiB);
  ASSERT_EQ(b.p, a) << "not grown in place: mapped afresh";
  EXPECT_TRUE(MappingStartsAt(a + 4 * MiB)) << "not the tail mapped in place";
  EXPECT_EQ(b.dirty, 4 * MiB);
  EXPECT_EQ(Stats().cached, 0u);
  EXPECT_TRUE(Mapped(b.p, b.usable));
  for (size_t i = 0; i < 4 * MiB; i += 4096) ASSERT_EQ(b.p[i], 0x5A);
  memset(b.p + 4 * MiB, 0x11, 2 * MiB); /* the tail is writable */
  ASSERT_EQ(depot_huge_free(b.p), 1);
  EXPECT_EQ(Stats().cached_bytes, 6 * MiB);
  depot_huge_release_cache();
  EXPECT_FALSE(Mapped(a, 6 * MiB)) << "the grown range was not unmapped whole";
}

// A page mapped just after [p, p + 4 MiB) so that the range there can
// neither grow in place nor move; unmapped when it goes out of scope.
struct GuardAfter {
  explicit GuardAfter(char *p)
      : at(mmap(p + 4 * MiB, 4096, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)),
        ok(at == p + 4 * MiB) {}
  ~GuardAfter() {
    if (at != MAP_FAILED) munmap(at, 4096);
  }
  void *at;
  bool ok;
};

TEST_F(Huge, KeepsACachedRangeThatCannotGrow) {
  char *a = TwoMappingRange();
  ASSERT_NE(a, nullptr);
  GuardAfter guard(a);
  ASSERT_TRUE(guard.ok);
  size_t held = depot_limit_held(), mapped = depot_os_mapped_bytes();

  Block b = Alloc(6 * MiB);
  ASSERT_NE(b.p, nullptr);
  EXPECT_NE(b.p, a);
  EXPECT_EQ(b.dirty, 0u) << "not a fresh mapping";
  EXPECT_EQ(Stats().cached, 1u) << "the range that could not grow is lost";
  EXPECT_EQ(Stats().cached_bytes, 4 * MiB);
  EXPECT_TRUE(Mapped(a, 4 * MiB));
  EXPECT_EQ(depot_limit_held(), held + 6 * MiB)
      << "the failed growth stays charged";
  EXPECT_EQ(depot_os_mapped_bytes(), mapped + 6 * MiB);
  depot_huge_check();

  // It still serves a request it fits, contents and all.
  Block c = Alloc(4 * MiB);
  ASSERT_EQ(c.p, a);
  EXPECT_EQ(c.dirty, 4 * MiB);
  for (size_t i = 0; i < 4 * MiB; i += 4096) ASSERT_EQ(c.p[i], 0x5A);
  ASSERT_EQ(depot_huge_free(c.p), 1);
  ASSERT_EQ(depot_huge_free(b.p), 1);
}

// Near the memory limit, a range that could not grow is unmapped when the
// fresh mapping does not fit beside it, as if it had never gone back.
TEST_F(Huge, DropsARangeThatCannotGrowWhenTheLimitNeedsItsRoom) {
  char *a = TwoMappingRange();
  ASSERT_NE(a, nullptr);
  GuardAfter guard(a);
  ASSERT_TRUE(guard.ok);
  // Room for 5 MiB more: not 6 MiB beside the cached 4, but 6 in its place.
  size_t limit = depot_limit_held() + 5 * MiB;
  SetConfig(DEPOT_CONF_memory_limit_margin, "0");
  SetConfig(DEPOT_CONF_memory_limit_soft, "100");
  SetConfig(DEPOT_CONF_memory_limit, std::to_string(limit).c_str());
  ASSERT_GE(depot_limit_soft_bytes() + 100, limit);

  Block b = Alloc(6 * MiB);
  SetConfig(DEPOT_CONF_memory_limit, "0");
  ASSERT_NE(b.p, nullptr) << "refused while the stuck range held its room";
  EXPECT_EQ(Stats().cached, 0u);
  EXPECT_FALSE(Mapped(a, 4 * MiB));
  depot_huge_check();
  ASSERT_EQ(depot_huge_free(b.p), 1);
}

TEST_F(Huge, ResizesABlockOfTwoMappingsInPlace) {
  char *a = TwoMappingBlock();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(MappingStartsAt(a + 2 * MiB)) << "the block is one mapping";
  void *b = depot_huge_resize(a, 6 * MiB);
  ASSERT_EQ(b, a) << "not grown in place (NULL: the caller would copy)";
  EXPECT_TRUE(MappingStartsAt(a + 4 * MiB)) << "not the tail mapped in place";
  for (size_t i = 0; i < 4 * MiB; i += 4096) ASSERT_EQ(a[i], 0x5A);
  memset(a + 4 * MiB, 0x11, 2 * MiB); /* the tail is writable */
  // Shrinking across the mappings unmaps the tail, in place.
  ASSERT_EQ(depot_huge_resize(a, 3 * MiB), a);
  EXPECT_FALSE(Mapped(a + 3 * MiB, 3 * MiB));
  for (size_t i = 0; i < 3 * MiB; i += 4096) ASSERT_EQ(a[i], 0x5A);
  EXPECT_EQ(Stats().bytes, 3 * MiB);
  ASSERT_EQ(depot_huge_free(a), 1);
}

// The cache holds at most 512 MiB (CACHE_BYTES, huge.c).  A freed range
// longer than that, alone or once joined with its cached neighbours, is
// unmapped by itself: the cache keeps what it holds (it used to push every
// cached range out first).
constexpr size_t kCacheBytes = 512 * MiB;

// A 4 MiB range cached beside a live spacer (freed after it).
struct CachedBeside {
  Block k = Alloc(4 * MiB), spacer = Alloc(4 * MiB);
  bool ok = k.p && spacer.p && depot_huge_free(k.p) == 1;
  ~CachedBeside() {
    if (spacer.p) depot_huge_free(spacer.p);
  }
};

TEST_F(Huge, ARangeLongerThanTheCacheLeavesTheCacheAsItWas) {
  // Mapped first: a request would grow the cached range instead.
  Block big = Alloc(kCacheBytes + 8 * MiB); /* untouched: address space */
  ASSERT_NE(big.p, nullptr);
  CachedBeside c;
  ASSERT_TRUE(c.ok);
  ASSERT_EQ(Stats().cached, 1u);
  ASSERT_EQ(depot_huge_free(big.p), 1);
  EXPECT_EQ(Stats().cached, 1u) << "the cached range was pushed out";
  EXPECT_EQ(Stats().cached_bytes, 4 * MiB);
  EXPECT_TRUE(Mapped(c.k.p, 4 * MiB));
  EXPECT_FALSE(Mapped(big.p, big.usable)) << "cached past the cache's size";
  depot_huge_check();
}

TEST_F(Huge, ARangeLongerThanTheCacheOnceJoinedIsUnmappedAlone) {
  // Two live blocks side by side, a of 300 MiB and b of 300 MiB: a 512 MiB
  // block with 88 MiB free after it (a 600 MiB one shrunk in place), freed
  // (cached whole), split into a and b (212 MiB), b grown in place.
  Block z = Alloc(600 * MiB);
  ASSERT_NE(z.p, nullptr);
  ASSERT_EQ(depot_huge_resize(z.p, kCacheBytes), z.p);
  ASSERT_EQ(depot_huge_free(z.p), 1);
  ASSERT_EQ(Stats().cached_bytes, kCacheBytes);
  Block a = Alloc(300 * MiB), b = Alloc(212 * MiB);
  ASSERT_EQ(a.p, z.p);
  ASSERT_EQ(b.p, z.p + 300 * MiB);
  ASSERT_EQ(depot_huge_resize(b.p, 300 * MiB), b.p) << "not grown in place";
  ASSERT_EQ(Stats().cached, 0u);

  CachedBeside c;
  ASSERT_TRUE(c.ok);
  ASSERT_EQ(depot_huge_free(b.p), 1);
  ASSERT_EQ(Stats().cached_bytes, 304 * MiB);
  // a touches the cached b: 600 MiB joined.
  ASSERT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(Stats().cached, 2u) << "a cached range was pushed out";
  EXPECT_EQ(Stats().cached_bytes, 304 * MiB);
  EXPECT_FALSE(Mapped(a.p, 300 * MiB)) << "a was cached";
  EXPECT_TRUE(Mapped(b.p, 300 * MiB));
  EXPECT_TRUE(Mapped(c.k.p, 4 * MiB));
  depot_huge_check();
}

// Frees a, waits past a purge delay of delay_ms, then frees b (any huge call
// checks the cache for ranges that are due).
void FreeWaitFree(unsigned delay_ms, Block a, Block b) {
  SetPurgeDelay(delay_ms);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(Stats().cached, 1u);
  EXPECT_TRUE(Mapped(a.p, a.usable));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(depot_huge_free(b.p), 1);
}

TEST_F(Huge, CachedRangesAreUnmappedAfterThePurgeDelay) {
  Block a = Alloc(4 * MiB), spacer = Alloc(4 * MiB), b = Alloc(4 * MiB);
  ASSERT_TRUE(a.p && spacer.p && b.p);
  FreeWaitFree(50, a, b);
  EXPECT_FALSE(Mapped(a.p, a.usable)) << "still mapped after the delay";
  EXPECT_EQ(Stats().cached, 1u) << "only b should be cached";
  EXPECT_EQ(Stats().cached_bytes, 4 * MiB);
  EXPECT_TRUE(Mapped(b.p, b.usable)) << "b was unmapped before its delay";
  EXPECT_EQ(depot_huge_free(spacer.p), 1);
}

TEST_F(Huge, CachedRangesStayWithALongPurgeDelay) {
  // The control for the test above: the same calls, a long delay.
  Block a = Alloc(4 * MiB), spacer = Alloc(4 * MiB), b = Alloc(4 * MiB);
  ASSERT_TRUE(a.p && spacer.p && b.p);
  FreeWaitFree(kLongDelayMs, a, b);
  EXPECT_TRUE(Mapped(a.p, a.usable)) << "unmapped before the delay";
  EXPECT_EQ(Stats().cached, 2u);
  EXPECT_EQ(Stats().cached_bytes, 8 * MiB);
  EXPECT_EQ(depot_huge_free(spacer.p), 1);
}

TEST_F(Huge, NoDelayUnmapsAtOnce) {
  SetPurgeDelay(0);
  Block a = Alloc(4 * MiB);
  ASSERT_NE(a.p, nullptr);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  EXPECT_EQ(Stats().cached, 0u);
  EXPECT_FALSE(Mapped(a.p, a.usable));
}

TEST_F(Huge, TrimUnmapsTheWholeCache) {
  Block a = Alloc(4 * MiB), spacer = Alloc(4 * MiB), b = Alloc(8 * MiB);
  ASSERT_TRUE(a.p && spacer.p && b.p);
  ASSERT_EQ(depot_huge_free(a.p), 1);
  ASSERT_EQ(depot_huge_free(b.p), 1);
  ASSERT_EQ(Stats().cached, 2u);
  depot_trim();
  EXPECT_EQ(Stats().cached, 0u);
  EXPECT_EQ(Stats().cached_bytes, 0u);
  EXPECT_FALSE(Mapped(a.p, a.usable));
  EXPECT_FALSE(Mapped(b.p, b.usable));
  EXPECT_TRUE(Mapped(spacer.p, spacer.usable)) << "trim unmapped a live block";
  EXPECT_EQ(Stats().blocks, 1u);
  EXPECT_EQ(depot_huge_free(spacer.p), 1);
}

}  // namespace

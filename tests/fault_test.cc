// OS failures injected through the OS layer's seam: allocations return NULL
// with ENOMEM, live blocks stay intact, and allocation recovers afterwards.
// The heap region's growth: a refused segment fails one allocation and the
// region grows again after it; a foreign mapping at the region's front
// sends new segments to the arenas' own reservations until it goes.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/os.h"
#include "tests/probe.h"

namespace {

constexpr unsigned RAW = 0;

TEST(Fault, OsRefusalGivesNullAndLosesNothing) {
  // Live blocks of every kind, with contents.
  std::vector<std::pair<unsigned char *, size_t>> live;
  for (size_t s : {size_t(24), size_t(700), size_t(9000), size_t(300000),
                   size_t(1) << 20, size_t(6) << 20}) {
    for (int i = 0; i < 8; i++) {
      auto *p = static_cast<unsigned char *>(depot_alloc_call(s, RAW));
      ASSERT_NE(p, nullptr);
      memset(p, int(s + i) & 0xFF, s);
      live.push_back({p, s});
    }
  }
  depot_os_fail_next(1000000);
  // Keep asking for memory that needs fresh spans until the arena is dry.
  std::vector<void *> got;
  int failures = 0;
  for (int i = 0; i < 200 && failures < 5; i++) {
    errno = 0;
    void *p = depot_alloc_call(size_t(1) << 20, RAW);
    if (p) {
      got.push_back(p);
    } else {
      EXPECT_EQ(errno, ENOMEM);
      failures++;
    }
  }
  EXPECT_GT(failures, 0) << "the injected failures never reached an allocation";
  errno = 0;
  EXPECT_EQ(depot_alloc_call(size_t(8) << 20, RAW), nullptr);  // huge: mmap
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(depot_aligned_alloc(size_t(8) << 20, 100, RAW), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // Small classes run dry too once their spans are used up.
  int small_failures = 0;
  for (int i = 0; i < 100000 && small_failures == 0; i++) {
    void *p = depot_alloc_call(32768, RAW);
    if (p) got.push_back(p);
    else small_failures++;
  }
  EXPECT_EQ(small_failures, 1);
  depot_os_fail_next(0);

  for (auto &b : live) {
    for (size_t i = 0; i < b.second; i++)
      ASSERT_EQ(b.first[i], (unsigned char)((b.second + (&b - &live[0]) % 8) & 0xFF))
          << "block of " << b.second << " bytes corrupted";
  }
  // After the OS relents, every kind of allocation works again.
  for (size_t s : {size_t(32768), size_t(1) << 20, size_t(8) << 20}) {
    void *p = depot_alloc_call(s, RAW);
    ASSERT_NE(p, nullptr) << s;
    memset(p, 1, s);
    depot_free_call(p, RAW);
  }
  for (void *p : got) depot_free_call(p, RAW);
  for (auto &b : live) depot_free_call(b.first, RAW);
}

constexpr size_t kMiB = size_t(1) << 20;
constexpr size_t kSegment = 4 * kMiB;

size_t RegionUsed() {
  size_t base, size, used;
  probe_region_bounds(&base, &size, &used);
  return used;
}

TEST(Fault, RegionGrowthRefusedFailsOneAllocationThenGrowsAgain) {
  depot_trim();  // no cached huge mapping to give back and retry with
  std::vector<void *> got;
  // Use up every free span that could hold a 1 MiB block (a free span
  // handed out again passes the fault seam too): allocate until the region
  // grows, then fill the new segment, which holds three such blocks.
  size_t used0 = RegionUsed();
  for (int i = 0; i < 1000 && RegionUsed() == used0; i++) {
    void *q = depot_alloc_call(kMiB, RAW);
    ASSERT_NE(q, nullptr);
    got.push_back(q);
  }
  ASSERT_GT(RegionUsed(), used0) << "the region never grew";
  for (int i = 0; i < 2; i++) got.push_back(depot_alloc_call(kMiB, RAW));
  size_t used_before = RegionUsed();
  unsigned long injected = depot_os_failures_injected();
  depot_os_fail_next(1);  // the next OS call: the next segment's mapping
  errno = 0;
  void *p = depot_alloc_call(kMiB, RAW);
  ASSERT_EQ(p, nullptr) << "the allocation did not need a new segment";
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(depot_os_failures_injected(), injected + 1);
  EXPECT_EQ(RegionUsed(), used_before) << "a refused segment was counted";
  // The next request maps the segment that was refused.
  p = depot_alloc_call(kMiB, RAW);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(probe_region_contains(p));
  EXPECT_EQ(RegionUsed(), used_before + kSegment);
  got.push_back(p);
  for (void *q : got) depot_free_call(q, RAW);
  depot_check_heap();
}

TEST(Fault, ForeignMappingAtTheRegionsFrontSendsSegmentsElsewhere) {
  size_t base, size, used;
  probe_region_bounds(&base, &size, &used);
  ASSERT_GT(size, used + 2 * kSegment) << "no region, or no room left in it";
  void *front = reinterpret_cast<void *>(base + used);
  void *m = mmap(front, kSegment, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(m, front) << "could not map at the region's front";
  std::vector<std::pair<unsigned char *, size_t>> got;
  int outside = 0;
  for (int i = 0; i < 40; i++) {
    auto *p = static_cast<unsigned char *>(depot_alloc_call(kMiB, RAW));
    ASSERT_NE(p, nullptr) << "block " << i;
    memset(p, i, kMiB);
    outside += !probe_region_contains(p);
    got.push_back({p, size_t(i)});
  }
  EXPECT_GT(outside, 0) << "every block came from the region";
  EXPECT_EQ(RegionUsed(), used) << "the region grew over another mapping";
  ASSERT_EQ(munmap(front, kSegment), 0);
  for (int i = 0; i < 40; i++) {  // the region grows again once it is free
    void *p = depot_alloc_call(kMiB, RAW);
    ASSERT_NE(p, nullptr);
    got.push_back({static_cast<unsigned char *>(p), size_t(i)});
    memset(p, i, kMiB);
  }
  EXPECT_GT(RegionUsed(), used);
  depot_check_heap();
  for (auto &b : got) {
    EXPECT_EQ(b.first[kMiB - 1], (unsigned char)b.second);
    depot_free_call(b.first, RAW);  // in the region or not: the slow path knows
  }
  depot_check_heap();
}

// Memory that is reused (a free span, a cached huge range, a recycled thread
// cache) passes the seam too: a failure there is a NULL with ENOMEM that
// changes nothing, and the next try gets the same memory.
TEST(Fault, ReusedMemoryCanFailToo) {
  // A free span of the arena: the failed reuse keeps it for the next try.
  void *p = depot_alloc_call(300000, RAW);
  ASSERT_NE(p, nullptr);
  depot_free_call(p, RAW);
  unsigned long before = depot_os_failures_injected();
  depot_os_fail_next(1);
  errno = 0;
  EXPECT_EQ(depot_alloc_call(300000, RAW), nullptr) << "reuse passed the seam";
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(depot_os_failures_injected(), before + 1);
  depot_os_fail_next(0);
  void *q = depot_alloc_call(300000, RAW);
  EXPECT_EQ(q, p) << "the memory kept for reuse is still there";
  depot_free_call(q, RAW);
  // A cached huge range: a refusal makes the allocator give its cache back
  // to the OS and map afresh (alloc.c), so both the reuse and the fresh
  // mapping must fail for the request to fail.
  p = depot_alloc_call(size_t(8) << 20, RAW);
  ASSERT_NE(p, nullptr);
  depot_free_call(p, RAW);
  before = depot_os_failures_injected();
  depot_os_fail_next(2);
  errno = 0;
  EXPECT_EQ(depot_alloc_call(size_t(8) << 20, RAW), nullptr)
      << "reuse passed the seam";
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(depot_os_failures_injected(), before + 2);
  depot_os_fail_next(0);
  q = depot_alloc_call(size_t(8) << 20, RAW);
  EXPECT_NE(q, nullptr) << "a huge block after the refusals";
  depot_free_call(q, RAW);
  depot_check_heap();
  // A thread whose cache cannot be created still allocates (from the pools)
  // and gets a cache later.
  depot_os_fail_next(1);
  std::thread t([] {
    void *p = depot_alloc_call(64, RAW);
    EXPECT_NE(p, nullptr);
    depot_free_call(p, RAW);
    p = depot_alloc_call(64, RAW);
    EXPECT_NE(p, nullptr);
    depot_free_call(p, RAW);
  });
  t.join();
  depot_os_fail_next(0);
  depot_check_heap();
}

}  // namespace

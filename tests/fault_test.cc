// OS failures injected through the OS layer's seam: allocations return NULL
// with ENOMEM, live blocks stay intact, and allocation recovers afterwards.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/os.h"

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

// depot_check_heap holds every lock of the core at once, more than TSan's
// deadlock detector can track (64): not under TSan.
void CheckHeap() {
#ifndef __SANITIZE_THREAD__
  depot_check_heap();
#endif
}

// Memory that is reused (a free span, a cached huge range, a recycled thread
// cache) passes the seam too: a failure there is a NULL with ENOMEM that
// changes nothing, and the next try gets the same memory.
TEST(Fault, ReusedMemoryCanFailToo) {
  for (size_t s : {size_t(300000), size_t(8) << 20}) {
    void *p = depot_alloc_call(s, RAW);
    ASSERT_NE(p, nullptr);
    depot_free_call(p, RAW);  // a free span of the arena, or a cached range
    unsigned long before = depot_os_failures_injected();
    depot_os_fail_next(1);
    errno = 0;
    EXPECT_EQ(depot_alloc_call(s, RAW), nullptr) << s << " bytes: reuse passed the seam";
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(depot_os_failures_injected(), before + 1);
    depot_os_fail_next(0);
    void *q = depot_alloc_call(s, RAW);
    EXPECT_EQ(q, p) << "the memory kept for reuse is still there";
    depot_free_call(q, RAW);
  }
  CheckHeap();
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
  CheckHeap();
}

}  // namespace

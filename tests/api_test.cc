// Conformance of the PyMem-style API: one test per clause of the contract in
// <depot/depot.h>, for every domain, plus pluggable allocators.
#include <depot/depot.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace {

struct Domain {
  const char *name;
  DepotMemAllocatorDomain id;
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
};

const Domain kDomains[] = {
    {"raw", DEPOT_DOMAIN_RAW, DepotMem_RawMalloc, DepotMem_RawCalloc,
     DepotMem_RawRealloc, DepotMem_RawFree},
    {"mem", DEPOT_DOMAIN_MEM, DepotMem_Malloc, DepotMem_Calloc,
     DepotMem_Realloc, DepotMem_Free},
    {"obj", DEPOT_DOMAIN_OBJ, DepotObject_Malloc, DepotObject_Calloc,
     DepotObject_Realloc, DepotObject_Free},
};

class Api : public ::testing::TestWithParam<Domain> {};

TEST_P(Api, ZeroBytesGivesDistinctNonNullPointers) {
  const Domain &d = GetParam();
  std::set<void *> seen;
  for (int i = 0; i < 50; i++) {
    void *a = d.malloc(0), *b = d.calloc(0, 8), *c = d.calloc(8, 0);
    ASSERT_TRUE(a && b && c);
    EXPECT_TRUE(seen.insert(a).second);
    EXPECT_TRUE(seen.insert(b).second);
    EXPECT_TRUE(seen.insert(c).second);
  }
  for (void *p : seen) d.free(p);
}

TEST_P(Api, DistinctLiveBlocksDoNotOverlapAndAreAligned) {
  const Domain &d = GetParam();
  std::vector<std::pair<char *, size_t>> v;
  for (size_t i = 0; i < 2000; i++) {
    size_t n = 1 + (i * 37) % 3000;
    char *p = static_cast<char *>(d.malloc(n));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(uintptr_t(p) % 16, 0u);
    memset(p, int(i & 0xFF), n);
    v.push_back({p, n});
  }
  for (size_t i = 0; i < v.size(); i++) {
    for (size_t k = 0; k < v[i].second; k++)
      ASSERT_EQ(v[i].first[k], char(i & 0xFF)) << "blocks overlap";
    d.free(v[i].first);
  }
}

TEST_P(Api, ReallocNullIsMallocAndReallocZeroResizes) {
  const Domain &d = GetParam();
  char *p = static_cast<char *>(d.realloc(nullptr, 40));
  ASSERT_NE(p, nullptr);
  memset(p, 7, 40);
  char *q = static_cast<char *>(d.realloc(p, 0));
  ASSERT_NE(q, nullptr) << "realloc(p, 0) must resize, not free";
  q[0] = 1;  // still a block we own
  d.free(q);
}

TEST_P(Api, ReallocKeepsContentsWhenGrowingAndShrinking) {
  const Domain &d = GetParam();
  unsigned char *p = static_cast<unsigned char *>(d.malloc(10));
  for (int i = 0; i < 10; i++) p[i] = (unsigned char)i;
  for (size_t n : {size_t(100), size_t(5000), size_t(100000), size_t(5) << 20,
                   size_t(64), size_t(10)}) {
    p = static_cast<unsigned char *>(d.realloc(p, n));
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 10; i++) ASSERT_EQ(p[i], i) << "after realloc to " << n;
  }
  d.free(p);
}

TEST_P(Api, FailedReallocKeepsTheBlock) {
  const Domain &d = GetParam();
  char *p = static_cast<char *>(d.malloc(100));
  memset(p, 'x', 100);
  errno = 0;
  EXPECT_EQ(d.realloc(p, size_t(PTRDIFF_MAX) + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(d.realloc(p, size_t(PTRDIFF_MAX) - 4096), nullptr);  // OS refuses
  EXPECT_EQ(errno, ENOMEM);
  for (int i = 0; i < 100; i++) ASSERT_EQ(p[i], 'x');
  d.free(p);
}

TEST_P(Api, OversizedRequestsAndOverflowingCallocReturnNull) {
  const Domain &d = GetParam();
  for (size_t n : {size_t(PTRDIFF_MAX) + 1, SIZE_MAX}) {
    errno = 0;
    EXPECT_EQ(d.malloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  errno = 0;
  EXPECT_EQ(d.calloc(SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(d.calloc(size_t(1) << 33, size_t(1) << 31), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST_P(Api, CallocZeroesEveryByte) {
  const Domain &d = GetParam();
  for (size_t n : {size_t(1), size_t(100), size_t(4096), size_t(70000)}) {
    void *dirty = d.malloc(n);
    memset(dirty, 0xEE, n);
    d.free(dirty);
    unsigned char *z = static_cast<unsigned char *>(d.calloc(n, 1));
    for (size_t i = 0; i < n; i++) ASSERT_EQ(z[i], 0);
    d.free(z);
  }
}

TEST_P(Api, FreeNullDoesNothing) {
  GetParam().free(nullptr);
  SUCCEED();
}

TEST_P(Api, EveryDomainIsThreadSafe) {
  const Domain &d = GetParam();
  std::vector<std::thread> ts;
  std::vector<int> bad(8, 0);
  for (int t = 0; t < 8; t++)
    ts.emplace_back([&, t] {
      std::vector<unsigned char *> mine;
      for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t(i) * 131 + size_t(t)) % 700;
        auto *p = static_cast<unsigned char *>(i % 3 ? d.malloc(n) : d.calloc(n, 1));
        p[0] = p[n - 1] = (unsigned char)t;
        mine.push_back(p);
        if (mine.size() > 64) {
          unsigned char *q = mine.front();
          if (q[0] != (unsigned char)t) bad[size_t(t)]++;
          mine.erase(mine.begin());
          q = static_cast<unsigned char *>(d.realloc(q, 33));
          d.free(q);
        }
      }
      for (unsigned char *q : mine) d.free(q);
    });
  for (auto &t : ts) t.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

INSTANTIATE_TEST_SUITE_P(Domains, Api, ::testing::ValuesIn(kDomains),
                         [](const ::testing::TestParamInfo<Domain> &i) {
                           return std::string(i.param.name);
                         });

struct Big {
  char bytes[1000];
};

TEST(TypedMacros, NewResizeDel) {
  Big *b = DepotMem_New(Big, 3);
  ASSERT_NE(b, nullptr);
  b[2].bytes[999] = 'z';
  DepotMem_Resize(b, Big, 10);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b[2].bytes[999], 'z');
  DepotMem_Del(b);
}

TEST(TypedMacros, OverflowReturnsNullWithoutCallingTheAllocator) {
  static int calls;
  DepotMemAllocatorEx prev, counting;
  ASSERT_EQ(DepotMem_GetAllocator(DEPOT_DOMAIN_MEM, &prev), 0);
  counting = prev;
  counting.malloc = [](void *, size_t) -> void * {
    calls++;
    return nullptr;
  };
  counting.realloc = [](void *, void *, size_t) -> void * {
    calls++;
    return nullptr;
  };
  ASSERT_EQ(DepotMem_SetAllocator(DEPOT_DOMAIN_MEM, &counting), 0);
  calls = 0;
  EXPECT_EQ(DepotMem_New(Big, SIZE_MAX / 100), nullptr);
  EXPECT_EQ(DepotMem_New(Big, -1), nullptr);  // a negative count
  long *p = reinterpret_cast<long *>(&calls);  // any non-NULL pointer
  DepotMem_Resize(p, long, SIZE_MAX / 4);
  EXPECT_EQ(p, nullptr) << "Resize assigns NULL on overflow";
  EXPECT_EQ(calls, 0) << "the allocator must not be called on overflow";
  ASSERT_EQ(DepotMem_SetAllocator(DEPOT_DOMAIN_MEM, &prev), 0);
}

TEST(TypedMacros, ResizeFailureKeepsTheOldBlockThroughACopy) {
  char *p = DepotMem_New(char, 16);
  memcpy(p, "keep me", 8);
  char *tmp = p;
  DepotMem_Resize(tmp, char, size_t(PTRDIFF_MAX) - 100);
  EXPECT_EQ(tmp, nullptr);
  EXPECT_STREQ(p, "keep me");
  DepotMem_Del(p);
}

// A tracing hook over each domain: counts calls and forwards to the
// allocator it wraps.
struct Counter {
  DepotMemAllocatorEx prev;
  int mallocs = 0, callocs = 0, reallocs = 0, frees = 0;
};

TEST(Allocators, CountingHookWrapsThePreviousAllocator) {
  for (const Domain &d : kDomains) {
    Counter c;
    ASSERT_EQ(DepotMem_GetAllocator(d.id, &c.prev), 0);
    DepotMemAllocatorEx hook = {
        &c,
        [](void *ctx, size_t n) {
          auto *c = static_cast<Counter *>(ctx);
          c->mallocs++;
          return c->prev.malloc(c->prev.ctx, n);
        },
        [](void *ctx, size_t a, size_t b) {
          auto *c = static_cast<Counter *>(ctx);
          c->callocs++;
          return c->prev.calloc(c->prev.ctx, a, b);
        },
        [](void *ctx, void *p, size_t n) {
          auto *c = static_cast<Counter *>(ctx);
          c->reallocs++;
          return c->prev.realloc(c->prev.ctx, p, n);
        },
        [](void *ctx, void *p) {
          auto *c = static_cast<Counter *>(ctx);
          c->frees++;
          c->prev.free(c->prev.ctx, p);
        }};
    ASSERT_EQ(DepotMem_SetAllocator(d.id, &hook), 0);
    DepotMemAllocatorEx now;
    DepotMem_GetAllocator(d.id, &now);
    EXPECT_EQ(now.ctx, &c);
    std::vector<void *> v;
    for (int i = 0; i < 10; i++) v.push_back(d.malloc(32));
    for (int i = 0; i < 5; i++) v.push_back(d.calloc(4, 8));
    for (int i = 0; i < 3; i++) v[size_t(i)] = d.realloc(v[size_t(i)], 500);
    for (void *p : v) d.free(p);
    d.free(nullptr);
    ASSERT_EQ(DepotMem_SetAllocator(d.id, &c.prev), 0);
    EXPECT_EQ(c.mallocs, 10) << d.name;
    EXPECT_EQ(c.callocs, 5) << d.name;
    EXPECT_EQ(c.reallocs, 3) << d.name;
    EXPECT_EQ(c.frees, 16) << d.name;
    void *after = d.malloc(8);  // unhooked again: no more counting
    d.free(after);
    EXPECT_EQ(c.mallocs, 10);
  }
}

TEST(Allocators, BadArgumentsAreRejected) {
  DepotMemAllocatorEx a;
  errno = 0;
  EXPECT_EQ(DepotMem_GetAllocator(DepotMemAllocatorDomain(3), &a), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(DepotMem_GetAllocator(DEPOT_DOMAIN_RAW, nullptr), -1);
  ASSERT_EQ(DepotMem_GetAllocator(DEPOT_DOMAIN_RAW, &a), 0);
  a.free = nullptr;
  errno = 0;
  EXPECT_EQ(DepotMem_SetAllocator(DEPOT_DOMAIN_RAW, &a), -1);
  EXPECT_EQ(errno, EINVAL);
  DepotMemAllocatorEx now;
  ASSERT_EQ(DepotMem_GetAllocator(DEPOT_DOMAIN_RAW, &now), 0);
  EXPECT_NE(now.free, nullptr) << "a rejected allocator must not be installed";
}

// The structure must be usable where CPython's PyMemAllocatorEx is.
struct PyMemAllocatorExShape {
  void *ctx;
  void *(*malloc)(void *, size_t);
  void *(*calloc)(void *, size_t, size_t);
  void *(*realloc)(void *, void *, size_t);
  void (*free)(void *, void *);
};
static_assert(sizeof(DepotMemAllocatorEx) == sizeof(PyMemAllocatorExShape), "");
static_assert(offsetof(DepotMemAllocatorEx, free) ==
                  offsetof(PyMemAllocatorExShape, free), "");

// DepotMem_DomainOf: a hook over another allocator (CPython's, after
// depot.install()) asks it for every free; it must answer for every kind of
// block and never fault, whatever the address.
TEST(DomainOf, TellsDepotsBlocksFromOthersWithoutFaulting) {
  void *r = DepotMem_RawMalloc(24), *m = DepotMem_Malloc(24),
       *o = DepotObject_Malloc(24);
  void *big = DepotMem_Malloc(100000), *huge = DepotObject_Malloc(8 << 20);
  EXPECT_EQ(DepotMem_DomainOf(r), DEPOT_DOMAIN_RAW);
  EXPECT_EQ(DepotMem_DomainOf(m), DEPOT_DOMAIN_MEM);
  EXPECT_EQ(DepotMem_DomainOf(o), DEPOT_DOMAIN_OBJ);
  EXPECT_EQ(DepotMem_DomainOf(big), DEPOT_DOMAIN_MEM);
  EXPECT_EQ(DepotMem_DomainOf(huge), DEPOT_DOMAIN_OBJ);
  EXPECT_EQ(DepotMem_DomainOf(nullptr), -1);
  // A heap's blocks are Depot's but no domain's.
  DepotHeap *h = DepotHeap_New(nullptr);
  ASSERT_NE(h, nullptr);
  void *hs = DepotHeap_Malloc(h, 24), *hl = DepotHeap_Malloc(h, 100000),
       *hh = DepotHeap_Malloc(h, 8 << 20);
  EXPECT_EQ(DepotMem_DomainOf(hs), -1) << "a heap's small block";
  EXPECT_EQ(DepotMem_DomainOf(hl), -1) << "a heap's large block";
  EXPECT_EQ(DepotMem_DomainOf(hh), -1) << "a heap's huge block";
  DepotHeap_Destroy(h);
  EXPECT_EQ(DepotMem_DomainOf(static_cast<char *>(big) + 16), -1)
      << "inside a large block";
  static char global[64];
  int local = 0;
  EXPECT_EQ(DepotMem_DomainOf(global), -1);
  EXPECT_EQ(DepotMem_DomainOf(&local), -1);
  EXPECT_EQ(DepotMem_DomainOf(reinterpret_cast<void *>(uintptr_t{16})), -1);
  EXPECT_EQ(DepotMem_DomainOf(reinterpret_cast<void *>(~uintptr_t{15})), -1);
  DepotMem_Free(big);
  DepotObject_Free(huge);
  EXPECT_EQ(DepotMem_DomainOf(huge), -1) << "a freed huge block";
  // A block freed and reused by the same thread's cache is live again;
  // one given back with its span is not: trim returns the spans.
  DepotMem_RawFree(r);
  DepotMem_Free(m);
  DepotObject_Free(o);
  DepotMem_Trim();
  EXPECT_EQ(DepotMem_DomainOf(m), -1) << "its span went back with trim";
}

class ApiDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ApiDeath, WrongDomainIsCaughtWithoutDebugHooks) {
  void *m = DepotMem_Malloc(24);
  EXPECT_DEATH(DepotObject_Free(m), "domain 'mem' used with domain 'obj'");
  EXPECT_DEATH(DepotMem_RawFree(m), "domain 'mem' used with domain 'raw'");
  void *o = DepotObject_Malloc(200000);
  EXPECT_DEATH(DepotMem_Free(o), "domain 'obj' used with domain 'mem'");
  EXPECT_DEATH(DepotMem_Realloc(o, 10), "realloc.*domain 'obj' used with domain 'mem'");
  DepotMem_Free(m);
  DepotObject_Free(o);
}

TEST_F(ApiDeath, ForeignPointerIsCaughtWithoutDebugHooks) {
  static char not_ours[64];
  EXPECT_DEATH(DepotMem_Free(not_ours + 16), "not allocated by Depot");
  void *libc = malloc(32);
  EXPECT_DEATH(DepotObject_Free(libc), "not allocated by Depot");
  free(libc);
}

}  // namespace

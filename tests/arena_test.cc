// The page arena on its own: spans, alignment, coalescing, purging, and
// the memory limit where purged pages join a freed span.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/limit.h"
#include "tests/probe.h"

namespace {

struct Stats {
  size_t segments, free_pages, dirty_pages, free_spans;
};
Stats Get(probe_arena_t *a) {
  Stats s;
  probe_arena_stats(a, &s.segments, &s.free_pages, &s.dirty_pages, &s.free_spans);
  return s;
}

TEST(Arena, SpansAreDisjointAlignedAndCoalesceBack) {
  probe_arena_t *a = probe_arena_new();
  ASSERT_NE(a, nullptr);
  const size_t page = probe_page_size(), max = probe_span_max_pages();
  std::mt19937 rng(7);
  struct Span { char *p; size_t pages; };
  std::vector<Span> live;
  for (int i = 0; i < 400; i++) {
    size_t pages = 1 + rng() % (i % 10 == 0 ? max : 40);
    size_t align = size_t(1) << (rng() % 6);
    char *p = static_cast<char *>(probe_arena_alloc(a, pages, align));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(uintptr_t(p) % (align * page), 0u);
    memset(p, i & 0xFF, pages * page);  // writable, and detects overlap below
    live.push_back({p, pages});
    if (rng() % 3 == 0) {  // free a random one
      size_t k = rng() % live.size();
      probe_arena_free(a, live[k].p);
      live.erase(live.begin() + long(k));
    }
  }
  std::sort(live.begin(), live.end(), [](const Span &x, const Span &y) { return x.p < y.p; });
  for (size_t i = 1; i < live.size(); i++)
    EXPECT_LE(live[i - 1].p + live[i - 1].pages * page, live[i].p) << "overlap";
  std::shuffle(live.begin(), live.end(), rng);
  for (const Span &s : live) probe_arena_free(a, s.p);
  Stats st = Get(a);
  EXPECT_GT(st.segments, 1u);
  EXPECT_EQ(st.free_pages, st.segments * max);
  EXPECT_EQ(st.free_spans, st.segments) << "free neighbours did not coalesce";
}

// The descriptors of 128 KiB spans cut one after another (a small program's
// first spans, one per size class) are neighbours: twenty of them lie on one
// or two 4 KiB pages of the segment's header, not one every 1 KiB (five
// pages).
TEST(Arena, DescriptorsOfSpansCutInARowAreNeighbours) {
  probe_arena_t *a = probe_arena_new();
  ASSERT_NE(a, nullptr);
  const size_t page = probe_page_size(), pages = (128 << 10) / page;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < 20; i++) {
    char *p = static_cast<char *>(probe_arena_alloc(a, pages, 1));
    ASSERT_NE(p, nullptr);
    uintptr_t d = uintptr_t(probe_span_descriptor(p));
    ASSERT_NE(d, 0u);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(hi - lo, 20u * 64u) << "descriptors are " << (hi - lo) << " bytes apart";
  EXPECT_LE(hi / 4096 - lo / 4096, 1u);
}

// Metadata comes from a bump allocator; an object of a page or more starts
// on a page, and the padding it skips is where the next smaller objects go
// (a small table made after an owner heap shares a page that is resident
// already instead of touching one more).  Fresh metadata is zero.
TEST(Meta, SmallObjectsFillThePaddingBeforeAPageAlignedOne) {
  constexpr size_t kBig = 5000, kBigRounded = 5056, kSmall = 64;
  bool checked = false;
  // Up to three rounds: a round whose objects straddle the end of a 1 MiB
  // chunk of metadata proves nothing and is run again.
  for (int round = 0; round < 3 && !checked; round++) {
    char *big = static_cast<char *>(probe_meta_alloc(kBig));
    ASSERT_NE(big, nullptr);
    ASSERT_EQ(uintptr_t(big) % 4096, 0u);
    // Use up any padding left before big: small objects land before it
    // until they come out right after it.
    char *last;
    int n = 0;
    do {
      last = static_cast<char *>(probe_meta_alloc(kSmall));
      ASSERT_NE(last, nullptr);
    } while (last < big && ++n < 1000);
    if (last != big + kBigRounded) continue; /* a new chunk */
    // last ends 5120 bytes into big's pages: the next page-aligned object
    // skips 3072 bytes, and the next small one goes there.
    char *big2 = static_cast<char *>(probe_meta_alloc(kBig));
    ASSERT_NE(big2, nullptr);
    if (big2 != big + 2 * 4096) continue; /* a new chunk */
    char *filler = static_cast<char *>(probe_meta_alloc(kSmall));
    ASSERT_NE(filler, nullptr);
    EXPECT_EQ(filler, last + kSmall)
        << "the padding before a page-aligned object was not used";
    for (size_t i = 0; i < kSmall; i++) ASSERT_EQ(filler[i], 0);
    checked = true;
  }
  EXPECT_TRUE(checked) << "three rounds crossed chunk ends";
}

TEST(Arena, PurgeReturnsFreePagesAndTheyReadBackAsZero) {
  probe_arena_t *a = probe_arena_new();
  const size_t page = probe_page_size();
  char *p = static_cast<char *>(probe_arena_alloc(a, 64, 1));
  memset(p, 0x77, 64 * page);
  probe_arena_free(a, p);
  EXPECT_GE(Get(a).dirty_pages, 64u);
  probe_arena_purge(a);
  EXPECT_EQ(Get(a).dirty_pages, 0u);
  char *q = static_cast<char *>(probe_arena_alloc(a, 64, 1));
  ASSERT_EQ(q, p) << "first fit should reuse the purged pages";
  for (size_t i = 0; i < 64 * page; i += 512) ASSERT_EQ(q[i], 0);
  probe_arena_free(a, q);
}

// A setting changed as a running program would change it.
void SetConfig(depot_conf_key_t id, const char *value) {
  char err[160];
  ASSERT_EQ(depot_config_set(id, value, err, sizeof err), 0) << err;
}

// The memory limit at held + room bytes, soft limit = hard limit; lifted
// when it goes out of scope.
struct LimitAt {
  explicit LimitAt(size_t room) {
    SetConfig(DEPOT_CONF_memory_limit_margin, "0");
    SetConfig(DEPOT_CONF_memory_limit_soft, "100");
    SetConfig(DEPOT_CONF_memory_limit,
              std::to_string(depot_limit_held() + room).c_str());
    limit = depot_limit_bytes();
  }
  ~LimitAt() {
    SetConfig(DEPOT_CONF_memory_limit, "0");
    SetConfig(DEPOT_CONF_memory_limit_margin, "10%");
    SetConfig(DEPOT_CONF_memory_limit_soft, "90");
  }
  size_t limit;
};

// A segment holding one live page, s, and the rest of it free and purged.
struct PurgedBeside {
  explicit PurgedBeside(probe_arena_t *a) {
    const size_t max = probe_span_max_pages();
    s = static_cast<char *>(probe_arena_alloc(a, 1, 1));
    char *rest = static_cast<char *>(probe_arena_alloc(a, max - 1, 1));
    ok = s && rest && rest == s + probe_page_size();
    if (rest) probe_arena_free(a, rest);
    probe_arena_purge(a);
  }
  char *s;
  bool ok;
};

// Freeing a page next to purged pages joins them into one free span that
// counts as held: within the limit they are charged, and past it the span
// is purged at once.  Either way the held figure stays under the limit, and
// the purged pages cannot be handed out, and faulted in, uncharged (they
// were, until 2026-12-02: held passed the hard limit and a segment-sized
// span was then allocated at no charge).
TEST(Arena, PurgedPagesJoinedToAFreedOneAreChargedOrPurgedAgain) {
  ASSERT_EQ(depot_init(), 0);
  probe_arena_t *a = probe_arena_new();
  const size_t page = probe_page_size(), max = probe_span_max_pages();
  PurgedBeside b(a);
  ASSERT_TRUE(b.ok);
  ASSERT_EQ(Get(a).dirty_pages, 0u);
  {
    LimitAt lim(16 * page); /* not room for the purged pages */
    probe_arena_free(a, b.s);
    EXPECT_LE(depot_limit_held(), lim.limit) << "held passed the hard limit";
    EXPECT_EQ(Get(a).dirty_pages, 0u) << "the joined span was not purged";
    EXPECT_EQ(probe_arena_alloc(a, max, 1), nullptr)
        << "a whole segment handed out past the limit";
    EXPECT_LE(depot_limit_held(), lim.limit);
  }
  // With room, the purged pages are charged when they join: held grows by
  // them, and the span they make is handed out with nothing more to charge.
  PurgedBeside c(a);
  ASSERT_TRUE(c.ok);
  {
    LimitAt lim(2 * max * page);
    size_t before = depot_limit_held();
    probe_arena_free(a, c.s);
    EXPECT_EQ(Get(a).dirty_pages % max, 0u);
    EXPECT_GE(depot_limit_held(), before + (max - 1) * page)
        << "the joined purged pages were not charged";
    char *p = static_cast<char *>(probe_arena_alloc(a, max, 1));
    ASSERT_NE(p, nullptr);
    memset(p, 1, max * page);
    EXPECT_LE(depot_limit_held(), lim.limit);
    probe_arena_free(a, p);
  }
}

TEST(Arena, RejectsImpossibleRequests) {
  probe_arena_t *a = probe_arena_new();
  EXPECT_EQ(probe_arena_alloc(a, 0, 1), nullptr);
  EXPECT_EQ(probe_arena_alloc(a, probe_span_max_pages() + 1, 1), nullptr);
  EXPECT_EQ(probe_arena_alloc(a, 1, 3), nullptr);
  EXPECT_EQ(Get(a).segments, 0u);
}

}  // namespace

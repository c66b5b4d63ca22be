// Heap profiling through the API, linked with //:depot, so that it also runs
// under ASan and TSan (.ci/run): threads allocate in every domain, blocks
// are freed by threads other than their allocator (also after it exited),
// profiles are written while threads allocate, sampling is switched off and
// on.  DEPOT_CONF comes from the BUILD rule (prof=1 with a small interval).
#include <gtest/gtest.h>

#include <depot/depot.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc/prof.h"
#include "alloc/stacktrace.h"

namespace {

std::string Slurp(const std::string &path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string TmpFile(const char *name) {
  const char *t = getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name;
}

__attribute__((noinline)) void *Allocate(int domain, size_t n) {
  switch (domain) {
    case 0: return DepotMem_RawMalloc(n);
    case 1: return DepotMem_Malloc(n);
    default: return DepotObject_Malloc(n);
  }
}

void Free(int domain, void *p) {
  switch (domain) {
    case 0: DepotMem_RawFree(p); break;
    case 1: DepotMem_Free(p); break;
    default: DepotObject_Free(p);
  }
}

TEST(ProfApi, ThreadsDomainsDumpsAndCrossThreadFrees) {
  depot_prof_stats_t before;
  depot_prof_get_stats(&before);
  constexpr int kThreads = 4, kBlocks = 3000;
  std::vector<std::vector<void *>> made(kThreads);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    int n = 0;
    while (writing.load()) {
      EXPECT_EQ(DepotMem_DumpProfile(TmpFile("api_during.heap").c_str()), 0);
      n++;
    }
    EXPECT_GT(n, 0);
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kBlocks; i++) {
        size_t n = 8 + (i * 37 % 5000) + (i % 100 == 0 ? 100000 : 0);
        void *p = Allocate(i % 3, n);
        ASSERT_NE(p, nullptr);
        static_cast<char *>(p)[n - 1] = 1;
        made[t].push_back(p);
        if (i % 7 == 0) {  // reallocs: samples end, new ones begin
          void *q = DepotMem_Realloc(nullptr, 64);
          q = DepotMem_Realloc(q, 70000);
          DepotMem_Free(q);
        }
      }
    });
  for (auto &t : ts) t.join();  // the allocating threads have exited
  writing = false;
  writer.join();
  depot_prof_stats_t mid;
  depot_prof_get_stats(&mid);
  EXPECT_GT(mid.samples, before.samples + 50);
  EXPECT_GT(mid.live_samples, 10u);
  // Other threads free everything.
  std::vector<std::thread> freers;
  for (int t = 0; t < kThreads; t++)
    freers.emplace_back([&, t] {
      auto &v = made[(t + 1) % kThreads];
      for (size_t i = 0; i < v.size(); i++) Free(static_cast<int>(i % 3), v[i]);
    });
  for (auto &t : freers) t.join();
  depot_prof_stats_t after;
  depot_prof_get_stats(&after);
  EXPECT_LT(after.live_samples, mid.live_samples);
  EXPECT_EQ(after.nested, 0u) << "a capture allocated from inside the unwinder";
  EXPECT_GT(after.table_bytes, 0u);

  std::string text = Slurp(TmpFile("api_during.heap"));
  EXPECT_EQ(text.rfind("heap profile: ", 0), 0u) << text.substr(0, 200);
  EXPECT_NE(text.find("@ heap_v2/4096"), std::string::npos);
  EXPECT_NE(text.find("\nMAPPED_LIBRARIES:\n"), std::string::npos);
}

TEST(ProfApi, ActiveSwitch) {
  EXPECT_EQ(DepotMem_SetProfileActive(0), 1);
  depot_prof_stats_t a, b;
  depot_prof_get_stats(&a);
  std::vector<void *> v;
  for (int i = 0; i < 20000; i++) v.push_back(DepotMem_Malloc(512));
  depot_prof_get_stats(&b);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(DepotMem_SetProfileActive(1), 0);
  for (int i = 0; i < 20000; i++) v.push_back(DepotMem_Malloc(512));
  depot_prof_get_stats(&b);
  EXPECT_GT(b.samples, a.samples);
  for (void *p : v) DepotMem_Free(p);
  DepotMem_ResetProfile();
  EXPECT_EQ(DepotMem_DumpProfile(TmpFile("api_reset.heap").c_str()), 0);
  std::string text = Slurp(TmpFile("api_reset.heap"));
  // Nothing allocated since the reset (the first line's [alloc] figures).
  EXPECT_NE(text.find("[0: 0] @ heap_v2/"), std::string::npos)
      << text.substr(0, 200);
  EXPECT_NE(DepotMem_DumpProfile("/nonexistent/dir/x.heap"), 0);
}

// The stack walk that follows rules learned from libgcc's unwinder
// (stacktrace.c) gives the unwinder's frames: through frames whose size
// changes from call to call (alloca), recursion of several depths, and in
// several threads at once, and it does answer once the rules are known.
using Walker = unsigned (*)(void **, unsigned, unsigned);

__attribute__((noinline)) unsigned WalkLeaf(Walker w, void **out) {
  unsigned n = w(out, 48, 0);
  asm volatile("" ::: "memory"); /* not a tail call */
  return n;
}

__attribute__((noinline)) unsigned WalkVla(Walker w, void **out, int depth,
                                           size_t bytes) {
  char *pad = static_cast<char *>(alloca(bytes));
  pad[0] = 1;
  asm volatile("" ::"r"(pad) : "memory");
  unsigned n =
      depth > 0 ? WalkVla(w, out, depth - 1, bytes / 2 + 16) : WalkLeaf(w, out);
  asm volatile("" ::: "memory");
  return n;
}

// Both walks from one call site, so that their frames are comparable.
__attribute__((noinline)) void CompareWalks(int depth, size_t bytes,
                                            int *mismatches) {
  void *frames[2][48];
  unsigned n[2];
  static const Walker walkers[2] = {depot_stacktrace,
                                    depot_stacktrace_unwinder};
#pragma GCC unroll 1
  for (volatile int i = 0; i < 2; i++)
    n[i] = WalkVla(walkers[i], frames[i], depth, bytes);
  bool same = n[0] == n[1] && n[0] > 3;
  for (unsigned k = 0; same && k < n[0]; k++)
    same = frames[0][k] == frames[1][k];
  if (!same) ++*mismatches;
}

TEST(ProfApi, FastStackWalkEqualsUnwinder) {
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  std::atomic<unsigned long> fast{0};
  for (int t = 0; t < 4; t++)
    threads.emplace_back([t, &bad, &fast] {
      int mismatches = 0;
      unsigned long before = depot_stacktrace_fast_walks();
      for (int i = 0; i < 300; i++)
        CompareWalks((i + t) % 5, 16 + 24 * static_cast<size_t>(i % 7),
                     &mismatches);
      fast += depot_stacktrace_fast_walks() - before;
      bad += mismatches;
    });
  for (auto &th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
#if defined(__x86_64__)
  EXPECT_GT(fast.load(), 4u * 300 / 2) << "the rules answered too rarely";
#endif
}

}  // namespace

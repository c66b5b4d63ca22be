// Heap profiling through the API, linked with //:depot, so that it also runs
// under ASan and TSan (.ci/run): threads allocate in every domain, blocks
// are freed by threads other than their allocator (also after it exited),
// profiles are written while threads allocate, sampling is switched off and
// on.  DEPOT_CONF comes from the BUILD rule (prof=1 with a small interval).
#include <gtest/gtest.h>

#include <depot/depot.h>

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc/alloc_api.h"
#include "alloc/common.h"
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

// A block grown by many reallocs is one allocation of its final size: only
// its growth counts against the countdown, and once sampled it stays one
// sample as it grows, shrinks and moves (to a huge block and back), its
// in-use line following its size and its allocated-since line holding it
// once at the largest size it reached.  Before, each realloc counted the
// whole new size as a new allocation: at prof_sample=4k nearly every one
// of the 1000 steps was a sample, and the site's allocated-since line
// counted hundreds of objects.
__attribute__((noinline)) void *GrowBy64(void *p, int steps, size_t *size) {
  for (int i = 0; i < steps; i++) {
    *size += 64;
    p = DepotMem_Realloc(p, *size);
    if (!p) return nullptr;
    static_cast<char *>(p)[*size - 1] = static_cast<char>(i);
  }
  return p;
}

__attribute__((noinline)) void *Resize(void *p, size_t n) {
  void *q = DepotMem_Realloc(p, n);
  asm volatile("" ::: "memory"); /* not a tail call: its own stack */
  return q;
}

// The line "objs: bytes [objs: bytes] @" of a profile, or "" if none.
bool HasLine(const std::string &text, const std::string &counts) {
  return text.find("\n" + counts + " @") != std::string::npos;
}

// What a sample of n bytes stands for at prof_sample=4k.
double Weight(double n) { return n / -std::expm1(-n / 4096.0); }

TEST(ProfApi, ReallocGrowthIsOneSample) {
  depot_prof_stats_t a, b;
  depot_prof_get_stats(&a);
  size_t size = 16;
  void *p = DepotMem_Malloc(size);
  ASSERT_NE(p, nullptr);
  p = GrowBy64(p, 1000, &size);  // to 64016 bytes: sampled with p > 0.9999
  ASSERT_NE(p, nullptr);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.samples - a.samples, 1u) << "a growing block sampled again";
  EXPECT_EQ(b.live_samples - a.live_samples, 1u);
  EXPECT_NEAR(double(b.live_estimate - a.live_estimate), Weight(64016), 2);
  for (int k = 0; k < 1000; k += 37)  // contents moved with it
    EXPECT_EQ(static_cast<char *>(p)[16 + 64 * (k + 1) - 1],
              static_cast<char>(k));
  std::string file = TmpFile("api_realloc.heap");
  ASSERT_EQ(DepotMem_DumpProfile(file.c_str()), 0);
  EXPECT_TRUE(HasLine(Slurp(file), "1: 64016 [1: 64016]")) << Slurp(file);

  // Shrunk, it moves to a one-page run, still the same sample: in use at
  // 100 bytes, allocated once at 64016.
  p = Resize(p, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(static_cast<char *>(p)[63], 0);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.samples - a.samples, 1u);
  EXPECT_EQ(b.live_samples - a.live_samples, 1u);
  EXPECT_NEAR(double(b.live_estimate - a.live_estimate), Weight(100), 2);
  ASSERT_EQ(DepotMem_DumpProfile(file.c_str()), 0);
  std::string text = Slurp(file);
  EXPECT_TRUE(HasLine(text, "1: 100 [0: 0]")) << text;
  EXPECT_TRUE(HasLine(text, "0: 0 [1: 64016]")) << text;

  // After a reset it counts as allocated again when it grows: to a huge
  // block (a new mapping) and within it (remapped or in place).
  DepotMem_ResetProfile();
  p = Resize(p, 3u << 20);
  ASSERT_NE(p, nullptr);
  p = Resize(p, 5u << 20);
  ASSERT_NE(p, nullptr);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.samples - a.samples, 1u);
  EXPECT_EQ(b.live_samples - a.live_samples, 1u);
  EXPECT_NEAR(double(b.live_estimate - a.live_estimate), 5u << 20, 2);
  ASSERT_EQ(DepotMem_DumpProfile(file.c_str()), 0);
  text = Slurp(file);
  EXPECT_TRUE(HasLine(text, "1: 5242880 [1: 5242880]")) << text;
  DepotMem_Free(p);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.live_samples, a.live_samples) << "the freed sample stayed";
  EXPECT_NEAR(double(b.live_estimate), double(a.live_estimate), 2);

  // A page run made while sampling was paused, grown when it is on: its
  // growth (40000 bytes, ten intervals) holds a sample point, and it
  // becomes the sample where it grows (in place when the pages after it
  // are free) at its new size.
  EXPECT_EQ(DepotMem_SetProfileActive(0), 1);
  p = DepotMem_Malloc(40000);
  EXPECT_EQ(DepotMem_SetProfileActive(1), 0);
  depot_prof_get_stats(&a);
  p = Resize(p, 80000);
  ASSERT_NE(p, nullptr);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.samples - a.samples, 1u);
  EXPECT_NEAR(double(b.live_estimate - a.live_estimate), Weight(80000), 2);
  DepotMem_Free(p);
  depot_prof_get_stats(&b);
  EXPECT_EQ(b.live_samples, a.live_samples);
}

// Strings grown 16 bytes at a time to 2304 bytes stay below a page run,
// where realloc moves a block that grows by a small step to half again its
// size: each block must be sampled as often as one malloc'd at its final
// size, so the estimate of the live ones is their bytes (up to the rounding
// to their usable size).  Counting the growth to the class of the request,
// not to the block realloc made, left out three quarters of their bytes.
TEST(ProfApi, SmallStringsGrownByReallocAreCountedWhole) {
  constexpr int kBlocks = 4000;
  constexpr size_t kFinal = 2304;
  std::vector<void *> blocks(kBlocks);
  depot_prof_stats_t a, b;
  depot_prof_get_stats(&a);
  for (void *&p : blocks) {
    p = DepotMem_Malloc(16);
    ASSERT_NE(p, nullptr);
    for (size_t n = 32; n <= kFinal; n += 16) {
      p = DepotMem_Realloc(p, n);
      ASSERT_NE(p, nullptr);
    }
  }
  depot_prof_get_stats(&b);
  double ratio =
      double(b.live_estimate - a.live_estimate) / (double(kBlocks) * kFinal);
  for (void *p : blocks) DepotMem_Free(p);
  // High by the rounding to the usable size the countdown sees (2560
  // bytes: 1.11); about 1,700 samples, a standard deviation of 2.5%.
  // Counted to the classes of the requests: 0.25.
  EXPECT_GT(ratio, 0.95) << (b.samples - a.samples) << " samples";
  EXPECT_LT(ratio, 1.25) << (b.samples - a.samples) << " samples";
}

// Huge samples that realloc moves (mremap) while other threads map, sample
// and free huge blocks, which may land at an address just given up before
// its sample's record follows it: the records of the same address may then
// be swapped (a profile's attribution, for that moment), but every record
// stays one live block's and leaves with it.
TEST(ProfApi, HugeSamplesMovedWhileOthersMap) {
  depot_prof_stats_t a, b;
  depot_prof_get_stats(&a);
  std::atomic<bool> stop{false};
  std::atomic<long> moves{0};
  auto mover = [&] {
    for (int i = 0; i < 100; i++) {
      char *p = static_cast<char *>(DepotMem_Malloc(3u << 20));
      ASSERT_NE(p, nullptr);
      p[0] = 1;
      for (int k = 0; k < 6; k++) {
        char *q = static_cast<char *>(
            DepotMem_Realloc(p, size_t(3 + 2 * k + (i & 1)) << 20));
        ASSERT_NE(q, nullptr);
        if (q != p) moves++;
        ASSERT_EQ(q[0], 1);
        p = q;
      }
      DepotMem_Free(p);
    }
  };
  auto mapper = [&] {
    void *keep[8] = {};
    for (unsigned i = 0; !stop.load(); i++) {
      unsigned j = i % 8;
      DepotMem_Free(keep[j]);
      keep[j] = DepotMem_Malloc(size_t(3 + i % 5) << 20);
      if (i % 3 == 0)
        keep[j] = DepotMem_Realloc(keep[j], size_t(2 + i % 7) << 20);
    }
    for (void *p : keep) DepotMem_Free(p);
  };
  std::thread m1(mover), m2(mover), p1(mapper), p2(mapper);
  m1.join();
  m2.join();
  stop = true;
  p1.join();
  p2.join();
  depot_prof_get_stats(&b);
  EXPECT_GT(moves.load(), 0);
  EXPECT_EQ(b.live_samples, a.live_samples) << moves.load() << " moves";
  EXPECT_EQ(b.live_estimate, a.live_estimate);
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

// Coroutines (makecontext, swapcontext) on stacks mapped on their own, a
// guard page below each, taken in turns with walks on the thread's own
// stack, a coroutine's stack unmapped and another mapped in its place: the
// fast walk's range changes stacks at every switch, and it must neither
// fault (the guard pages, the unmapped stacks) nor differ from the
// unwinder, and it must answer inside a coroutine once it knows the rules.

struct Coroutine {
  ucontext_t ctx, back;
  char *map = nullptr;
  size_t bytes = 0;
  int walks = 0, mismatches = 0;
  unsigned long fast = 0;
  bool done = false;
};

Coroutine *running;  // the coroutine being entered (makecontext passes ints)

// Switches from the thread's stack into c, until it yields or ends.
void Resume(Coroutine *c) {
  running = c;
  ASSERT_EQ(swapcontext(&c->back, &c->ctx), 0);
}

void Yield(Coroutine *c) { swapcontext(&c->ctx, &c->back); }

void CoroutineBody() {
  Coroutine *c = running;
  for (int round = 0; round < 6; round++) {
    unsigned long before = depot_stacktrace_fast_walks();
    for (int i = 0; i < 10; i++, c->walks++)
      CompareWalks(1 + (i + round) % 4, 16 + 40 * static_cast<size_t>(i % 5),
                   &c->mismatches);
    c->fast += depot_stacktrace_fast_walks() - before;
    Yield(c);
  }
  c->done = true;
}

void Start(Coroutine *c, size_t bytes) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  c->bytes = bytes + page;
  void *m = mmap(nullptr, c->bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  c->map = static_cast<char *>(m);
  ASSERT_EQ(mprotect(c->map, page, PROT_NONE), 0);  // the guard page
  ASSERT_EQ(getcontext(&c->ctx), 0);
  c->ctx.uc_stack.ss_sp = c->map + page;
  c->ctx.uc_stack.ss_size = bytes;
  c->ctx.uc_link = &c->back;
  makecontext(&c->ctx, CoroutineBody, 0);
}

void Finish(Coroutine *c) {
  munmap(c->map, c->bytes);
  c->map = nullptr;
}

TEST(ProfApi, FastStackWalkOnCoroutineStacks) {
#if defined(__SANITIZE_THREAD__)
  // TSan's own call stacks do not follow swapcontext (its fiber interface
  // crashed hashing them); the walk itself is not instrumented.
  GTEST_SKIP() << "swapcontext under ThreadSanitizer";
#endif
  int mismatches = 0, walks = 0, coroutine_walks = 0;
  unsigned long coroutine_fast = 0;
  for (int generation = 0; generation < 3; generation++) {
    Coroutine a, b;
    Start(&a, 64 << 10);
    Start(&b, (128 << 10) << generation);
    while (!a.done || !b.done) {
      for (Coroutine *c : {&a, &b}) {
        if (c->done) continue;
        Resume(c);
        for (int i = 0; i < 5; i++, walks++)
          CompareWalks(i % 3, 24 + 8 * static_cast<size_t>(i), &mismatches);
      }
    }
    for (Coroutine *c : {&a, &b}) {
      mismatches += c->mismatches;
      coroutine_walks += c->walks;
      coroutine_fast += c->fast;
      Finish(c);
    }
  }
  EXPECT_EQ(coroutine_walks, 3 * 2 * 6 * 10);
  EXPECT_EQ(mismatches, 0) << "of " << walks + coroutine_walks << " walks";
#if defined(__x86_64__)
  EXPECT_GT(coroutine_fast, 0u) << "the rules never answered in a coroutine";
#endif
}

#if defined(__x86_64__)
// Stack switches whose frames' unwind information leads back to the
// caller's stack, as fiber libraries' entry frames do: run_on_stack(top,
// fn, arg) saves its stack pointer at top - 8, calls fn(arg) on
// [.., top - 16) and returns on its own stack; its CFA is the saved stack
// pointer + 8 (a DWARF expression: the word at rsp + 8, plus 8), so the
// unwinder goes on from fn's frames to the caller's, on another mapping.
// Two copies (two return addresses, two rules).
#define RUN_ON_STACK(name)                                                     \
  asm(".text\n .p2align 4\n .globl " #name "\n .type " #name                   \
      ", @function\n" #name                                                    \
      ":\n .cfi_startproc\n mov %rsp, -8(%rdi)\n lea -16(%rdi), %rsp\n"        \
      " .cfi_escape 0x0f, 0x05, 0x77, 0x08, 0x06, 0x23, 0x08\n"                \
      " mov %rdx, %rdi\n call *%rsi\n mov 8(%rsp), %rsp\n"                     \
      " .cfi_def_cfa %rsp, 8\n ret\n .cfi_endproc\n .size " #name ", .-" #name \
      "\n");                                                                   \
  extern "C" void name(char *top, void (*fn)(void *), void *arg)
RUN_ON_STACK(depot_test_run_on_stack_a);
RUN_ON_STACK(depot_test_run_on_stack_b);

// One reservation, addresses ascending: guard, stack S1, guard, stack S0,
// guard, stack S2, then a hole of inaccessible pages.  The thread enters S2
// (through b), which enters S1 or S0 (through a) and walks there: S1 first,
// so that a's rule, were it learned (S1's top to S2's stack pointer), would
// send a walk from S0, which lies between, into the hole, below the
// thread's own stack where the walk from S1 ended.
constexpr size_t kGuard = 4 << 10, kStack = 192 << 10, kHole = 512 << 10;

struct Crossing {
  char *base;
  int walks = 0, mismatches = 0, round = 0;
};

void WalkOnStack(void *arg) {
  auto *c = static_cast<Crossing *>(arg);
  for (int i = 0; i < 10; i++, c->walks++)
    CompareWalks(1 + i % 3, 16 + 40 * static_cast<size_t>(i % 5),
                 &c->mismatches);
}

void OnS2(void *arg) {
  auto *c = static_cast<Crossing *>(arg);
  char *s1_top = c->base + kGuard + kStack;
  char *s0_top = s1_top + kGuard + kStack;
  depot_test_run_on_stack_a(c->round < 4 ? s1_top : s0_top, WalkOnStack, c);
}

void CrossingWalks(Crossing *c) {
  size_t bytes = 3 * (kGuard + kStack) + kHole;
  void *m = mmap(nullptr, bytes, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  c->base = static_cast<char *>(m);
  for (int k = 0; k < 3; k++)
    ASSERT_EQ(mprotect(c->base + k * (kGuard + kStack) + kGuard, kStack,
                       PROT_READ | PROT_WRITE),
              0);
  char *s2_top = c->base + 3 * (kGuard + kStack);
  for (c->round = 0; c->round < 8; c->round++) {
    depot_test_run_on_stack_b(s2_top, OnS2, c);
    for (int i = 0; i < 3; i++, c->walks++) CompareWalks(i, 24, &c->mismatches);
  }
  munmap(m, bytes);
}

TEST(ProfApi, FastStackWalkAcrossStacks) {
  Crossing on_main, on_thread;
  CrossingWalks(&on_main);
  std::thread t([&on_thread] { CrossingWalks(&on_thread); });
  t.join();
  EXPECT_EQ(on_main.mismatches, 0) << "of " << on_main.walks;
  EXPECT_EQ(on_thread.mismatches, 0) << "of " << on_thread.walks;
}
#endif

TEST(ProfApiDeath, AFreedSampleKeptSpareIsNoBlock) {
  // A freed one-page sample is kept spare for the next sample (allocated
  // in its arena's eyes): freeing or reallocating it again is a double
  // free, reported, not a block handed back to the arena while the spare
  // slot still holds it (the next sample would then share its page).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  void *p = nullptr;
  for (int i = 0; i < 1000000 && !p; i++) {
    void *q = DepotMem_RawMalloc(100);
    ASSERT_NE(q, nullptr);
    if (depot_usable_size(q) == DEPOT_PAGE_SIZE) p = q;  // a sample
    else DepotMem_RawFree(q);
  }
  ASSERT_NE(p, nullptr) << "no sample with prof_sample=4k";
  DepotMem_RawFree(p);
  EXPECT_DEATH(DepotMem_RawRealloc(p, 200), "realloc.*not a live block");
  EXPECT_DEATH(DepotMem_RawFree(p), "free.*not a live block");
}

}  // namespace

// micro.cc: the fast-path microbenchmarks of the suite (Google Benchmark).
// Everything goes through malloc/free/realloc, so the allocator measured is
// whichever is preloaded (LD_PRELOAD=libdepot.so, jemalloc, ...) or glibc.
//   pair/N           malloc(N) + free, N = 16 .. 4096
//   batch100/mixed   100 blocks of 8..508 bytes allocated, then freed
//   realloc/growth   a buffer grown by realloc from 16 B to 1 MiB, doubling,
//                    and a string grown 16 bytes at a time to 8 KiB
//   prodcons/2thr    one thread allocates, another frees
//   scaling          batch100/mixed in 1, 2, 4, ... threads at once
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

void Pair(benchmark::State &state) {
  const size_t size = size_t(state.range(0));
  for (auto _ : state) {
    void *p = malloc(size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(Pair)->Name("pair")->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

void Batch100(benchmark::State &state) {
  void *ptrs[100];
  for (auto _ : state) {
    for (int i = 0; i < 100; i++) ptrs[i] = malloc(8 + size_t(i) * 5);
    benchmark::DoNotOptimize(ptrs);
    for (int i = 0; i < 100; i++) free(ptrs[i]);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(Batch100)->Name("batch100/mixed");

void ReallocGrowth(benchmark::State &state) {
  for (auto _ : state) {
    void *p = malloc(16);
    for (size_t n = 32; n <= (size_t(1) << 20); n *= 2) {
      p = realloc(p, n);
      static_cast<char *>(p)[n - 1] = 1;
    }
    free(p);
    char *s = static_cast<char *>(malloc(16));
    for (size_t n = 32; n <= 8192; n += 16) {
      s = static_cast<char *>(realloc(s, n));
      s[n - 1] = 1;
    }
    free(s);
  }
}
BENCHMARK(ReallocGrowth)->Name("realloc/growth");

void ProducerConsumer(benchmark::State &state) {
  constexpr size_t kBlocks = 1 << 14, kCap = 1 << 12;
  for (auto _ : state) {
    std::atomic<size_t> head{0}, tail{0};
    static void *slots[kCap];
    std::thread consumer([&] {
      for (size_t got = 0; got < kBlocks;) {
        size_t t = tail.load(std::memory_order_relaxed);
        if (t == head.load(std::memory_order_acquire)) {
          std::this_thread::yield();
          continue;
        }
        free(slots[t % kCap]);
        tail.store(t + 1, std::memory_order_release);
        got++;
      }
    });
    for (size_t i = 0; i < kBlocks; i++) {
      void *p = malloc(16 + (i % 32) * 16);
      size_t h = head.load(std::memory_order_relaxed);
      while (h - tail.load(std::memory_order_acquire) >= kCap) std::this_thread::yield();
      slots[h % kCap] = p;
      head.store(h + 1, std::memory_order_release);
    }
    consumer.join();
  }
  state.SetItemsProcessed(state.iterations() * kBlocks);
}
BENCHMARK(ProducerConsumer)->Name("prodcons/2thr")->UseRealTime();

void Scaling(benchmark::State &state) { Batch100(state); }
BENCHMARK(Scaling)->Name("scaling")->ThreadRange(1, 64)->UseRealTime();

}  // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

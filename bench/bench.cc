// Depot against the system allocator, in one process and one run:
//   pair/<size>      malloc+free of one block, sizes 16..4096
//   batch100/mixed   allocate 100 blocks of mixed sizes (8..508), free them
//   prodcons/2thr    one thread allocates, another frees (cross-thread)
//   scaling/threads:N  batch100 in N threads at once (N = 1, 2, 4, ... up to
//                    the CPUs present): time per batch should stay flat
// Each workload runs for both allocators; the closing table gives the ratio
// Depot time / system time per workload (below 1.0: Depot is faster).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "alloc/alloc_api.h"

namespace {

struct Depot {
  static void *Alloc(size_t n) { return depot_alloc_call(n, 0); }
  static void Free(void *p) { depot_free_call(p, 0); }
};
struct System {
  static void *Alloc(size_t n) { return malloc(n); }
  static void Free(void *p) { free(p); }
};

template <class A>
void Pair(benchmark::State &state) {
  const size_t size = size_t(state.range(0));
  for (auto _ : state) {
    void *p = A::Alloc(size);
    benchmark::DoNotOptimize(p);
    A::Free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class A>
void Batch100(benchmark::State &state) {
  void *ptrs[100];
  for (auto _ : state) {
    for (int i = 0; i < 100; i++) ptrs[i] = A::Alloc(8 + size_t(i) * 5);
    benchmark::DoNotOptimize(ptrs);
    for (int i = 0; i < 100; i++) A::Free(ptrs[i]);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

// Single-producer single-consumer ring of block pointers.
struct Ring {
  static constexpr size_t kCap = 1 << 12;
  std::atomic<size_t> head{0}, tail{0};
  void *slots[kCap];
};

template <class A>
void ProducerConsumer(benchmark::State &state) {
  constexpr size_t kPerIteration = 1 << 14;
  for (auto _ : state) {
    Ring ring;
    std::thread consumer([&] {
      for (size_t got = 0; got < kPerIteration;) {
        size_t t = ring.tail.load(std::memory_order_relaxed);
        if (t == ring.head.load(std::memory_order_acquire)) continue;
        A::Free(ring.slots[t % Ring::kCap]);
        ring.tail.store(t + 1, std::memory_order_release);
        got++;
      }
    });
    for (size_t i = 0; i < kPerIteration; i++) {
      void *p = A::Alloc(16 + (i % 32) * 16);
      size_t h = ring.head.load(std::memory_order_relaxed);
      while (h - ring.tail.load(std::memory_order_acquire) >= Ring::kCap) {
      }
      ring.slots[h % Ring::kCap] = p;
      ring.head.store(h + 1, std::memory_order_release);
    }
    consumer.join();
  }
  state.SetItemsProcessed(state.iterations() * kPerIteration);
}

void Register() {
  for (int size : {16, 32, 64, 128, 256, 512, 1024, 2048, 4096}) {
    benchmark::RegisterBenchmark("pair/depot", Pair<Depot>)->Arg(size);
    benchmark::RegisterBenchmark("pair/system", Pair<System>)->Arg(size);
  }
  benchmark::RegisterBenchmark("batch100/mixed/depot", Batch100<Depot>);
  benchmark::RegisterBenchmark("batch100/mixed/system", Batch100<System>);
  unsigned cpus = std::thread::hardware_concurrency();
  for (unsigned t = 1; t <= (cpus ? cpus : 1); t *= 2) {
    benchmark::RegisterBenchmark("scaling/depot", Batch100<Depot>)->Threads(int(t))->UseRealTime();
    benchmark::RegisterBenchmark("scaling/system", Batch100<System>)->Threads(int(t))->UseRealTime();
  }
  benchmark::RegisterBenchmark("prodcons/2thr/depot", ProducerConsumer<Depot>)
      ->UseRealTime();
  benchmark::RegisterBenchmark("prodcons/2thr/system", ProducerConsumer<System>)
      ->UseRealTime();
}

// Console output as usual, plus the time of every run kept for the summary.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // Colour only on a terminal, so that scripts can read the lines.
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Color : OO_None) {}
  void ReportRuns(const std::vector<Run> &runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run &r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      // The workload's key is its name without the allocator's part.
      std::string name = r.benchmark_name();
      size_t cut = name.find("/depot");
      bool depot = cut != std::string::npos;
      size_t len = depot ? 6 : 7;
      if (!depot) cut = name.find("/system");
      if (cut == std::string::npos) continue;
      auto &slot = times_[name.erase(cut, len)];
      (depot ? slot.first : slot.second) = r.GetAdjustedRealTime();
    }
  }
  void Summary() const {
    std::printf("\n| workload | depot ns | system ns | depot/system |\n|---|---|---|---|\n");
    double log_sum = 0;
    int n = 0;
    for (const auto &kv : times_) {
      double d = kv.second.first, s = kv.second.second;
      if (d <= 0 || s <= 0) continue;
      std::printf("| %s | %.1f | %.1f | %.2f |\n", kv.first.c_str(), d, s, d / s);
      log_sum += std::log(d / s);
      n++;
    }
    if (n) std::printf("| geometric mean | | | %.2f |\n", std::exp(log_sum / n));
  }

 private:
  std::map<std::string, std::pair<double, double>> times_;
};

}  // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Register();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.Summary();
  benchmark::Shutdown();
  return 0;
}

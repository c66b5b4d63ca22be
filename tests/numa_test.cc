// NUMA placement without NUMA hardware: hwloc's synthetic topology
// "numa:2 core:1 pu:1" maps this machine's CPUs 0 and 1 to two nodes.
// Threads pinned to each CPU must get blocks of their own node; frees from
// the other node go home; interleave rotates; bind excludes; a migrated
// thread switches node.  A last test checks real placement where the kernel
// has two nodes or more.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <depot/depot.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "runtime/topology.h"

namespace {

constexpr unsigned RAW = 0;

void Pin(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
  ASSERT_EQ(sched_getcpu(), cpu);
}

// Applies a configuration over the synthetic two-node topology.
void Use(const char *conf) {
  setenv("HWLOC_SYNTHETIC", "numa:2 core:1 pu:1", 1);
  testing::internal::CaptureStderr();
  depot_config_load_from(nullptr, conf);
  ASSERT_EQ(depot_topology_reload(), 0);
  testing::internal::GetCapturedStderr();
  ASSERT_EQ(depot_topology_current()->nnodes, 2u);
}

struct Nodes {
  unsigned pool, memory;
};
Nodes Of(void *p) {
  Nodes n{99, 99};
  EXPECT_EQ(depot_block_nodes(p, &n.pool, &n.memory), 0);
  return n;
}

// Runs f in a thread pinned to cpu.
template <class F>
void OnCpu(int cpu, F f) {
  std::thread t([&] {
    Pin(cpu);
    f();
  });
  t.join();
}

class Numa : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs two CPUs";
  }
};

TEST_F(Numa, ThreadsGetBlocksOfTheirOwnNode) {
  Use("numa=local");
  for (int cpu : {0, 1}) {
    OnCpu(cpu, [&] {
      std::vector<void *> v;
      for (int i = 0; i < 2000; i++)
        v.push_back(depot_alloc_call(16 + size_t(i % 50) * 40, RAW));
      v.push_back(depot_alloc_call(100000, RAW));  // a large block too
      for (void *p : v) {
        Nodes n = Of(p);
        EXPECT_EQ(n.pool, unsigned(cpu));
        EXPECT_EQ(n.memory, unsigned(cpu));
      }
      for (void *p : v) depot_free_call(p, RAW);
    });
  }
  depot_node_stats_t n0, n1;
  ASSERT_EQ(depot_core_node_stats(0, &n0), 0);
  ASSERT_EQ(depot_core_node_stats(1, &n1), 0);
  EXPECT_GT(n1.segments, 0u);
  EXPECT_GT(n0.binds_ok, 0u) << "node 0 exists in the kernel: binds work";
  EXPECT_GT(n1.binds_failed, 0u) << "synthetic node 1 does not: counted";
}

TEST_F(Numa, FreesFromTheOtherNodeGoHome) {
  Use("numa=local");
  auto out0 = [] {
    depot_node_stats_t st;
    EXPECT_EQ(depot_core_node_stats(0, &st), 0);
    return st.blocks_out;
  };
  size_t before = out0();
  std::vector<void *> from0;
  OnCpu(0, [&] {
    for (int i = 0; i < 5000; i++) from0.push_back(depot_alloc_call(48, RAW));
  });
  EXPECT_GE(out0(), before + 5000);
  std::set<void *> freed(from0.begin(), from0.end());
  OnCpu(1, [&] {
    for (void *p : from0) depot_free_call(p, RAW);  // remote frees
    for (int i = 0; i < 5000; i++) {  // node 1 never receives node 0's blocks
      void *p = depot_alloc_call(48, RAW);
      EXPECT_EQ(Of(p).pool, 1u);
      EXPECT_EQ(freed.count(p), 0u);
      depot_free_call(p, RAW);
    }
  });
  // Every one went home: posted to the heap of the thread on node 0 that
  // allocated it (parked since that thread ended), and from it back to its
  // spans on node 0, none kept by the thread of node 1 that freed it.
  EXPECT_EQ(out0(), before) << "node 0's blocks went back to node 0";
  OnCpu(0, [&] {
    std::vector<void *> again;
    for (int i = 0; i < 5000; i++) again.push_back(depot_alloc_call(48, RAW));
    for (void *p : again) EXPECT_EQ(Of(p).pool, 0u);
    for (void *p : again) depot_free_call(p, RAW);
  });
}

TEST_F(Numa, AMigratedThreadSwitchesNode) {
  Use("numa=local");
  std::thread t([] {
    Pin(0);
    void *a = depot_alloc_call(64, RAW);
    EXPECT_EQ(Of(a).pool, 0u);
    Pin(1);
    // The next refill notices the move; allocate past what the cache holds.
    std::vector<void *> v;
    for (int i = 0; i < 3000; i++) v.push_back(depot_alloc_call(64, RAW));
    EXPECT_EQ(Of(v.back()).pool, 1u);
    EXPECT_EQ(Of(v.back()).memory, 1u);
    for (void *p : v) depot_free_call(p, RAW);
    depot_free_call(a, RAW);
  });
  t.join();
}

TEST_F(Numa, InterleaveRotatesSpansOverTheNodes) {
  Use("numa=interleave");
  EXPECT_EQ(depot_core_numa_policy(), DEPOT_NUMA_INTERLEAVE);
  std::vector<void *> v;
  unsigned on[2] = {0, 0};
  OnCpu(0, [&] {
    for (int i = 0; i < 40; i++) v.push_back(depot_alloc_call(200000, RAW));
    for (int i = 0; i < 20000; i++) v.push_back(depot_alloc_call(2048, RAW));
  });
  for (size_t i = 0; i < v.size(); i++) {
    Nodes n = Of(v[i]);
    if (i >= 40) EXPECT_EQ(n.pool, 0u) << "one set of pools for small blocks";
    on[n.memory]++;
  }
  EXPECT_GT(on[0], v.size() / 4);
  EXPECT_GT(on[1], v.size() / 4);
  for (size_t i = 1; i < 40; i++)
    EXPECT_NE(Of(v[i]).memory, Of(v[i - 1]).memory) << "large spans alternate";
  for (void *p : v) depot_free_call(p, RAW);
}

TEST_F(Numa, BindExcludesOtherNodes) {
  Use("numa=bind:1");
  EXPECT_EQ(depot_core_numa_policy(), DEPOT_NUMA_BIND);
  for (int cpu : {0, 1})
    OnCpu(cpu, [&] {
      std::vector<void *> v;
      for (int i = 0; i < 3000; i++) v.push_back(depot_alloc_call(96, RAW));
      for (void *p : v) EXPECT_EQ(Of(p).memory, 1u) << "cpu " << cpu;
      for (void *p : v) depot_free_call(p, RAW);
    });
}

TEST_F(Numa, StrictTurnsAFailedBindIntoAnAllocationFailure) {
  Use("numa=bind:1,numa_strict=1");
  OnCpu(1, [&] {
    // Node 1 is synthetic: the kernel cannot bind to it, so no new segment
    // can be made for it; the first allocation needing one fails cleanly.
    std::vector<void *> v;
    void *p = nullptr;
    for (int i = 0; i < 100000; i++) {
      errno = 0;
      if (!(p = depot_alloc_call(30000, RAW))) break;
      v.push_back(p);
    }
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    for (void *q : v) depot_free_call(q, RAW);
  });
  Use("numa=local");
  OnCpu(1, [&] {
    void *p = depot_alloc_call(30000, RAW);
    EXPECT_NE(p, nullptr) << "best effort again";
    depot_free_call(p, RAW);
  });
}

// A heap bound to synthetic node 1 under numa_strict: its spans cannot be
// bound, so it fails cleanly (ENOMEM), from a thread of node 0 too.
TEST_F(Numa, StrictHeapOnAnUnbindableNodeFails) {
  Use("numa=local,numa_strict=1");
  DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
  o.node = 1;
  DepotHeap *h = DepotHeap_New(&o);
  ASSERT_NE(h, nullptr);
  OnCpu(0, [&] {
    void *p = nullptr;
    for (int i = 0; i < 100000; i++) {
      errno = 0;
      if (!(p = DepotHeap_Malloc(h, 30000))) break;
    }
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
  });
  DepotHeap_Destroy(h);
  Use("numa=local");
}

TEST_F(Numa, OffMeansOnePool) {
  Use("numa=off");
  OnCpu(1, [&] {
    void *p = depot_alloc_call(64, RAW);
    EXPECT_EQ(Of(p).pool, 0u);
    depot_free_call(p, RAW);
  });
}

// A heap bound to a node takes every span from that node's arenas,
// whichever thread allocates, under any policy (issue 15).
TEST_F(Numa, HeapBoundToANodeTakesItsSpansThere) {
  for (const char *conf : {"numa=local", "numa=interleave"}) {
    Use(conf);
    for (int node : {0, 1}) {
      DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
      o.node = node;
      o.name = "bound";
      DepotHeap *h = DepotHeap_New(&o);
      ASSERT_NE(h, nullptr);
      for (int cpu : {0, 1}) {
        OnCpu(cpu, [&] {
          std::vector<void *> v;
          for (int i = 0; i < 2000; i++)
            v.push_back(DepotHeap_Malloc(h, 16 + size_t(i % 50) * 40));
          v.push_back(DepotHeap_Malloc(h, 100000));  // a large block too
          for (void *p : v) {
            Nodes n = Of(p);
            EXPECT_EQ(n.memory, unsigned(node)) << conf << " cpu " << cpu;
            EXPECT_EQ(n.pool, unsigned(node)) << conf << " cpu " << cpu;
          }
          for (void *p : v) DepotHeap_Free(p);
        });
      }
      DepotHeapStats s;
      s.size = sizeof s;
      ASSERT_EQ(DepotHeap_Stats(h, &s), 0);
      EXPECT_EQ(s.node, node);
      DepotHeap_Destroy(h);
    }
  }
  DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
  o.node = 2;  // two nodes here
  errno = 0;
  EXPECT_EQ(DepotHeap_New(&o), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

// Real placement: the kernel says where a page lives (move_pages query).
// Whether the kernel has two NUMA nodes or more; if so, installs its real
// topology under numa=local.
bool RealNodes(std::string *why) {
  char buf[64] = {0};
  FILE *f = fopen("/sys/devices/system/node/online", "r");
  if (f) {
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
  }
  if (!strchr(buf, '-') && !strchr(buf, ',')) {
    *why =
        std::string("one NUMA node here (/sys/devices/system/node/online: ") +
        (buf[0] ? buf : "absent\n") + "); real placement needs two";
    return false;
  }
  unsetenv("HWLOC_SYNTHETIC");
  testing::internal::CaptureStderr();
  depot_config_load_from(nullptr, "numa=local");
  EXPECT_EQ(depot_topology_reload(), 0);
  testing::internal::GetCapturedStderr();
  return true;
}

// The node the kernel says p's page is on.
int PageNode(void *page) {
  int status = -1;
  EXPECT_EQ(syscall(SYS_move_pages, 0, 1, &page, nullptr, &status, 0), 0);
  return status;
}

TEST(NumaHardware, PagesLandOnTheirNode) {
  std::string why;
  if (!RealNodes(&why)) GTEST_SKIP() << why;
  const depot_topology_t *t = depot_topology_current();
  for (unsigned n = 0; n < t->nnodes; n++) {
    int cpu = -1;
    for (unsigned c = 0; c < t->ncpus && cpu < 0; c++)
      if (t->cpu_node[c] == int(n)) cpu = int(c);
    if (cpu < 0) continue;
    OnCpu(cpu, [&] {
      char *p = static_cast<char *>(depot_alloc_call(1 << 20, RAW));
      memset(p, 1, 1 << 20);
      EXPECT_EQ(PageNode(p + 4096), int(t->os_node[n])) << "node " << n;
      depot_free_call(p, RAW);
    });
  }
}

// A heap bound to each node, allocated from a CPU of another node: its
// pages are on its node.
TEST(NumaHardware, HeapPagesLandOnTheirNode) {
  std::string why;
  if (!RealNodes(&why)) GTEST_SKIP() << why;
  const depot_topology_t *t = depot_topology_current();
  for (unsigned n = 0; n < t->nnodes; n++) {
    int cpu = -1;  // a CPU of another node
    for (unsigned c = 0; c < t->ncpus && cpu < 0; c++)
      if (t->cpu_node[c] >= 0 && t->cpu_node[c] != int(n)) cpu = int(c);
    if (cpu < 0) continue;
    DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
    o.node = int(n);
    DepotHeap *h = DepotHeap_New(&o);
    ASSERT_NE(h, nullptr);
    OnCpu(cpu, [&] {
      for (size_t size : {size_t(64), size_t(1) << 20}) {
        char *p = static_cast<char *>(DepotHeap_Malloc(h, size));
        memset(p, 1, size);
        EXPECT_EQ(PageNode(p), int(t->os_node[n])) << "node " << n;
      }
    });
    DepotHeap_Destroy(h);
  }
}

// The kernel's CPU lists (runtime/topology.c reads
// /sys/devices/system/cpu/possible by hand): one more than the highest CPU
// number, the size of a table indexed by CPU; 0 for anything else.
TEST(NumaCpuList, EndIsOneMoreThanTheHighestCpu) {
  EXPECT_EQ(depot_topology_cpu_list_end("0"), 1);
  EXPECT_EQ(depot_topology_cpu_list_end("0\n"), 1);
  EXPECT_EQ(depot_topology_cpu_list_end("0-3\n"), 4);
  EXPECT_EQ(depot_topology_cpu_list_end("0,2-5\n"), 6);
  EXPECT_EQ(depot_topology_cpu_list_end("8-11,0-3"), 12);
  EXPECT_EQ(depot_topology_cpu_list_end("0-4095"), 4096);
  EXPECT_EQ(depot_topology_cpu_list_end(""), 0);
  EXPECT_EQ(depot_topology_cpu_list_end("\n"), 0);
  EXPECT_EQ(depot_topology_cpu_list_end("0-4096"), 0) << "beyond the table";
  EXPECT_EQ(depot_topology_cpu_list_end("0-3 x"), 0);
  EXPECT_EQ(depot_topology_cpu_list_end("99999999999999999999"), 0);
}

// On a machine the kernel shows with one node, the topology is read from
// /sys and sysinfo(2), not from sysconf (it would keep 88 KiB of the C
// library resident in programs that never call it); the readers work here
// (sysconf is only their fallback), and agree with sysconf, which counts
// the CPUs the list names.  Last: it leaves the real topology applied.
TEST(NumaZ, OneNodeTopologyAgreesWithSysconf) {
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  const uint64_t bytes =
      uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  const long end = depot_topology_possible_cpus();
  if (access("/sys/devices/system/cpu/possible", R_OK) == 0) {
    EXPECT_GE(end, cpus);
    EXPECT_LE(end, long(DEPOT_TOPO_MAX_CPUS));
  }
  EXPECT_EQ(depot_topology_total_memory(), bytes);
  unsetenv("HWLOC_SYNTHETIC");
  unsetenv("HWLOC_XMLFILE");
  depot_config_load_from(nullptr, "");
  ASSERT_EQ(depot_topology_reload(), 0);
  const depot_topology_t *t = depot_topology_current();
  if (t->from_hwloc || t->nnodes != 1)
    GTEST_SKIP() << "hwloc's topology (more than one node)";
  EXPECT_EQ(long(t->ncpus), end > 0 ? end : cpus);
  EXPECT_EQ(t->node_bytes[0], bytes);
}

}  // namespace

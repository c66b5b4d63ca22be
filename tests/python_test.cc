// A real client: CPython embedded with Depot's three domains installed
// through PyMem_SetAllocator before Py_Initialize, running Python code that
// allocates from several threads; Depot's statistics must see the traffic.
#ifdef DEPOT_HAVE_PYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif

#include <depot/depot.h>
#include <gtest/gtest.h>

namespace {

#ifdef DEPOT_HAVE_PYTHON
static_assert(sizeof(PyMemAllocatorEx) == sizeof(DepotMemAllocatorEx),
              "layout-compatible with CPython");
static_assert(int(PYMEM_DOMAIN_OBJ) == int(DEPOT_DOMAIN_OBJ), "same numbering");

const char kWork[] = R"PY(
import json, threading
def work(seed):
    d = {}
    for i in range(20000):
        d[str(i + seed)] = [i, "x" * (i % 50), {"k": i, "t": (i, seed)}]
    s = json.dumps(d)
    assert json.loads(s) == d
    del d
threads = [threading.Thread(target=work, args=(n * 100000,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
keep = [str(i) * 2 for i in range(200000)]
big = bytearray(3 << 20)
)PY";

DepotMemStats Snapshot() {
  DepotMemStats s{};
  s.size = sizeof s;
  DepotMem_Stats(&s);
  return s;
}
#endif

TEST(Python, DepotServesAnEmbeddedInterpreter) {
#ifndef DEPOT_HAVE_PYTHON
  GTEST_SKIP() << "python3-dev (Python.h, libpython3) is not installed here; "
                  "install it (tools/bazelw does, as root) to run this test";
#else
  DepotMemStats before = Snapshot();
  for (int d = 0; d < 3; d++) {
    DepotMemAllocatorEx a;
    ASSERT_EQ(DepotMem_GetAllocator(DepotMemAllocatorDomain(d), &a), 0);
    PyMem_SetAllocator(PyMemAllocatorDomain(d), reinterpret_cast<PyMemAllocatorEx *>(&a));
  }
  Py_Initialize();
  ASSERT_EQ(PyRun_SimpleString(kWork), 0) << "the Python workload failed";
  DepotMemStats during = Snapshot();
  auto grew = [&](int d) {
    return during.domains[d].total.blocks_in_use - before.domains[d].total.blocks_in_use;
  };
  EXPECT_GE(grew(DEPOT_DOMAIN_OBJ), 200000u) << "the 200000 strings in `keep`";
  EXPECT_GE(grew(DEPOT_DOMAIN_MEM), 1u);
  EXPECT_GE(during.domains[DEPOT_DOMAIN_MEM].huge.blocks_in_use +
                during.domains[DEPOT_DOMAIN_OBJ].huge.blocks_in_use,
            1u) << "the 3 MiB bytearray";
  EXPECT_GE(during.domains[DEPOT_DOMAIN_RAW].total.blocks_in_use, 1u);
  ASSERT_EQ(PyRun_SimpleString("del keep, big"), 0);
  EXPECT_EQ(Py_FinalizeEx(), 0);
  DepotMemStats after = Snapshot();
  EXPECT_LT(after.domains[DEPOT_DOMAIN_OBJ].total.blocks_in_use,
            during.domains[DEPOT_DOMAIN_OBJ].total.blocks_in_use - 190000)
      << "freed objects went back to Depot";
#endif
}

}  // namespace

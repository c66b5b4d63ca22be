// Heap bugs of programs, found: each mode of tests/progs/heap_bugs (C) and
// heap_bugs_cxx (C++) run preloaded with libdepot.so and linked with
// //:depot_malloc, under debug mode (DEPOTMALLOC=debug, DEPOT_CONF=debug=1),
// the guarded pool (guard_sample=1), the quarantine alone and the always-on
// checks: each buggy run must end in a report matching its regex and a
// non-zero exit, and each correct counterpart ("ok") must run clean under
// the same settings.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;
using depot_test::Runfile;
using depot_test::Sh;

struct Case {
  const char *prog;  // tests/progs/<prog>; "_linked" is added for the linked run
  const char *mode;
  const char *env;   // settings of the run
  const char *report;  // regex the report must match
};

std::string Name(const Case &c) {
  std::string n = std::string(c.prog) + "_" + c.mode + "_" + c.env;
  for (char &ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

const Case kCases[] = {
    // Debug mode.
    {"heap_bugs", "overflow", "DEPOTMALLOC=debug",
     "at tail\\+0: 0x61 \\*\\*\\* OUCH(.|\n)*free\\(0x[0-9a-f]+\\): bad trailing pad byte \\(buffer overflow\\)"},
    {"heap_bugs", "underflow", "DEPOTMALLOC=debug",
     "at p-1: 0x62 \\*\\*\\* OUCH(.|\n)*bad leading pad byte \\(buffer underflow\\)"},
    {"heap_bugs", "double_free", "DEPOTMALLOC=debug",
     "free\\(0x[0-9a-f]+\\): bad ID: the block was freed already \\(double free\\?\\)"},
    {"heap_bugs", "foreign", "DEPOTMALLOC=debug",
     "free\\(0x[0-9a-f]+\\): not allocated by Depot's API 'r'"},
    {"heap_bugs", "interior", "DEPOTMALLOC=debug",
     "free\\(0x[0-9a-f]+\\): an interior pointer"},
    {"heap_bugs", "wrong_family", "DEPOTMALLOC=debug",
     "bad ID: the block belongs to another API \\(API 'm' used, block's API 'r'\\); "
     "a block of malloc's family or DepotMem_Raw\\* passed to DepotMem_\\*"},
    {"heap_bugs", "use_after_free", "DEPOTMALLOC=debug",
     "write after free: block at 0x[0-9a-f]+ \\(48 bytes, domain 'raw', serial "
     "number [0-9]+\\): 1 bytes changed after it was freed, the first at offset "
     "10 \\(bytes 10..10 now: 78\\)"},
    {"heap_bugs", "realloc_overflow", "DEPOTMALLOC=debug",
     "realloc\\(0x[0-9a-f]+\\): bad trailing pad byte \\(buffer overflow\\)"},
    {"heap_bugs", "aligned_overflow", "DEPOTMALLOC=debug",
     "free\\(0x[0-9a-f]+\\): bad trailing pad byte \\(buffer overflow\\)"},
    {"heap_bugs", "overflow", "DEPOT_CONF=debug=1", "bad trailing pad byte"},
    {"heap_bugs", "use_after_free", "DEPOT_CONF=debug=1", "write after free"},
    // Frees of another thread's blocks once the outbox is in use: checked too.
    {"heap_bugs", "remote_overflow", "DEPOT_CONF=debug=1,quarantine_bytes=64k",
     "free\\(0x[0-9a-f]+\\): bad trailing pad byte \\(buffer overflow\\)"},
    {"heap_bugs", "remote_use_after_free", "DEPOT_CONF=debug=1,quarantine_bytes=64k",
     "write after free: block at 0x[0-9a-f]+ \\(48 bytes(.|\n)*first at offset 12"},
    {"heap_bugs_cxx", "overflow", "DEPOTMALLOC=debug", "bad trailing pad byte \\(buffer overflow\\)"},
    {"heap_bugs_cxx", "double_delete", "DEPOTMALLOC=debug", "freed already \\(double free\\?\\)"},
    {"heap_bugs_cxx", "use_after_delete", "DEPOTMALLOC=debug",
     "write after free: block at 0x[0-9a-f]+ \\(40 bytes(.|\n)*first at offset 16"},
    {"heap_bugs_cxx", "array_delete_mismatch", "DEPOTMALLOC=debug", "an interior pointer"},
    // The guarded pool, every allocation sampled.
    {"heap_bugs", "overflow", "DEPOT_CONF=guard_sample=1",
     "guarded pool: heap-buffer-overflow: WRITE at 0x[0-9a-f]+, 0 bytes after the end of the "
     "32-byte block(.|\n)*allocated by thread [0-9]+:\n +#0 0x[0-9a-f]+ in malloc(.|\n)* in main"},
    // guard_sample changed at run time (DepotMem_SetOption) once the pool exists.
    {"heap_bugs", "overflow_after_set", "DEPOT_CONF=guard_sample=1000000000",
     "guarded pool: heap-buffer-overflow: WRITE at 0x[0-9a-f]+, 0 bytes after the end of the "
     "3008-byte block"},
    {"heap_bugs", "underflow", "DEPOT_CONF=guard_sample=1,guard_underflow=underflow",
     "guarded pool: heap-buffer-underflow: WRITE at 0x[0-9a-f]+, 1 bytes before the 32-byte block"},
    {"heap_bugs", "double_free", "DEPOT_CONF=guard_sample=1",
     "guarded pool: double-free in free\\(\\)(.|\n)*called by(.|\n)*allocated by(.|\n)*freed by thread"},
    {"heap_bugs", "interior", "DEPOT_CONF=guard_sample=1",
     "guarded pool: invalid-free in free\\(\\): 0x[0-9a-f]+, at offset 16 in the 64-byte block"},
    {"heap_bugs", "use_after_free", "DEPOT_CONF=guard_sample=1",
     "guarded pool: use-after-free: WRITE at 0x[0-9a-f]+, at offset 10 in the 48-byte "
     "block(.|\n)*freed by thread [0-9]+:\n +#0 0x[0-9a-f]+ in free"},
    {"heap_bugs", "realloc_overflow", "DEPOT_CONF=guard_sample=1", "heap-buffer-overflow"},
    {"heap_bugs_cxx", "overflow", "DEPOT_CONF=guard_sample=1", "heap-buffer-overflow: WRITE"},
    // The second delete runs the destructor on the freed object first.
    {"heap_bugs_cxx", "double_delete", "DEPOT_CONF=guard_sample=1",
     "use-after-free: WRITE at 0x[0-9a-f]+, at offset 0 in the 8-byte block"},
    {"heap_bugs_cxx", "use_after_delete", "DEPOT_CONF=guard_sample=1", "use-after-free: WRITE"},
    {"heap_bugs_cxx", "array_delete_mismatch", "DEPOT_CONF=guard_sample=1", "invalid-free in free"},
    // The quarantine alone, outside debug mode.
    {"heap_bugs", "use_after_free", "DEPOT_CONF=quarantine_bytes=1m",
     "write after free: block at 0x[0-9a-f]+ \\(48 bytes, domain 'raw'\\): 1 bytes changed"},
    {"heap_bugs", "remote_use_after_free", "DEPOT_CONF=quarantine_bytes=64k",
     "write after free: block at 0x[0-9a-f]+ \\(48 bytes, domain 'raw'\\): 1 bytes changed after it was "
     "freed, the first at offset 12"},
    {"heap_bugs", "double_free", "DEPOT_CONF=quarantine_bytes=1m",
     "double free detected in the quarantine \\(a 48-byte block of domain 'raw' freed twice\\)"},
    // realloc of a block the quarantine holds: both of realloc's fast paths
    // (a small block, a page run) would take it for a live one.
    {"heap_bugs", "realloc_after_free", "DEPOT_CONF=quarantine_bytes=1m",
     "realloc\\(0x[0-9a-f]+\\): double free detected in the quarantine \\(a 48-byte block"},
    {"heap_bugs", "realloc_after_free_large", "DEPOT_CONF=quarantine_bytes=1m",
     "realloc\\(0x[0-9a-f]+\\): double free detected in the quarantine \\(a 10[0-9]{4}-byte block"},
    // The same with heap profiling on, whose realloc (depot_prof_realloc)
    // has fast paths of its own: a small block, and a sample (every block
    // is one at prof_sample=1) that it resizes in place.
    {"heap_bugs", "realloc_after_free", "DEPOT_CONF=quarantine_bytes=1m,prof=1",
     "realloc\\(0x[0-9a-f]+\\): double free detected in the quarantine \\(a 48-byte block"},
    {"heap_bugs", "realloc_after_free", "DEPOT_CONF=quarantine_bytes=1m,prof=1,prof_sample=1",
     "realloc\\(0x[0-9a-f]+\\): double free detected in the quarantine"},
    {"heap_bugs", "realloc_after_free_large", "DEPOT_CONF=quarantine_bytes=1m,prof=1,prof_sample=1",
     "realloc\\(0x[0-9a-f]+\\): double free detected in the quarantine \\(a 10[0-9]{4}-byte block"},
    // Always on.
    {"heap_bugs", "double_free", "DEPOT_CONF=verbose=0",
     "free\\(0x[0-9a-f]+\\): double free detected in the thread cache \\(a 48-byte block of "
     "domain 'raw' freed twice\\)"},
    {"heap_bugs_cxx", "double_delete", "DEPOT_CONF=verbose=0", "double free detected in the thread cache"},
    // Remote frees: the second free of the last one, and a block freed again
    // after another remote free (found when the next remote free settles it).
    {"heap_bugs", "remote_double_free", "DEPOT_CONF=verbose=0",
     "free\\(0x[0-9a-f]+\\): double free detected in the thread's outbox \\(a 48-byte block of "
     "domain 'raw' freed twice\\)"},
    {"heap_bugs", "remote_double_free_later", "DEPOT_CONF=verbose=0",
     "free\\(0x[0-9a-f]+\\): double free detected in the thread's outbox \\(a 112-byte block of "
     "domain 'raw' freed twice\\)"},
    // Two threads free one block: the second free finds it free elsewhere
    // (the owner's bin; the other thread's outbox).
    {"heap_bugs", "cross_thread_double_free", "DEPOT_CONF=verbose=0",
     "free\\(0x[0-9a-f]+\\): double free detected in a pool or another thread's cache \\(a "
     "112-byte block of domain 'raw' freed twice\\)"},
    {"heap_bugs", "cross_thread_double_free_back", "DEPOT_CONF=verbose=0",
     "free\\(0x[0-9a-f]+\\): double free detected in a pool or another thread's cache \\(a "
     "112-byte block of domain 'raw' freed twice\\)"},
    {"heap_bugs", "foreign", "DEPOT_CONF=verbose=0", "free\\(0x[0-9a-f]+\\): not allocated by Depot"},
    {"heap_bugs", "wrong_family", "DEPOT_CONF=verbose=0",
     "block of domain 'raw' used with domain 'mem' \\(allocated by malloc's family or "
     "DepotMem_Raw\\*, passed to DepotMem_\\*\\)"},
};

class HeapBug : public ::testing::TestWithParam<Case> {};

void Expect(const Case &c, bool linked) {
  std::string prog = Runfile(std::string("tests/progs/") + c.prog + (linked ? "_linked" : ""));
  std::string run = std::string("env ") + c.env + " " +
                    (linked ? "" : "LD_PRELOAD=" + Runfile("libdepot.so") + " ") + prog +
                    " " + c.mode;
  Result bad = Sh(run);
  EXPECT_NE(bad.status, 0) << run << "\n" << bad.output;
  EXPECT_TRUE(std::regex_search(bad.output, std::regex(c.report))) << run << "\n" << bad.output;
  EXPECT_EQ(bad.output.find("clean"), std::string::npos) << run << "\n" << bad.output;
  Result good = Sh(run + " ok");
  EXPECT_EQ(good.status, 0) << run << " ok\n" << good.output;
  EXPECT_EQ(good.output, "clean\n") << run << " ok";
}

TEST_P(HeapBug, PreloadedIsReported) { Expect(GetParam(), false); }
TEST_P(HeapBug, LinkedIsReported) { Expect(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(Programs, HeapBug, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case> &i) { return Name(i.param); });

}  // namespace

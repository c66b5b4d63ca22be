// The C23 additions of the malloc override: free_sized, free_aligned_sized
// and malloc_good_size, and the debug mode's checks of the sized frees.
#include <gtest/gtest.h>

#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;
using depot_test::Runfile;
using depot_test::Sh;

std::string Prog() { return Runfile("tests/progs/c23_family"); }

TEST(C23, GoodSizeIsTheUsableSizeAndSizedFreesFree) {
  for (const char *env : {"", "DEPOTMALLOC=debug "}) {
    Result r = Sh(std::string("env ") + env + Prog());
    EXPECT_EQ(r.status, 0) << env << r.output;
    EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  }
}

TEST(C23, DebugModeCatchesASizeLargerThanTheBlock) {
  Result r = Sh("env DEPOTMALLOC=debug " + Prog() + " oversize");
  EXPECT_EQ(r.status, 128 + SIGABRT) << r.output;
  EXPECT_NE(r.output.find("free_sized(0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("size larger than the block"), std::string::npos) << r.output;
  // Without debug mode the size is taken on trust.
  r = Sh(Prog() + " oversize");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(C23, DebugModeCatchesAWrongAlignment) {
  Result r = Sh("env DEPOTMALLOC=debug " + Prog() + " misaligned");
  EXPECT_EQ(r.status, 128 + SIGABRT) << r.output;
  EXPECT_NE(r.output.find("block not at the stated alignment"), std::string::npos)
      << r.output;
  // on_bad_free=warn reports, leaks the block and goes on.
  r = Sh("env DEPOTMALLOC=debug DEPOT_CONF=on_bad_free=warn " + Prog() + " misaligned");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("the block is leaked"), std::string::npos) << r.output;
}

}  // namespace

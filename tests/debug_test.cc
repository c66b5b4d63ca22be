// The debug hooks: block layout and fill bytes, and one death test per error
// they catch, matching the report's text.
#include <depot/depot.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

// The core's random free key (alloc/tcache.h; this test links the core).
extern "C" uintptr_t depot_free_key;

namespace {

class Debug : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { DepotMem_SetupDebugHooks(); }
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(Debug, FreshMemoryIsCleanAndCallocIsZero) {
  auto *p = static_cast<unsigned char *>(DepotMem_Malloc(40));
  for (int i = 0; i < 40; i++) EXPECT_EQ(p[i], 0xCD);
  // Header: the size, then the API id and 0xFD pads; trailer: 0xFD pads.
  size_t n;
  memcpy(&n, p - 16, sizeof n);
  EXPECT_EQ(n, 40u);
  EXPECT_EQ(p[-8], 'm');
  for (int i = -7; i < 0; i++) EXPECT_EQ(p[i], 0xFD);
  for (int i = 40; i < 48; i++) EXPECT_EQ(p[i], 0xFD);
  DepotMem_Free(p);
  auto *z = static_cast<unsigned char *>(DepotObject_Calloc(10, 10));
  for (int i = 0; i < 100; i++) EXPECT_EQ(z[i], 0);
  EXPECT_EQ(z[-8], 'o');
  DepotObject_Free(z);
}

TEST_F(Debug, DomainOfKnowsTheProgramsPointerOfADebugBlock) {
  void *m = DepotMem_Malloc(40), *o = DepotObject_Malloc(5000);
  EXPECT_EQ(DepotMem_DomainOf(m), DEPOT_DOMAIN_MEM);
  EXPECT_EQ(DepotMem_DomainOf(o), DEPOT_DOMAIN_OBJ);
  void *big = DepotMem_Malloc(100000);
  EXPECT_EQ(DepotMem_DomainOf(big), DEPOT_DOMAIN_MEM) << "a large debug block";
  EXPECT_EQ(DepotMem_DomainOf(static_cast<char *>(big) + 16), -1);
  DepotMem_Free(big);
  DepotMem_Free(m);
  DepotObject_Free(o);
}

TEST_F(Debug, SerialNumbersIncrease) {
  auto *a = static_cast<unsigned char *>(DepotMem_RawMalloc(8));
  auto *b = static_cast<unsigned char *>(DepotMem_RawMalloc(8));
  size_t sa, sb;
  memcpy(&sa, a + 8 + 8, sizeof sa);
  memcpy(&sb, b + 8 + 8, sizeof sb);
  EXPECT_EQ(a[-8], 'r');
  EXPECT_GT(sb, sa);
  DepotMem_RawFree(a);
  DepotMem_RawFree(b);
}

TEST_F(Debug, ReallocKeepsDataAndGuards) {
  auto *p = static_cast<unsigned char *>(DepotMem_Malloc(10));
  memset(p, 'a', 10);
  p = static_cast<unsigned char *>(DepotMem_Realloc(p, 100));
  for (int i = 0; i < 10; i++) EXPECT_EQ(p[i], 'a');
  for (int i = 10; i < 100; i++) EXPECT_EQ(p[i], 0xCD) << i;
  for (int i = 100; i < 108; i++) EXPECT_EQ(p[i], 0xFD);
  p = static_cast<unsigned char *>(DepotMem_Realloc(p, 3));
  for (int i = 3; i < 11; i++) EXPECT_EQ(p[i], 0xFD);
  DepotMem_Free(p);
}

TEST_F(Debug, RequestedBytesAreTracked) {
  DepotMemStats before{}, after{};
  before.size = after.size = sizeof before;
  ASSERT_EQ(DepotMem_Stats(&before), 0);
  void *p = DepotObject_Malloc(1234);
  ASSERT_EQ(DepotMem_Stats(&after), 0);
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_OBJ].requested_tracked, 1u);
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_OBJ].bytes_requested -
                before.domains[DEPOT_DOMAIN_OBJ].bytes_requested,
            1234u);
  DepotObject_Free(p);
}

TEST_F(Debug, BufferOverflowIsReported) {
  char *p = static_cast<char *>(DepotMem_Malloc(24));
  EXPECT_DEATH(
      {
        p[24] = 'A';
        DepotMem_Free(p);
      },
      "24 bytes originally requested(.|\n)*at tail\\+0: 0x41 \\*\\*\\* OUCH(.|\n)*"
      "free\\(0x[0-9a-f]+\\): bad trailing pad byte \\(buffer overflow\\) "
      "\\(API 'm' used, block's API 'm'\\)");
  DepotMem_Free(p);
}

TEST_F(Debug, BufferUnderflowIsReported) {
  char *p = static_cast<char *>(DepotObject_Malloc(16));
  EXPECT_DEATH(
      {
        p[-1] = 'B';
        DepotObject_Free(p);
      },
      "at p-1: 0x42 \\*\\*\\* OUCH(.|\n)*bad leading pad byte");
  DepotObject_Free(p);
}

TEST_F(Debug, WrongDomainIsReportedAsBadId) {
  void *p = DepotMem_Malloc(16);
  EXPECT_DEATH(DepotObject_Free(p),
               "API 'm'(.|\n)*bad ID: the block belongs to another API "
               "\\(API 'o' used, block's API 'm'\\)");
  EXPECT_DEATH(DepotMem_RawRealloc(p, 64), "realloc.*bad ID");
  DepotMem_Free(p);
}

TEST_F(Debug, DoubleFreeIsReported) {
  void *p = DepotMem_Malloc(48);
  EXPECT_DEATH(
      {
        DepotMem_Free(p);
        DepotMem_Free(p);
      },
      "freed already");
  DepotMem_Free(p);
}

// The free key is random; a process whose key's low byte is the API id
// once reported a double free as a buffer underflow (one run in 128).
// Here the child sets that key before it allocates.
TEST_F(Debug, DoubleFreeIsReportedWhenTheFreeKeyEndsInTheApiId) {
  EXPECT_DEATH(
      {
        depot_free_key = (depot_free_key & ~(uintptr_t)0xff) | 'm';
        void *p = DepotMem_Malloc(48);
        DepotMem_Free(p);
        DepotMem_Free(p);
      },
      "freed already");
}

TEST_F(Debug, ForeignPointerIsReported) {
  alignas(16) static char arena[64];
  EXPECT_DEATH(DepotMem_Free(arena + 32),
               "debug hooks: free\\(0x[0-9a-f]+\\): not allocated by Depot");
}

TEST_F(Debug, DataIsDumped) {
  char *p = static_cast<char *>(DepotMem_Malloc(4));
  memcpy(p, "\x11\x22\x33\x44", 4);
  EXPECT_DEATH(
      {
        p[5] = 0;
        DepotMem_Free(p);
      },
      "The 7 pad bytes at p-7 are FORBIDDENBYTE(.|\n)*made by call #[0-9]+ "
      "to debug malloc/realloc(.|\n)*Data at p: 11 22 33 44");
  DepotMem_Free(p);
}

TEST_F(Debug, SetupTwiceDoesNotStackHooks) {
  DepotMem_SetupDebugHooks();
  DepotMemStats before{}, after{};
  before.size = after.size = sizeof before;
  DepotMem_Stats(&before);
  auto *p = static_cast<unsigned char *>(DepotMem_Malloc(8));
  DepotMem_Stats(&after);
  EXPECT_EQ(p[-8], 'm');
  // Stacked hooks would count the inner block's 8 + 32 bytes as well.
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_MEM].bytes_requested -
                before.domains[DEPOT_DOMAIN_MEM].bytes_requested,
            8u);
  DepotMem_Free(p);
}

}  // namespace

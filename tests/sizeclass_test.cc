// Properties of the size-class table and of the size-to-class map.
#include "alloc/sizeclass.h"

#include <gtest/gtest.h>

namespace {

TEST(SizeClass, TableIsMonotoneAndSixteenByteAligned) {
  EXPECT_EQ(depot_class_size[0], 0u);
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    EXPECT_GT(depot_class_size[c], depot_class_size[c - 1]) << "class " << c;
    EXPECT_EQ(depot_class_size[c] % 16, 0u) << "class " << c;
  }
  EXPECT_GE(depot_class_size[DEPOT_NCLASSES - 1], 32u * 1024u);
  EXPECT_EQ(depot_class_size[DEPOT_NCLASSES - 1], DEPOT_SMALL_MAX);
}

TEST(SizeClass, SixteenByteStepsUpTo128) {
  for (unsigned c = 1; c <= 8; c++) EXPECT_EQ(depot_class_size[c], 16u * c);
}

TEST(SizeClass, FourClassesPerPowerOfTwoAbove128) {
  for (unsigned lo = 128; lo < DEPOT_SMALL_MAX; lo *= 2) {
    unsigned n = 0;
    for (unsigned c = 1; c < DEPOT_NCLASSES; c++)
      if (depot_class_size[c] > lo && depot_class_size[c] <= 2 * lo) n++;
    EXPECT_EQ(n, 4u) << "in (" << lo << ", " << 2 * lo << "]";
  }
}

TEST(SizeClass, EveryRequestMapsToTheSmallestClassThatFits) {
  EXPECT_EQ(depot_size_to_class(0), 0u);
  for (size_t s = 1; s <= DEPOT_SMALL_MAX; s++) {
    unsigned c = depot_size_to_class(s);
    ASSERT_GE(c, 1u);
    ASSERT_LT(c, DEPOT_NCLASSES);
    ASSERT_GE(depot_class_size[c], s) << "size " << s;
    ASSERT_LT(depot_class_size[c - 1], s) << "size " << s;
  }
}

// malloc's fast path reads the class times 16 (its bin's byte offset).
TEST(SizeClass, BinOffsetTableIsSixteenTimesTheClassTable) {
  for (unsigned k = 0; k <= DEPOT_CLASS_TABLE_MAX / 16; k++)
    EXPECT_EQ(depot_class16_of_16ths[k], 16u * depot_class_of_16ths[k]) << k;
  for (size_t size = 129; size <= DEPOT_CLASS_TABLE_MAX; size++)
    EXPECT_EQ(depot_class16_of_16ths[(size + 15) >> 4],
              16u * depot_size_to_class(size))
        << size;
}

TEST(SizeClass, TheSecondTableContinuesWhereTheFirstStops) {
  // The 16-byte table covers up to 1024 bytes; the 256-byte one must
  // continue exactly where it stops.
  EXPECT_EQ(depot_size_to_class(1024), depot_size_to_class(1023));
  EXPECT_EQ(depot_size_to_class(1025), depot_size_to_class(1024) + 1);
}

TEST(SizeClass, InternalFragmentationBelowOneQuarterAbove128) {
  double worst = 0;
  for (size_t s = 129; s <= DEPOT_SMALL_MAX; s++) {
    double waste = double(depot_class_size[depot_size_to_class(s)] - s) / s;
    if (waste > worst) worst = waste;
  }
  EXPECT_LT(worst, 0.25);
  EXPECT_GT(worst, 0.24);  // the bound is tight, not vacuous
}

TEST(SizeClass, SpansHoldEnoughBlocksAndWasteLittle) {
  depot_sizeclass_init(32);
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    const depot_class_info_t &ci = depot_class_info[c];
    size_t span = size_t(ci.span_pages) * DEPOT_PAGE_SIZE;
    EXPECT_GE(ci.capacity, 8u) << "class " << c;
    EXPECT_EQ(ci.capacity, span / depot_class_size[c]);
    EXPECT_LE(span - size_t(ci.capacity) * depot_class_size[c], span / 16);
    EXPECT_GE(ci.batch, 2u);
    EXPECT_LE(ci.batch, 32u);
  }
  depot_sizeclass_init(8);
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++)
    EXPECT_LE(depot_class_info[c].batch, 8u);
}

TEST(SizeClass, DividesAgreesWithTheRemainder) {
  // The multiply that realloc uses to check that a pointer starts a block:
  // every offset inside a segment (4 MiB: spans never reach past one), for
  // every class; then the 32-bit edges.
  depot_sizeclass_init(32);
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    uint32_t size = depot_class_size[c];
    for (uint32_t x = 0; x < (4u << 20); x += (x % size < 2 ? 1 : 7))
      ASSERT_EQ(depot_class_divides(c, x), x % size == 0)
          << "class " << c << " offset " << x;
    for (uint32_t x : {UINT32_MAX, UINT32_MAX - 1, UINT32_MAX / size * size,
                       UINT32_MAX / size * size - 1})
      ASSERT_EQ(depot_class_divides(c, x), x % size == 0)
          << "class " << c << " offset " << x;
  }
}

}  // namespace

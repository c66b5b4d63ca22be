/* sizeclass.c: the class table and each class's span and batch sizes. */
#include "alloc/sizeclass.h"

/* One doubling (2^k, 2^(k+1)] in four equal steps. */
#define DEPOT_DOUBLING(k)                                               \
  (1u << (k)) + 1 * (1u << ((k)-2)), (1u << (k)) + 2 * (1u << ((k)-2)), \
      (1u << (k)) + 3 * (1u << ((k)-2)), (1u << (k)) + 4 * (1u << ((k)-2))

/* clang-format off */
const uint32_t depot_class_size[DEPOT_NCLASSES] = {
    0,  16, 32, 48, 64, 80, 96, 112, 128,
    DEPOT_DOUBLING(7),  DEPOT_DOUBLING(8),  DEPOT_DOUBLING(9),
    DEPOT_DOUBLING(10), DEPOT_DOUBLING(11), DEPOT_DOUBLING(12),
    DEPOT_DOUBLING(13), DEPOT_DOUBLING(14),
};
/* clang-format on */
_Static_assert(sizeof(depot_class_size) / sizeof(depot_class_size[0]) ==
                   DEPOT_NCLASSES,
               "class table and DEPOT_NCLASSES disagree");

/* The class of size s (s <= DEPOT_SMALL_MAX), as a constant expression for
 * the tables below: s in 16-byte steps up to 128; above, s lies in the
 * doubling (2^K, 2^(K+1)], K = DOUBLING(s) >= 7, whose classes start at
 * 9 + (K - 7) * 4, and (s - 1) >> (K - 2) is 4 + the step in it. */
/* clang-format off */
#define DOUBLING(s)                                                     \
  ((s) <= 256 ? 7 : (s) <= 512 ? 8 : (s) <= 1024 ? 9 : (s) <= 2048 ? 10 \
   : (s) <= 4096 ? 11 : (s) <= 8192 ? 12 : (s) <= 16384 ? 13 : 14)
#define CLASS_OF_SIZE(s)                     \
  ((s) <= 128 ? ((s) + 15) / 16             \
              : 4 * DOUBLING(s) - 23 + (((s) - 1) >> (DOUBLING(s) - 2)))
#define ROW8(F, k) \
  F(k), F(k + 1), F(k + 2), F(k + 3), F(k + 4), F(k + 5), F(k + 6), F(k + 7)
/* clang-format on */

/* depot_class_of_16ths[k]: the class of 16 * k bytes, k <= 64. */
#define CLASS_OF_16THS(k) CLASS_OF_SIZE(16 * (k))
#define CLASS16_OF_16THS(k) (CLASS_OF_16THS(k) * 16)
/* clang-format off */
#define TABLE(F)                                                       \
  ROW8(F, 0), ROW8(F, 8), ROW8(F, 16), ROW8(F, 24), ROW8(F, 32),       \
      ROW8(F, 40), ROW8(F, 48), ROW8(F, 56), F(64)
/* clang-format on */
const uint8_t depot_class_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1] = {
    TABLE(CLASS_OF_16THS)};
const uint16_t depot_class16_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1] = {
    TABLE(CLASS16_OF_16THS)};

/* depot_class_of_256ths[i]: the class of the sizes in (256 * i,
 * 256 * (i + 1)], that of 256 * (i + 1) since every class boundary above
 * 1 KiB is a multiple of 256. */
#define CLASS_OF_256THS(i) CLASS_OF_SIZE(256 * ((i) + 1))
/* clang-format off */
const uint8_t depot_class_of_256ths[DEPOT_SMALL_MAX / 256] = {
    ROW8(CLASS_OF_256THS, 0),   ROW8(CLASS_OF_256THS, 8),
    ROW8(CLASS_OF_256THS, 16),  ROW8(CLASS_OF_256THS, 24),
    ROW8(CLASS_OF_256THS, 32),  ROW8(CLASS_OF_256THS, 40),
    ROW8(CLASS_OF_256THS, 48),  ROW8(CLASS_OF_256THS, 56),
    ROW8(CLASS_OF_256THS, 64),  ROW8(CLASS_OF_256THS, 72),
    ROW8(CLASS_OF_256THS, 80),  ROW8(CLASS_OF_256THS, 88),
    ROW8(CLASS_OF_256THS, 96),  ROW8(CLASS_OF_256THS, 104),
    ROW8(CLASS_OF_256THS, 112), ROW8(CLASS_OF_256THS, 120),
};
/* clang-format on */

depot_class_info_t depot_class_info[DEPOT_NCLASSES];
uint64_t depot_class_div_magic[DEPOT_NCLASSES];

/* Spans are at least 128 KiB and hold at least 16 blocks, then grow page by
 * page until the unusable tail is at most 1/16 of the span.  (Bigger spans
 * mean fewer trips to the arena's lock when many threads grow at once; only
 * the pages touched cost memory.) */
#define SPAN_MIN_BYTES (128u * 1024u)
#define SPAN_MIN_BLOCKS 16u
#define BATCH_BYTES (64u * 1024u)

void depot_sizeclass_init(unsigned batch_max) {
  if (batch_max < 2) batch_max = 2;
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    size_t size = depot_class_size[c];
    size_t bytes = size * SPAN_MIN_BLOCKS;
    if (bytes < SPAN_MIN_BYTES) bytes = SPAN_MIN_BYTES;
    size_t pages = (bytes + DEPOT_PAGE_SIZE - 1) / DEPOT_PAGE_SIZE;
    while ((pages * DEPOT_PAGE_SIZE) % size > pages * DEPOT_PAGE_SIZE / 16)
      pages++;
    unsigned batch = (unsigned)(BATCH_BYTES / size);
    if (batch > batch_max) batch = batch_max;
    if (batch < 2) batch = 2;
    depot_class_info[c].span_pages = (uint16_t)pages;
    depot_class_info[c].capacity = (uint32_t)(pages * DEPOT_PAGE_SIZE / size);
    depot_class_info[c].batch = (uint16_t)batch;
    depot_class_div_magic[c] = UINT64_MAX / size + 1; /* ceil(2^64 / size) */
  }
}

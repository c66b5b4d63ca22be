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

/* Class of a size of k 16-byte units, k <= 64: step 16 up to 128 bytes
 * (class k), step 32 up to 256, step 64 up to 512, step 128 up to 1024. */
#define CLASS_OF_16THS(k)              \
  ((k) <= 8    ? (k)                   \
   : (k) <= 16 ? 8 + ((k)-8 + 1) / 2   \
   : (k) <= 32 ? 12 + ((k)-16 + 3) / 4 \
               : 16 + ((k)-32 + 7) / 8)
#define CLASS16_OF_16THS(k) (CLASS_OF_16THS(k) * 16)
/* clang-format off */
#define ROW8(F, k) \
  F(k), F(k + 1), F(k + 2), F(k + 3), F(k + 4), F(k + 5), F(k + 6), F(k + 7)
#define TABLE(F)                                                       \
  ROW8(F, 0), ROW8(F, 8), ROW8(F, 16), ROW8(F, 24), ROW8(F, 32),       \
      ROW8(F, 40), ROW8(F, 48), ROW8(F, 56), F(64)
/* clang-format on */
const uint8_t depot_class_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1] = {
    TABLE(CLASS_OF_16THS)};
const uint16_t depot_class16_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1] = {
    TABLE(CLASS16_OF_16THS)};

/* Class of the sizes in (256 * (k - 1), 256 * k], k > 4: the class of
 * 256 * k, which lies in the doubling (2^K, 2^(K+1)], K >= 10, whose
 * classes start at 9 + (K - 7) * 4, (256 * k - 1) >> (K - 2) being 4 + the
 * step in it.  (k <= 4: not used.) */
/* clang-format off */
#define DOUBLING_OF_256THS(k) \
  ((k) <= 8 ? 10 : (k) <= 16 ? 11 : (k) <= 32 ? 12 : (k) <= 64 ? 13 : 14)
#define CLASS_OF_256THS(k)                                  \
  ((k) <= 4 ? 0                                             \
            : 4 * DOUBLING_OF_256THS(k) - 23 +             \
                  ((256 * (k) - 1) >> (DOUBLING_OF_256THS(k) - 2)))
#define ROW8_256(k)                                                   \
  CLASS_OF_256THS(k + 1), CLASS_OF_256THS(k + 2), CLASS_OF_256THS(k + 3), \
      CLASS_OF_256THS(k + 4), CLASS_OF_256THS(k + 5),                   \
      CLASS_OF_256THS(k + 6), CLASS_OF_256THS(k + 7), CLASS_OF_256THS(k + 8)
const uint8_t depot_class_of_256ths[DEPOT_SMALL_MAX / 256] = {
    ROW8_256(0),  ROW8_256(8),  ROW8_256(16),  ROW8_256(24),
    ROW8_256(32), ROW8_256(40), ROW8_256(48),  ROW8_256(56),
    ROW8_256(64), ROW8_256(72), ROW8_256(80),  ROW8_256(88),
    ROW8_256(96), ROW8_256(104), ROW8_256(112), ROW8_256(120),
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

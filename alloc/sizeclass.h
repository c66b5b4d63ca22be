/* sizeclass.h: the size classes of small blocks and the constant-time map
 * from a request size to its class.
 * Classes step by 16 bytes up to 128, then by one quarter of the power of
 * two below them (4 classes per doubling, as jemalloc's and mimalloc's) up
 * to DEPOT_SMALL_MAX.  So every class size is a multiple of 16, and above
 * 128 bytes no request wastes 25% of its own size or more.  Class 0 means
 * "no class": its cache bins are always empty, which lets the fast path
 * treat a zero-byte request as a cache miss.
 *   class 1..8   : 16, 32, ..., 128
 *   class 9..12  : 160, 192, 224, 256      (step 32)
 *   class 13..16 : 320, 384, 448, 512      (step 64)
 *   ...
 *   class 37..40 : 20480, ..., 32768       (step 4096)
 * Why 4 and not 8 per doubling: each class a thread uses keeps pages of
 * its own partly filled (the span it carves, the blocks it caches), so a
 * program of many sizes and few blocks of each pays per class.  With 8 per
 * doubling (72 classes) the histogram workloads (bench/workloads.c) peaked
 * 13-15% higher (README, 2026-12-01): the 12.5% bound on waste saved less
 * than the extra partly filled pages cost.
 */
#ifndef DEPOT_ALLOC_SIZECLASS_H
#define DEPOT_ALLOC_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEPOT_SMALL_MAX 32768u
#define DEPOT_NCLASSES 41u /* including class 0 */
depot_static_assert(DEPOT_NCLASSES == 1 + 8 + 4 * 8 && DEPOT_SMALL_MAX == 32768,
                    "40 classes: 8 up to 128 bytes, 4 per doubling to 32 KiB");

/* Block size of every class; depot_class_size[0] == 0. */
extern const uint32_t depot_class_size[DEPOT_NCLASSES];

/* Class of every size up to 1024, indexed by the size in 16-byte units
 * rounded up: depot_class_of_16ths[(size + 15) >> 4]. */
#define DEPOT_CLASS_TABLE_MAX 1024u
extern const uint8_t depot_class_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1];
/* The same, times 16: a class's bin offset from its domain's first bin in
 * a thread cache (16-byte bins), read by malloc's fast path without a
 * shift. */
extern const uint16_t depot_class16_of_16ths[DEPOT_CLASS_TABLE_MAX / 16 + 1];

/* Class of every size from 1025 to DEPOT_SMALL_MAX, indexed by the size in
 * 256-byte units rounded up, less one: depot_class_of_256ths[(size - 1) >>
 * 8] (every class boundary above 1 KiB is a multiple of 256).  Its first
 * four entries (sizes up to 1 KiB, which the first table serves) are not
 * read. */
extern const uint8_t depot_class_of_256ths[DEPOT_SMALL_MAX / 256];

/* Maps a size in [0, DEPOT_SMALL_MAX] to its class (0 for size 0).
 * Constant time: a table lookup (65 entries up to 1 KiB, 128 above). */
depot_inline unsigned depot_size_to_class(size_t size) {
  if (depot_likely(size <= DEPOT_CLASS_TABLE_MAX))
    return depot_class_of_16ths[(size + 15) >> 4];
  return depot_class_of_256ths[(size - 1) >> 8];
}

/* The smallest class of at least size bytes whose blocks are all aligned
 * to align (spans start on a page and blocks sit at multiples of the class
 * size, so a class size that is a multiple of align will do), or 0 if none.
 * REQUIRES: size <= DEPOT_SMALL_MAX, align a power of two <= a page. */
depot_inline unsigned depot_aligned_class(size_t size, size_t align) {
  for (unsigned c = size ? depot_size_to_class(size) : 1; c < DEPOT_NCLASSES;
       c++)
    if (depot_class_size[c] % align == 0) return c;
  return 0;
}

/* Per-class layout chosen at start-up (depot_sizeclass_init). */
typedef struct {
  uint16_t span_pages; /* pages in a span of this class */
  uint16_t batch;      /* blocks moved between tcache and central at once */
  uint32_t capacity;   /* blocks per span */
} depot_class_info_t;

extern depot_class_info_t depot_class_info[DEPOT_NCLASSES];

/* For each class c > 0, ceil(2^64 / its size), set by
 * depot_sizeclass_init: a 32-bit x is a multiple of the size exactly when
 * x * magic, modulo 2^64, is below magic (Lemire, Kaser and Kurz, "Faster
 * remainder by direct computation", 2019): a multiply and a compare where
 * x % size costs a division (some 25 cycles).  0 for class 0. */
extern uint64_t depot_class_div_magic[DEPOT_NCLASSES];

/* Whether x is a multiple of class c's size.  REQUIRES: 0 < c <
 * DEPOT_NCLASSES, depot_sizeclass_init has run. */
depot_inline int depot_class_divides(unsigned c, uint32_t x) {
  uint64_t m = depot_class_div_magic[c];
  return (uint64_t)x * m <= m - 1;
}

/* Fills depot_class_info and depot_class_div_magic; batch sizes never
 * exceed batch_max (>= 2). */
void depot_sizeclass_init(unsigned batch_max);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_SIZECLASS_H */

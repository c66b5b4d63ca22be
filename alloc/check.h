/* check.h: the core's assertions, in three tiers by cost.
 *
 *   DEPOT_CHECK(e)           cheap (a compare on a slow path); on in every
 *                            build, release included.
 *   DEPOT_CHECK_INTERNAL(e)  internal consistency on slow paths (walks a
 *                            few fields, counts a short list); on with
 *                            DEPOT_CHECK_LEVEL >= 2 (--config=debug).
 *   DEPOT_CHECK_EXPENSIVE(e) whole-structure walks (depot_check_heap after
 *                            operations, list walks per call); on with
 *                            DEPOT_CHECK_LEVEL >= 3 (--config=debug).
 *
 * DEPOT_CHECK_LEVEL defaults to 1.  A tier that is off still type-checks its
 * expression (inside sizeof, never evaluated), so a check cannot rot in the
 * builds that do not run it.  No check is ever placed on the cache-hit fast
 * paths of alloc.h. */
#ifndef DEPOT_ALLOC_CHECK_H
#define DEPOT_ALLOC_CHECK_H

#include "alloc/common.h"
#include "alloc/log.h"

#ifndef DEPOT_CHECK_LEVEL
#define DEPOT_CHECK_LEVEL 1
#endif

#define DEPOT_CHECK_ON_(e) \
  (depot_likely(e) ? (void)0 : depot_check_failed(__FILE__, __LINE__, #e))
#define DEPOT_CHECK_OFF_(e) ((void)sizeof(!(e)))

#if DEPOT_CHECK_LEVEL >= 1
#define DEPOT_CHECK(e) DEPOT_CHECK_ON_(e)
#else
#define DEPOT_CHECK(e) DEPOT_CHECK_OFF_(e)
#endif
#if DEPOT_CHECK_LEVEL >= 2
#define DEPOT_CHECK_INTERNAL(e) DEPOT_CHECK_ON_(e)
#else
#define DEPOT_CHECK_INTERNAL(e) DEPOT_CHECK_OFF_(e)
#endif
#if DEPOT_CHECK_LEVEL >= 3
#define DEPOT_CHECK_EXPENSIVE(e) DEPOT_CHECK_ON_(e)
#else
#define DEPOT_CHECK_EXPENSIVE(e) DEPOT_CHECK_OFF_(e)
#endif

/* Whether the expensive tier runs (for code that would compute something
 * only to check it). */
#define DEPOT_CHECKING_EXPENSIVE (DEPOT_CHECK_LEVEL >= 3)

#endif /* DEPOT_ALLOC_CHECK_H */

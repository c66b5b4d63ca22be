/* valgrind.h: Valgrind client requests, so that memcheck understands Depot's
 * blocks: leaks, reads of uninitialised memory and uses after free in the
 * program are reported against the program's code.  Compiled in only when
 * asked (DEPOT_VALGRIND, from --define=depot_valgrind=1); otherwise every
 * macro is empty.
 *
 * The protocol: a block handed out is a "malloc-like" block of the size the
 * program asked for; a freed block is "free-like" (no access) except its
 * first word, which Depot's free lists use and keep defined. */
#ifndef DEPOT_ALLOC_VALGRIND_H
#define DEPOT_ALLOC_VALGRIND_H

#ifdef DEPOT_VALGRIND
#include <valgrind/memcheck.h>
#define DEPOT_VG 1
#define DEPOT_VG_ALLOCATED(p, size, zeroed) \
  VALGRIND_MALLOCLIKE_BLOCK((p), (size), 0, (zeroed))
#define DEPOT_VG_FREED(p)                               \
  do {                                                  \
    VALGRIND_FREELIKE_BLOCK((p), 0);                    \
    VALGRIND_MAKE_MEM_DEFINED((p), 2 * sizeof(void *)); \
  } while (0)
#define DEPOT_VG_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define DEPOT_VG_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
/* Pages that start a new life (a span of a new class): contents unknown. */
#define DEPOT_VG_FORGET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#else
#define DEPOT_VG 0
#define DEPOT_VG_ALLOCATED(p, size, zeroed) ((void)0)
#define DEPOT_VG_FREED(p) ((void)0)
#define DEPOT_VG_QUIET_BEGIN() ((void)0)
#define DEPOT_VG_QUIET_END() ((void)0)
#define DEPOT_VG_FORGET(p, n) ((void)0)
#endif

#endif /* DEPOT_ALLOC_VALGRIND_H */

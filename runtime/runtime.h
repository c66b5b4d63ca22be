/* runtime.h: what the files of runtime/ share, listed by the file that
 * defines it.  Not installed; users include <depot/depot.h>. */
#ifndef DEPOT_RUNTIME_RUNTIME_H
#define DEPOT_RUNTIME_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/common.h"
#include "depot/depot.h"

/* "init.c" */
/* Reads the configuration and the environment and sets the domains up, once.
 * Every public entry point calls it (directly or through a domain's start-up
 * trampoline) before its first use. */
void depot_runtime_init(void);

/* "domains.c" */
/* Depot's own allocator of a domain (what the domain starts with). */
void depot_domain_default(unsigned domain, DepotMemAllocatorEx *out);
/* Whether a allocates from Depot's domain `domain` directly. */
int depot_domain_is_default(unsigned domain, const DepotMemAllocatorEx *a);
/* A domain's current allocator, read or replaced without start-up (the
 * runtime's own start-up uses these). */
void depot_domain_get(unsigned domain, DepotMemAllocatorEx *out);
void depot_domain_set(unsigned domain, const DepotMemAllocatorEx *a);
/* Routes all three domains to the C library (DEPOTMALLOC=malloc). */
void depot_domains_use_libc(void);

/* "stats.c" */
/* Fork safety: the report lock (lock 1 of alloc/README.md's order). */
void depot_stats_prefork(void);
void depot_stats_postfork(void);
/* stats_signal: prints the report to stderr whenever sig arrives (a
 * reporter thread; the handler only wakes it). */
void depot_stats_signal_install(int sig);

/* "debug.c" */
/* Installs the debug hooks over every domain's current allocator. */
void depot_debug_install(void);
/* Whether the debug hooks sit on domain; if so, the bytes requested by its
 * live blocks. */
int depot_debug_requested(unsigned domain, uint64_t *bytes);
/* Debug mode for the C library's family (override.c): whether it is on
 * (debug=1 or DEPOTMALLOC=debug; starts the core), and the family's
 * functions making and checking debug blocks of API 'r'. */
int depot_debug_c_mode(void);
void *depot_debug_c_malloc(size_t n);
void *depot_debug_c_calloc(size_t nelem, size_t elsize);
void *depot_debug_c_realloc(void *p, size_t n);
void *depot_debug_c_aligned(size_t align, size_t n); /* align: a power of 2 */
void depot_debug_c_free(void *p);
size_t depot_debug_c_usable(void *p);

/* "prof.c" */
/* With prof=1: the profiles at exit and the prof_signal handler. */
void depot_prof_runtime_start(void);

#endif /* DEPOT_RUNTIME_RUNTIME_H */

/* quarantine.h: freed blocks held back (quarantine_bytes).  A block entering
 * the quarantine is filled with DEPOT_QUARANTINE_FILL (its first word with
 * a tag naming it), and leaves, oldest first, when the quarantine holds more
 * than its budget in bytes or entries; on leaving it is checked, and a
 * changed byte (a write after free) is reported with the block's address,
 * size, serial number (debug mode), the offset of the first changed byte and
 * what was written.  The caller then really frees it.
 *
 * The quarantine is on in debug mode unless quarantine_bytes=0, and outside
 * debug mode when quarantine_bytes is set explicitly (not by default).
 * While it or debug mode is on, thread caches hold nothing (see tcache.h's
 * depot_tcache_bypass), so that every free reaches the slow path.
 *
 * Synchronisation: quarantine_lock (lock 11 of alloc/README.md, takes
 * nothing); filling and checking happen outside it. */
#ifndef DEPOT_ALLOC_QUARANTINE_H
#define DEPOT_ALLOC_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/common.h"

#define DEPOT_QUARANTINE_FILL 0xDD

typedef struct {
  void *block;     /* the core's block */
  size_t bytes;    /* bytes filled from block (its usable size) */
  size_t user_off; /* where the program's pointer was (debug mode: 16) */
  size_t size;     /* bytes the program asked for (or usable) */
  uint64_t serial; /* debug mode's serial number, 0 if none */
  unsigned domain;
} depot_qentry_t;

/* Nonzero while the quarantine is on (set once, at start-up). */
extern depot_hidden int depot_quarantine_on;

/* Reads the options; called by the core's start-up. */
void depot_quarantine_init(void);

/* Whether a block of that many bytes is held (larger ones are freed at
 * once: a quarter of the budget at most). */
int depot_quarantine_takes(size_t bytes);

/* Fills e->block and holds it.  Then moves the blocks that must leave
 * (up to max) to out and returns how many; call again with e == NULL while
 * it returns max. */
unsigned depot_quarantine_put(const depot_qentry_t *e, depot_qentry_t *out,
                              unsigned max);

/* Moves up to max held blocks, oldest first, to out whatever the budget
 * (trimming); returns how many. */
unsigned depot_quarantine_flush(depot_qentry_t *out, unsigned max);

/* Whether block is held now (its tag matches and the queue has it). */
int depot_quarantine_holds(const void *block);

/* Checks a block that left: reports a write after free and aborts (or
 * warns, per on_bad_free) if any byte changed. */
void depot_quarantine_check(const depot_qentry_t *e);

/* Checks every block held now (at exit: a write after free to a block
 * that never left is reported too). */
void depot_quarantine_check_all(void);

/* Fork safety (init.c): the quarantine's lock. */
void depot_quarantine_prefork(void);
void depot_quarantine_postfork(void);

#endif /* DEPOT_ALLOC_QUARANTINE_H */

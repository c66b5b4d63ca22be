/* arena.c: segments and spans of pages for one arena shard of a NUMA node
 * (see arena.h).  Everything here runs under the arena's lock. */
#define _GNU_SOURCE
#include "alloc/arena.h"

#include <errno.h>
#include <string.h>

#include "alloc/check.h"
#include "alloc/limit.h"
#include "alloc/os.h"
#include "alloc/region.h"

__thread unsigned char depot_arena_contended
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

void depot_arena_init(depot_arena_t *a, unsigned node, size_t reserve_bytes,
                      uint32_t purge_delay_ms, int purge_lazy) {
  memset(a, 0, sizeof *a);
  pthread_mutex_init(&a->lock, NULL);
  a->node = node;
  if (reserve_bytes < DEPOT_SEGMENT_SIZE) reserve_bytes = DEPOT_SEGMENT_SIZE;
  a->reserve_bytes = reserve_bytes & ~(size_t)DEPOT_SEGMENT_MASK;
  a->purge_delay_ms = purge_delay_ms;
  a->purge_lazy = purge_lazy;
}

/* ---- the purger's doorbell ------------------------------------------------ */

_Atomic uint32_t depot_purge_bell;
_Atomic int depot_purge_asleep;
_Atomic int depot_purge_wanted;

void depot_purge_ring(void) {
  if (!depot_load_relaxed(&depot_purge_wanted))
    depot_store_relaxed(&depot_purge_wanted, 1);
  /* The purger sets asleep before it looks at the arenas under their locks
   * for the last time, and the ringer rings with the arena's lock held (or
   * the huge lock, which the purger also takes), so one of the two sees
   * the other: no wake-up is lost. */
  if (depot_load_relaxed(&depot_purge_asleep) &&
      atomic_exchange_explicit(&depot_purge_asleep, 0, memory_order_relaxed)) {
    depot_add_relaxed(&depot_purge_bell, 1);
    depot_os_wake(&depot_purge_bell);
  }
}

/* ---- the held figure (arena lock held) ------------------------------------ */

/* Brings limit.h's figure up to date with this arena's pages. */
static void sync_held(depot_arena_t *a) {
  size_t h =
      a->nsegments * DEPOT_SEGMENT_PAGES - (a->free_pages - a->dirty_pages);
  if (h > a->held_pages)
    depot_limit_grow((h - a->held_pages) << DEPOT_PAGE_SHIFT);
  else if (h < a->held_pages)
    depot_limit_shrink((a->held_pages - h) << DEPOT_PAGE_SHIFT);
  a->held_pages = h;
}

/* Charges npages of growth in advance; 0, or -1 at the memory limit. */
static int charge(depot_arena_t *a, size_t npages) {
  if (npages == 0) return 0;
  if (depot_limit_charge(npages << DEPOT_PAGE_SHIFT) != 0) return -1;
  a->held_pages += npages;
  return 0;
}

/* ---- free lists by length (arena lock held) ---------------------------------------- */

static unsigned free_list_of(size_t npages) {
  return npages < DEPOT_ARENA_FREE_LISTS ? (unsigned)npages : 0;
}

static void set_pagemap(depot_span_t *s, unsigned first, unsigned last) {
  depot_segment_t *seg = depot_segment_base((uintptr_t)s);
  for (unsigned i = first; i <= last; i++)
    depot_store_relaxed(&seg->pagemap[i], s);
}

static void free_list_insert(depot_arena_t *a, depot_span_t *s) {
  s->state = DEPOT_SPAN_FREE;
  unsigned last = s->start_page + s->npages - 1u;
  set_pagemap(s, s->start_page, s->start_page);
  set_pagemap(s, last, last);
  depot_span_t **head = &a->free_lists[free_list_of(s->npages)];
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
  a->free_pages += s->npages;
  if (s->dirty) a->dirty_pages += s->npages;
}

static void free_list_remove(depot_arena_t *a, depot_span_t *s) {
  if (s->prev) s->prev->next = s->next;
  else a->free_lists[free_list_of(s->npages)] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  a->free_pages -= s->npages;
  if (s->dirty) a->dirty_pages -= s->npages;
}

/* Makes start's slot describe a free span of npages and files it; a dirty
 * one is due for purging purge_delay_ms after dirty_ms. */
static depot_span_t *make_free(depot_arena_t *a, depot_segment_t *seg,
                               unsigned start, unsigned npages, int dirty,
                               uint32_t dirty_ms) {
  depot_span_t *s = depot_span_slot(seg, start);
  memset(s, 0, sizeof *s);
  s->start_page = (uint16_t)start;
  s->npages = (uint16_t)npages;
  s->dirty = (uint8_t)dirty;
  s->dirty_ms = dirty_ms;
  free_list_insert(a, s);
  if (dirty) {
    uint32_t due = dirty_ms + a->purge_delay_ms;
    if (!a->purge_pending || depot_ms_before(due, a->next_purge_ms))
      a->next_purge_ms = due;
    a->purge_pending = 1;
    depot_purge_ring();
  }
  return s;
}

/* Purges the dirty free span s (lock held).  Returns 0, or -1 where the OS
 * refused (s stays dirty: still usable, merely still resident). */
static int purge_span(depot_arena_t *a, depot_span_t *s) {
  if (depot_os_decommit(depot_span_start(s),
                        (size_t)s->npages << DEPOT_PAGE_SHIFT,
                        a->purge_lazy) != 0)
    return -1;
  s->dirty = 0;
  a->dirty_pages -= s->npages;
  a->purged_pages += s->npages;
  return 0;
}

/* Files [start, end) of seg as one dirty free span (dirty since dirty_ms):
 * pages just freed, joined with the free neighbours absorbed into them, of
 * which `clean` pages had been purged.  A free span is dirty or clean as a
 * whole, so those pages now count as held (limit.h's upper bound) and a
 * later cut from the span charges nothing for them: they are charged here,
 * as growth.  Where the charge fails (the memory limit), the whole span is
 * purged now instead, which leaves nothing to charge.  (Until 2026-12-02
 * they were counted without a charge: freeing a page next to purged runs
 * raised the held figure past the hard limit, and the purged pages were
 * then handed out, and faulted in, with no charge.)  Only where the OS
 * refuses to purge does the span stay dirty uncharged, its pages counted by
 * sync_held.  Lock held. */
static void free_run(depot_arena_t *a, depot_segment_t *seg, unsigned start,
                     unsigned end, size_t clean, uint32_t dirty_ms) {
  depot_span_t *s = make_free(a, seg, start, end - start, 1, dirty_ms);
  if (clean && charge(a, clean) != 0) (void)purge_span(a, s);
}

/* Purges the dirty free spans that have been free for the delay (all of
 * them with force), and notes when the next one falls due (lock held).
 * Stops once budget pages are purged, leaving the rest pending and due
 * now; returns the pages purged. */
static size_t purge_budget_locked(depot_arena_t *a, uint32_t now, int force,
                                  size_t budget) {
  size_t done = 0;
  a->purge_pending = 0;
  for (unsigned b = 0; b < DEPOT_ARENA_FREE_LISTS; b++) {
    for (depot_span_t *s = a->free_lists[b]; s; s = s->next) {
      if (!s->dirty) continue;
      uint32_t due = s->dirty_ms + a->purge_delay_ms;
      if (!force && depot_ms_before(now, due)) {
        if (!a->purge_pending || depot_ms_before(due, a->next_purge_ms))
          a->next_purge_ms = due;
        a->purge_pending = 1;
        continue;
      }
      if (done >= budget) { /* the rest on the next round */
        a->next_purge_ms = now;
        a->purge_pending = 1;
        return done;
      }
      if (purge_span(a, s) != 0)
        continue; /* still usable, merely still resident */
      done += s->npages;
    }
  }
  return done;
}

static void purge_locked(depot_arena_t *a, uint32_t now, int force) {
  purge_budget_locked(a, now, force, SIZE_MAX);
}

/* Purges what has fallen due, if anything has (lock held). */
static void purge_if_due(depot_arena_t *a) {
  if (!a->purge_pending) return;
  uint32_t now = depot_os_now_ms();
  if (!depot_ms_before(now, a->next_purge_ms)) purge_locked(a, now, 0);
}

/* ---- segments ------------------------------------------------------------ */

/* A segment from the region, else from this arena's own reservations. */
static depot_segment_t *segment_carve(depot_arena_t *a) {
  depot_segment_t *seg;
  int err = depot_region_take(&seg);
  if (err == 0) return seg;
  if (err != ENOSPC) return NULL;
  if (a->res_cur == a->res_end) {
    void *r;
    size_t len = a->reserve_bytes;
    if (depot_os_reserve(len, DEPOT_SEGMENT_SIZE, &r) != 0) {
      len = DEPOT_SEGMENT_SIZE; /* address space is short: one at a time */
      if (depot_os_reserve(len, DEPOT_SEGMENT_SIZE, &r) != 0) return NULL;
    }
    a->res_cur = r;
    a->res_end = a->res_cur + len;
  }
  seg = (depot_segment_t *)a->res_cur;
  if (depot_os_commit(seg, DEPOT_SEGMENT_SIZE) != 0) return NULL;
  a->res_cur += DEPOT_SEGMENT_SIZE;
  return seg;
}

void depot_arena_set_binding(depot_arena_t *a, int bind, uint32_t os_node,
                             int strict) {
  pthread_mutex_lock(&a->lock);
  a->bind = bind;
  a->os_node = os_node;
  a->bind_strict = strict;
  pthread_mutex_unlock(&a->lock);
}

static depot_segment_t *segment_new(depot_arena_t *a) {
  depot_segment_t *seg = segment_carve(a);
  if (!seg) return NULL;
  /* Bind before the first touch (the header write below), so that even the
   * header's pages land on the node. */
  if (a->bind) {
    if (depot_os_bind(seg, DEPOT_SEGMENT_SIZE, a->os_node, a->bind_strict) ==
        0) {
      a->binds_ok++;
    } else {
      a->binds_failed++;
      if (a->bind_strict) {
        /* The address range is lost to this arena, not its memory. */
        depot_os_decommit(seg, DEPOT_SEGMENT_SIZE, 0);
        return NULL;
      }
    }
  }
  /* Fresh memory is zero: only the non-zero fields need writing. */
  seg->node = (uint16_t)a->node;
  seg->header_pages = (uint16_t)DEPOT_SEGMENT_HEADER_PAGES;
  seg->arena = a;
  seg->next = a->segments;
  a->segments = seg;
  a->nsegments++;
  depot_segmap_add(seg);
  make_free(a, seg, DEPOT_SEGMENT_HEADER_PAGES, DEPOT_SPAN_MAX_PAGES, 0, 0);
  return seg;
}

/* ---- spans --------------------------------------------------------------- */

/* First free span that can hold npages at the alignment, or NULL. */
static depot_span_t *find_fit(depot_arena_t *a, size_t npages,
                              size_t align_pages, unsigned *out_start) {
  for (unsigned b = (unsigned)(npages < DEPOT_ARENA_FREE_LISTS ? npages : 0);
       ;) {
    for (depot_span_t *s = a->free_lists[b]; s; s = s->next) {
      unsigned start = (unsigned)depot_align_up(s->start_page, align_pages);
      if (start + npages <= (size_t)s->start_page + s->npages) {
        *out_start = start;
        return s;
      }
    }
    if (b == 0) return NULL;
    b = (b + 1 == DEPOT_ARENA_FREE_LISTS) ? 0 : b + 1;
  }
}

/* depot_arena_alloc_span and depot_arena_alloc_span_room: the span is cut
 * from the first free span that holds fit_pages (>= npages), else from the
 * first that holds npages. */
static depot_span_t *alloc_span(depot_arena_t *a, size_t npages,
                                size_t fit_pages, size_t align_pages,
                                depot_span_state_t state, int grow) {
  if (npages == 0 || npages > DEPOT_SPAN_MAX_PAGES ||
      !depot_is_pow2(align_pages))
    return NULL;
  if (fit_pages > DEPOT_SPAN_MAX_PAGES) fit_pages = DEPOT_SPAN_MAX_PAGES;
  if (pthread_mutex_trylock(&a->lock) != 0) {
    depot_arena_contended = 1; /* this thread moves to another shard */
    pthread_mutex_lock(&a->lock);
  }
  unsigned start;
  depot_span_t *f = NULL;
  if (fit_pages > npages) f = find_fit(a, fit_pages, align_pages, &start);
  if (!f) f = find_fit(a, npages, align_pages, &start);
  if (!f && !grow) {
    pthread_mutex_unlock(&a->lock);
    return NULL;
  }
  /* A reused span is committed again, as far as fault injection goes (a
   * fresh segment passed the OS layer already); growth (clean pages or a
   * new segment) is charged against the memory limit before it happens. */
  if ((f && depot_os_commit_mapped() != 0) ||
      charge(a, f ? (f->dirty ? 0 : npages)
                  : DEPOT_SEGMENT_HEADER_PAGES + npages) != 0) {
    pthread_mutex_unlock(&a->lock);
    return NULL;
  }
  if (!f) {
    if (segment_new(a)) f = find_fit(a, npages, align_pages, &start);
    if (!f) {
      sync_held(a);
      pthread_mutex_unlock(&a->lock);
      return NULL;
    }
  }
  free_list_remove(a, f);
  depot_segment_t *seg = depot_segment_base((uintptr_t)f);
  unsigned f_start = f->start_page, f_end = f->start_page + f->npages;
  unsigned end = start + (unsigned)npages;
  int dirty = f->dirty;
  uint32_t dirty_ms = f->dirty_ms;
  f->state = DEPOT_SPAN_DEAD;
  /* Pieces cut off in front and behind stay free; their outer neighbours
   * were not free (free spans never touch), so nothing more to merge. */
  if (start > f_start)
    make_free(a, seg, f_start, start - f_start, dirty, dirty_ms);
  if (end < f_end) make_free(a, seg, end, f_end - end, dirty, dirty_ms);
  depot_span_t *s = depot_span_slot(seg, start);
  memset(s, 0, sizeof *s);
  s->start_page = (uint16_t)start;
  s->npages = (uint16_t)npages;
  s->state = (uint8_t)state;
  set_pagemap(s, start, end - 1);
  purge_if_due(a);
  sync_held(a);
  depot_add_relaxed(&a->ops, 1);
  depot_purge_ring();
  if (DEPOT_CHECKING_EXPENSIVE) depot_arena_check_locked(a, NULL, NULL);
  pthread_mutex_unlock(&a->lock);
  return s;
}

depot_span_t *depot_arena_alloc_span(depot_arena_t *a, size_t npages,
                                     size_t align_pages,
                                     depot_span_state_t state) {
  return alloc_span(a, npages, npages, align_pages, state, 1);
}

depot_span_t *depot_arena_alloc_span_reuse(depot_arena_t *a, size_t npages,
                                           size_t align_pages,
                                           depot_span_state_t state) {
  return alloc_span(a, npages, npages, align_pages, state, 0);
}

depot_span_t *depot_arena_alloc_span_room(depot_arena_t *a, size_t npages,
                                          size_t room_pages,
                                          depot_span_state_t state) {
  return alloc_span(a, npages, room_pages < npages ? npages : room_pages, 1,
                    state, 1);
}

/* The free span that ends just before page, or NULL. */
static depot_span_t *free_neighbour(depot_segment_t *seg, unsigned page) {
  if (page < seg->header_pages || page >= DEPOT_SEGMENT_PAGES) return NULL;
  depot_span_t *n = depot_load_relaxed(&seg->pagemap[page]);
  return depot_span_covers(n, page) && n->state == DEPOT_SPAN_FREE ? n : NULL;
}

/* Takes the free span n off its free list to be merged into a neighbour; keeps
 * in *dirty_ms the oldest dirty time of the merged parts.  Returns n's
 * purged (clean) pages: 0 if it is dirty (lock held). */
static size_t absorb(depot_arena_t *a, depot_span_t *n, uint32_t *dirty_ms) {
  free_list_remove(a, n);
  n->state = DEPOT_SPAN_DEAD;
  if (!n->dirty) return n->npages;
  if (depot_ms_before(n->dirty_ms, *dirty_ms)) *dirty_ms = n->dirty_ms;
  return 0;
}

int depot_arena_resize_span(depot_arena_t *a, depot_span_t *s, size_t npages) {
  depot_segment_t *seg = depot_segment_base((uintptr_t)s);
  if (npages == 0 || npages > DEPOT_SPAN_MAX_PAGES) return -1;
  pthread_mutex_lock(&a->lock);
  unsigned start = s->start_page, end = start + s->npages;
  unsigned new_end = start + (unsigned)npages;
  int ok = 0;
  if (new_end < end) {
    /* Shrink: the tail becomes free, joined with a free span behind it. */
    s->npages = (uint16_t)npages;
    unsigned tail_end = end;
    uint32_t dirty_ms = depot_os_now_ms();
    size_t clean = 0;
    depot_span_t *right = free_neighbour(seg, end);
    if (right) {
      clean += absorb(a, right, &dirty_ms);
      tail_end = right->start_page + right->npages;
    }
    free_run(a, seg, new_end, tail_end, clean, dirty_ms);
    ok = 1;
  } else if (new_end == end) {
    ok = 1;
  } else {
    /* Grow into a free span that starts right after this one. */
    depot_span_t *right = free_neighbour(seg, end);
    if (right && (unsigned)right->start_page + right->npages >= new_end &&
        charge(a, right->dirty ? 0 : new_end - end) == 0) {
      unsigned r_end = right->start_page + right->npages;
      int dirty = right->dirty;
      uint32_t dirty_ms = right->dirty_ms;
      free_list_remove(a, right);
      right->state = DEPOT_SPAN_DEAD;
      if (r_end > new_end)
        make_free(a, seg, new_end, r_end - new_end, dirty, dirty_ms);
      s->npages = (uint16_t)npages;
      set_pagemap(s, end, new_end - 1);
      ok = 1;
    }
  }
  sync_held(a);
  depot_add_relaxed(&a->ops, 1);
  pthread_mutex_unlock(&a->lock);
  return ok ? 0 : -1;
}

void depot_arena_free_span(depot_arena_t *a, depot_span_t *s) {
  depot_segment_t *seg = depot_segment_base((uintptr_t)s);
  pthread_mutex_lock(&a->lock);
  /* Only an in-use span of this arena comes back, once. */
  DEPOT_CHECK(seg->arena == a &&
              (s->state == DEPOT_SPAN_SMALL || s->state == DEPOT_SPAN_LARGE));
  unsigned start = s->start_page, end = s->start_page + s->npages;
  uint32_t now = depot_os_now_ms(), dirty_ms = now;
  s->state = DEPOT_SPAN_DEAD;
  /* A merged span is as old as its oldest dirty part, so that a stream of
   * fresh frees next to it cannot postpone its purge forever. */
  size_t clean = 0;
  depot_span_t *left = start > 0 ? free_neighbour(seg, start - 1) : NULL;
  if (left) {
    clean += absorb(a, left, &dirty_ms);
    start = left->start_page;
  }
  depot_span_t *right = free_neighbour(seg, end);
  if (right) {
    clean += absorb(a, right, &dirty_ms);
    end = right->start_page + right->npages;
  }
  free_run(a, seg, start, end, clean, dirty_ms);
  if (a->purge_delay_ms == 0) purge_locked(a, now, 1);
  else purge_if_due(a);
  sync_held(a);
  depot_add_relaxed(&a->ops, 1);
  if (DEPOT_CHECKING_EXPENSIVE) depot_arena_check_locked(a, NULL, NULL);
  pthread_mutex_unlock(&a->lock);
}

void depot_arena_purge(depot_arena_t *a) {
  pthread_mutex_lock(&a->lock);
  purge_locked(a, depot_os_now_ms(), 1);
  sync_held(a);
  pthread_mutex_unlock(&a->lock);
}

int depot_arena_purge_due(depot_arena_t *a, size_t max_pages, int force,
                          uint32_t *next_ms) {
  for (;;) {
    pthread_mutex_lock(&a->lock);
    uint32_t now = depot_os_now_ms();
    size_t done = 0;
    if (a->purge_pending && (force || !depot_ms_before(now, a->next_purge_ms)))
      done = purge_budget_locked(a, now, force, max_pages);
    sync_held(a);
    int pending = a->purge_pending;
    uint32_t next = a->next_purge_ms;
    pthread_mutex_unlock(&a->lock);
    if (done < max_pages || !pending) {
      *next_ms = next;
      return pending;
    }
  }
}

void depot_arena_set_purge_delay(depot_arena_t *a, uint32_t purge_delay_ms) {
  pthread_mutex_lock(&a->lock);
  a->purge_delay_ms = purge_delay_ms;
  /* Re-derive when the oldest dirty span falls due under the new delay. */
  a->purge_pending = 0;
  for (unsigned b = 0; b < DEPOT_ARENA_FREE_LISTS; b++)
    for (depot_span_t *s = a->free_lists[b]; s; s = s->next) {
      uint32_t due = s->dirty_ms + purge_delay_ms;
      if (s->dirty &&
          (!a->purge_pending || depot_ms_before(due, a->next_purge_ms)))
        a->next_purge_ms = due, a->purge_pending = 1;
    }
  pthread_mutex_unlock(&a->lock);
}

void depot_arena_stats(depot_arena_t *a, depot_arena_stats_t *out) {
  pthread_mutex_lock(&a->lock);
  out->segments = a->nsegments;
  out->free_pages = a->free_pages;
  out->dirty_pages = a->dirty_pages;
  out->purged_pages = a->purged_pages;
  out->binds_ok = a->binds_ok;
  out->binds_failed = a->binds_failed;
  pthread_mutex_unlock(&a->lock);
}

/* ---- invariants ------------------------------------------------------------ */

void depot_arena_check_locked(depot_arena_t *a, depot_arena_span_fn fn,
                              void *ctx) {
  /* The free lists by length: every span on them is free, of the right
   * length, exactly mapped at both ends; their pages add up to the counts. */
  size_t free_pages = 0, dirty_pages = 0;
  for (unsigned b = 0; b < DEPOT_ARENA_FREE_LISTS; b++) {
    for (depot_span_t *s = a->free_lists[b]; s; s = s->next) {
      depot_segment_t *seg = depot_segment_base((uintptr_t)s);
      unsigned last = s->start_page + s->npages - 1u;
      DEPOT_CHECK(s->state == DEPOT_SPAN_FREE && free_list_of(s->npages) == b);
      DEPOT_CHECK(seg->arena == a && s == depot_span_slot(seg, s->start_page));
      DEPOT_CHECK(depot_load_relaxed(&seg->pagemap[s->start_page]) == s &&
                  depot_load_relaxed(&seg->pagemap[last]) == s);
      DEPOT_CHECK(!s->next || s->next->prev == s);
      free_pages += s->npages;
      if (s->dirty) dirty_pages += s->npages;
    }
  }
  DEPOT_CHECK(free_pages == a->free_pages);
  DEPOT_CHECK(dirty_pages == a->dirty_pages);
  /* Every segment is tiled by spans from its header to its end; in-use
   * spans are mapped on every page; free spans never touch. */
  size_t nsegments = 0;
  for (depot_segment_t *seg = a->segments; seg; seg = seg->next) {
    nsegments++;
    DEPOT_CHECK(seg->arena == a && seg->node == a->node &&
                seg->header_pages == DEPOT_SEGMENT_HEADER_PAGES);
    depot_region_check_segment(seg);
    int prev_free = 0;
    unsigned page = seg->header_pages;
    while (page < DEPOT_SEGMENT_PAGES) {
      depot_span_t *s = depot_load_relaxed(&seg->pagemap[page]);
      DEPOT_CHECK(depot_span_covers(s, page) && s->start_page == page);
      DEPOT_CHECK(s->npages >= 1 &&
                  page + s->npages <= (unsigned)DEPOT_SEGMENT_PAGES);
      int is_free = s->state == DEPOT_SPAN_FREE;
      DEPOT_CHECK(!(is_free && prev_free)); /* free neighbours coalesce */
      if (!is_free)
        for (unsigned i = page; i < page + s->npages; i++)
          DEPOT_CHECK(depot_load_relaxed(&seg->pagemap[i]) == s);
      if (fn) fn(s, ctx);
      prev_free = is_free;
      page += s->npages;
    }
    DEPOT_CHECK(page == DEPOT_SEGMENT_PAGES);
  }
  DEPOT_CHECK(nsegments == a->nsegments);
}

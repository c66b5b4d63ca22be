/* tcache.c: per-thread caches (see tcache.h). */
#define _GNU_SOURCE
#include "alloc/tcache.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/badptr.h"
#include "alloc/check.h"
#include "alloc/config.h"
#include "alloc/log.h"
#include "alloc/meta.h"
#include "alloc/os.h"
#include "alloc/region.h"

/* Every bucket of the placeholders' outboxes unused (tcache.h). */
#define NO_OUTBOX \
  .outbox = {[0 ... DEPOT_OUTBOX_BUCKETS - 1] = {.list_id = DEPOT_OUTBOX_NONE}}
#define NO_OWNER                       \
  .owner_base = DEPOT_OWNER_BASE_NONE, \
  .owner_entry = {[0 ... DEPOT_NDOMAINS - 1] = DEPOT_OWNER_BASE_NONE}
depot_tcache_t depot_tcache_empty = {NO_OWNER, NO_OUTBOX};
depot_tcache_t depot_tcache_dead = {NO_OWNER, NO_OUTBOX};
__thread depot_tls_t depot_tls __attribute__((tls_model(DEPOT_TLS_MODEL))) = {
    .tcache = &depot_tcache_empty};

/* The registry: live caches (for statistics), and caches of exited threads,
 * reused by new ones so that thread churn does not grow metadata. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static depot_tcache_t *recycled; /* guarded by registry_lock */
static depot_tcache_t *live;     /* guarded by registry_lock */

/* Largest bin, in bytes, before a bin stops growing (and 8 batches at most). */
#define BIN_MAX_BYTES ((size_t)256 * 1024)

static inline size_t bin_size(unsigned i) {
  return depot_class_size[i & ((1u << DEPOT_LIST_CLASS_BITS) - 1)];
}
static inline uint32_t bin_batch(unsigned i) {
  return depot_class_info[i & ((1u << DEPOT_LIST_CLASS_BITS) - 1)].batch;
}
static inline uint32_t bin_max(unsigned i) {
  uint32_t b = bin_batch(i);
  size_t m = BIN_MAX_BYTES / bin_size(i);
  if (m < b) m = b;
  if (m > 8u * b) m = 8u * b;
  return (uint32_t)m;
}
static inline unsigned bin_list_id(const depot_tcache_t *tc, unsigned i) {
  return tc->owner_base | i;
}

void depot_tcache_prefork(void) { pthread_mutex_lock(&registry_lock); }
void depot_tcache_postfork(void) { pthread_mutex_unlock(&registry_lock); }
void depot_tcache_registry_lock(void) { pthread_mutex_lock(&registry_lock); }
void depot_tcache_registry_unlock(void) {
  pthread_mutex_unlock(&registry_lock);
}
depot_tcache_t *depot_tcache_live(void) { return live; }

/* The calling thread's blocked signals, bit n - 1 for signal n (the layout
 * of /proc's SigBlk). */
static uint64_t blocked_signals(void) {
  sigset_t set;
  uint64_t m = 0;
  if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0) return ~(uint64_t)0;
  for (int sig = 1; sig <= 64; sig++)
    if (sigismember(&set, sig) == 1) m |= (uint64_t)1 << (sig - 1);
  return m;
}

uintptr_t depot_free_key;

void depot_tcache_init_key(void) {
  uintptr_t s;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
    struct timespec ts; /* a sandbox without getrandom: the clock */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s = (uintptr_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uintptr_t)&ts;
  }
  depot_free_key = s | 1;
}

/* Gives tc an owner heap of node: its own, or the node's shared heap when
 * no owner heap can be had. */
static void set_owner(depot_tcache_t *tc, unsigned node) {
  depot_owner_t *o = depot_owner_take(node);
  tc->owner = o ? o : depot_owner(node);
  tc->node = node;
  tc->owner_base = tc->owner->id << DEPOT_LIST_OWNER_SHIFT;
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
    tc->owner_entry[d] = (tc->owner_base | d << DEPOT_LIST_DOMAIN_SHIFT)
                         << DEPOT_REGION_ENTRY_SHIFT;
}

/* Parks tc's heap if it is a thread's own.  REQUIRES: tc flushed, and the
 * registry lock, held until tc is unlisted or has its next heap: fork takes
 * that lock before the owner lock, so a child never copies a listed cache
 * whose heap is already parked (its recycling would park the heap twice,
 * and two threads would take it) or a heap neither parked nor any listed
 * cache's (nobody would drain its inbox). */
static void drop_owner(depot_tcache_t *tc) {
  if (tc->owner->id >= DEPOT_MAX_NODES) depot_owner_park(tc->owner);
  tc->owner = NULL;
  tc->owner_base = DEPOT_OWNER_BASE_NONE;
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
    tc->owner_entry[d] = DEPOT_OWNER_BASE_NONE;
}

depot_tcache_t *depot_tcache_create(unsigned node, size_t budget) {
  /* Fault injection: creating a cache, fresh or recycled, can fail. */
  if (depot_os_commit_mapped() != 0) return NULL;
  /* Idle flushing's fields (idle.h), read here, before the lock. */
  int32_t tid = (int32_t)syscall(SYS_gettid);
  uint64_t sigmask0 = blocked_signals();
  uint32_t now = depot_os_now_ms();
  /* The cache is taken (recycled or made), given its owner heap and listed
   * under one hold of the registry lock.  Fork takes the registry lock
   * before the owner lock (init.c), so a child never finds a heap that a
   * cache took from the parked list but that no listed cache owns: neither
   * parked nor anyone's, it would keep every block posted to it in its
   * inbox for good.  (Lock order: registry, owner, then meta for a new
   * heap or cache.) */
  pthread_mutex_lock(&registry_lock);
  depot_tcache_t *tc = recycled;
  if (tc) recycled = tc->next_free;
  else tc = depot_meta_alloc(sizeof *tc);
  if (!tc) {
    pthread_mutex_unlock(&registry_lock);
    return NULL;
  }
  /* A recycled cache was flushed: its bins and outbox are empty, limits 0;
   * a new one is zero-filled. */
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++)
    tc->outbox[k].list_id = DEPOT_OUTBOX_NONE;
  set_owner(tc, node);
  tc->budget = budget;
  tc->limit_bytes = 0;
  tc->steal_cursor = 0;
  tc->next_free = NULL;
  /* Written by the owner (create runs in the thread the cache is for)
   * before the cache is listed: it starts held by the owner's slow path
   * and active. */
  tc->tls_slot = &depot_tls_tcache;
  tc->tid = tid;
  depot_store_relaxed(&tc->sigmask0, sigmask0);
  depot_store_relaxed(&tc->in_slow, 1);
  depot_store_relaxed(&tc->park, DEPOT_PARK_ACTIVE);
  tc->heap_parked = 0;
  depot_store_relaxed(&tc->slow_ms, now);
  tc->gc_events = 0;
  tc->gc_ms = now;
  memset(tc->gc_dry, 0, sizeof tc->gc_dry);
  tc->prev_live = NULL;
  tc->next_live = live;
  if (live) live->prev_live = tc;
  live = tc;
  pthread_mutex_unlock(&registry_lock);
  return tc;
}

/* Detaches the first n blocks of bin i and gives them to the central pool. */
static void flush_blocks(depot_tcache_t *tc, unsigned i, uint32_t n) {
  depot_bin_t *bin = &tc->bins[i];
  if (n == 0) return;
  void *head = bin->head, *last = head;
  for (uint32_t k = 1; k < n; k++) last = *(void **)last;
  bin->head = *(void **)last;
  *(void **)last = NULL;
  bin->room += (int32_t)n;
  depot_central_give(depot_central_of(bin_list_id(tc, i)), head, n, &tc->stash);
}

/* Flushes bin i entirely, a batch at a time. */
static void flush_bin(depot_tcache_t *tc, unsigned i) {
  depot_bin_t *bin = &tc->bins[i];
  uint32_t n = depot_bin_count(bin);
  if (n == 0) return; /* also every bin of class 0 or >= NCLASSES */
  uint32_t b = bin_batch(i);
  for (; n; n = depot_bin_count(bin)) flush_blocks(tc, i, n < b ? n : b);
}

/* ---- the outbox ------------------------------------------------------------
 * Remote frees wait here, bucketed by list id (direct-mapped: a few
 * instructions a block, no atomic).  A bucket is posted to its owner's
 * inbox (one exchange, central.h) when it is full (bucket_room) or when
 * another list id needs its bucket, so the outbox holds at most
 * DEPOT_OUTBOX_BUCKETS (64) buckets' worth less one block each; and
 * whenever the cache is flushed or an idle-bin pass runs, so blocks do not
 * wait on a thread that stopped freeing. */

/* The blocks a bucket of list id li takes before it is posted: a batch of
 * its class, but at most OUTBOX_BUCKET_BYTES of blocks (two blocks at
 * least).  A block waiting here is memory its owner cannot hand out: it
 * carves fresh blocks meanwhile, so what waits in outboxes raises every
 * owner's high-water mark.  Peak RSS with buckets of a whole batch (up to
 * 64 KiB, for classes of 2 KiB and more) against 16 KiB (median of 3,
 * 2026-11-30): xfree-lifo 9.7 against 8.0 MiB, xfree-fifo at 2, 4 and 8
 * threads 12.1, 26.7, 58.2 against 10.3, 23.9, 54.5 MiB, in the same time
 * (paired runs 0.99-1.01x); 8 KiB saved no more and made larson (half its
 * frees remote) 4% slower, 4 KiB 9%: more, smaller posts. */
#define OUTBOX_BUCKET_BYTES (16u * 1024u)
static uint32_t bucket_room(unsigned li) {
  unsigned cls = depot_list_class(li);
  uint32_t room = OUTBOX_BUCKET_BYTES / depot_class_size[cls];
  if (room < 2) room = 2;
  return room < depot_class_info[cls].batch ? room : depot_class_info[cls].batch;
}

static void post(depot_tcache_t *tc, depot_outbox_t *b) {
  void *head = b->head;
  unsigned li = b->list_id;
  uint32_t n = head ? bucket_room(li) - b->room : 0;
  /* Emptied before the message is made: a fork that catches the thread in
   * between leaves its child an empty bucket, never one already posted, or
   * made circular (depot_inbox_message links the last block back to the
   * first), which the child would post again.  The release fence keeps
   * the bucket's stores before the blocks'. */
  b->head = NULL;
  b->list_id = DEPOT_OUTBOX_NONE;
  atomic_thread_fence(memory_order_release);
  if (head)
    depot_inbox_post(
        depot_owner(depot_list_owner(li)),
        depot_inbox_message(head, tc->outbox_last[b - tc->outbox], n));
}

/* Whether p waits on bucket b's chain of list id li (a walk). */
static int bucket_holds(const depot_outbox_t *b, unsigned li, const void *p) {
  if (b->list_id != li) return 0;
  for (void *x = b->head; x; x = *(void **)x)
    if (x == p) return 1;
  return 0;
}

/* Every case of a remote free but the common one: another list id in the
 * bucket, the free key seen, the bucket full.  Returns 0 (p is in the
 * outbox or posted), or, for a block freed twice, where it waits free: 1 in
 * this bucket, 2 elsewhere (alloc.c's free_full lists where); p is then
 * left as it is. */
static depot_noinline int remote_free_slow(depot_tcache_t *tc, void *p,
                                           unsigned li) {
  /* Direct-mapped: a list id has one bucket (its owner's bits mixed with
   * its class), and a bucket holding another list id is posted first. */
  depot_outbox_t *b = depot_outbox_of(tc, li);
  if (depot_unlikely(depot_tcache_bypass)) {
    /* Debug mode or the quarantine: every free must reach their hooks, but
     * the inline path (depot_tcache_remote_push) takes whatever a used
     * bucket of its list id accepts, the program's own pointer included.
     * So no bucket is ever used: each block is posted home alone. */
    depot_inbox_post(depot_owner(depot_list_owner(li)),
                     depot_inbox_message(p, p, 1));
    return 0;
  }
  if (depot_unlikely(((uintptr_t *)p)[1] == depot_free_key)) {
    /* The free key, as on a bin: a block freed twice while it waits in this
     * bucket is found by a walk.  One that carries the key and is not here
     * waits free elsewhere (every free block of a small class carries it,
     * alloc.c's free_full says where): most often in its owner's bin,
     * freed there before this thread freed it again. */
    return b->list_id == li && bucket_holds(b, li, p) ? 1 : 2;
  }
  if (b->list_id != li) {
    post(tc, b);
    b->list_id = li;
    b->room = bucket_room(li);
    tc->outbox_last[b - tc->outbox] = p; /* the first in, so the last */
  }
  ((uintptr_t *)p)[1] = depot_free_key;
  *(void **)p = b->head;
  b->head = p;
  if (--b->room == 0) post(tc, b);
  return 0;
}

/* A block freed twice, found by a remote free: waiting in this thread's
 * outbox (or pending: elsewhere 0) or elsewhere (remote_free_slow's 2).
 * Reported (badptr.h); the outbox keeps what it holds. */
static depot_cold void outbox_double_free(const void *p, unsigned li,
                                          int elsewhere) {
  depot_double_free(
      "free", p, depot_class_size[depot_list_class(li)], "domain",
      depot_domain_name(depot_list_domain(li)),
      elsewhere ? DEPOT_FREED_ELSEWHERE : "in the thread's outbox");
}

/* Puts the pending remote free (tcache.h, remote_pend) into its bucket,
 * checked for the free key as the inline path checks it. */
static void settle(depot_tcache_t *tc) {
  void *q = tc->remote_pend;
  if (!q) return;
  unsigned qli = tc->remote_pend_li;
  tc->remote_pend = NULL;
  int twice = remote_free_slow(tc, q, qli);
  if (twice) outbox_double_free(q, qli, twice == 2);
}

void depot_tcache_remote_free(depot_tcache_t *tc, void *p, unsigned li) {
  if (depot_unlikely(p == tc->remote_pend)) { /* freed again at once */
    outbox_double_free(p, li, 0);
    return;
  }
  settle(tc);
  if (depot_unlikely(depot_tcache_bypass)) {
    (void)remote_free_slow(tc, p, li); /* posted alone: nothing waits */
    return;
  }
  tc->remote_pend = p;
  tc->remote_pend_li = li;
}

static void post_all(depot_tcache_t *tc) {
  settle(tc);
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++) post(tc, &tc->outbox[k]);
}

/* Blocks waiting in the outbox bucket b. */
static uint32_t bucket_count(const depot_outbox_t *b) {
  if (b->list_id == DEPOT_OUTBOX_NONE) return 0;
  return bucket_room(b->list_id) - b->room;
}

uint32_t depot_tcache_outbox_blocks(const depot_tcache_t *tc) {
  uint32_t n = tc->remote_pend != NULL;
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++)
    n += bucket_count(&tc->outbox[k]);
  return n;
}

/* Cuts the list at *head after its first `most` blocks (a longer one means
 * a damaged cache: the rest is left out) and returns its length, its last
 * block in *last. */
static uint32_t cut_list(void **head, uint32_t most, void **last) {
  void **link = head;
  for (uint32_t n = 0; *link && n < most; n++) link = (void **)*link;
  *link = NULL;
  uint32_t n = 0;
  *last = NULL;
  for (void *x = *head; x; x = *(void **)x, n++) *last = x;
  return n;
}

void depot_tcache_recount(depot_tcache_t *tc) {
  void *last;
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++) {
    depot_bin_t *bin = &tc->bins[i];
    if (!bin->head && bin->room == (int32_t)bin->limit) continue;
    /* A list holds at most a refill more than the limit (room goes
     * negative) and the block a free was pushing.  (Only the free fast
     * path's room test touches a bin of no class: class 0's, room -1.) */
    unsigned cls = i & DEPOT_LIST_CLASS_MASK;
    uint32_t batch = cls < DEPOT_NCLASSES ? bin_batch(i) : 0;
    uint32_t n = cut_list(&bin->head, bin->limit + 2 * batch + 2, &last);
    bin->room = (int32_t)bin->limit - (int32_t)n;
  }
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++) {
    depot_outbox_t *b = &tc->outbox[k];
    if (b->list_id == DEPOT_OUTBOX_NONE) continue;
    uint32_t room = bucket_room(b->list_id);
    uint32_t n = cut_list(&b->head, room, &last);
    if (!n) {
      b->list_id = DEPOT_OUTBOX_NONE;
      continue;
    }
    b->room = room - n;
    tc->outbox_last[k] = last;
  }
  /* The pending remote free: a fast path caught after it put the one
   * before into its bucket but before it stored the new one leaves a block
   * both pending and in its bucket, or a new block beside the old list id
   * (the stores may land in any order).  Such a block is dropped: lost to
   * the child, as the thread is. */
  void *q = tc->remote_pend;
  if (q) {
    unsigned qli = tc->remote_pend_li;
    uintptr_t off = depot_region_offset((uintptr_t)q);
    if (!depot_region_contains(off) || depot_region_list_id(off) != qli ||
        bucket_holds(depot_outbox_of(tc, qli), qli, q))
      tc->remote_pend = NULL;
  }
}

void depot_tcache_flush_all(depot_tcache_t *tc) {
  post_all(tc);
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++) {
    flush_bin(tc, i);
    /* Only bins that were used are written (emptied, a bin's room is its
     * limit): a thread that mallocs only keeps the mem and object domains'
     * bins, a page of their own, out of memory (tcache.h). */
    if (tc->bins[i].limit) {
      tc->bins[i].limit = 0;
      tc->bins[i].room = 0;
    }
  }
  tc->limit_bytes = 0;
  /* Other threads' frees of this heap's blocks, waiting in its inbox, are
   * free memory too: back to their spans. */
  if (tc->owner) depot_inbox_return(tc->owner);
}

void depot_tcache_move(depot_tcache_t *tc, unsigned node) {
  depot_tcache_flush_all(tc);
  pthread_mutex_lock(&registry_lock); /* see drop_owner */
  drop_owner(tc);
  set_owner(tc, node);
  pthread_mutex_unlock(&registry_lock);
}

void depot_tcache_destroy(depot_tcache_t *tc) {
  depot_tcache_flush_all(tc);
  depot_central_stash_release(&tc->stash);
  pthread_mutex_lock(&registry_lock);
  drop_owner(tc); /* and unlisted under the same hold: see drop_owner */
  if (tc->prev_live) tc->prev_live->next_live = tc->next_live;
  else live = tc->next_live;
  if (tc->next_live) tc->next_live->prev_live = tc->prev_live;
  tc->next_free = recycled;
  recycled = tc;
  pthread_mutex_unlock(&registry_lock);
}

/* Reads other threads' bins without synchronisation (a statistics snapshot);
 * kept out of ThreadSanitizer's view, which would rightly call it a race. */
__attribute__((no_sanitize_thread)) uint64_t depot_tcache_cached_blocks(
    unsigned i) {
  uint64_t n = 0;
  pthread_mutex_lock(&registry_lock);
  for (depot_tcache_t *tc = live; tc; tc = tc->next_live) {
    n += (uint64_t)((int64_t)tc->bins[i].limit - tc->bins[i].room);
    /* Remote frees waiting in the outbox are free blocks a cache holds. */
    for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++)
      if ((tc->outbox[k].list_id & (DEPOT_LISTS_PER_OWNER - 1)) == i)
        n += bucket_count(&tc->outbox[k]);
    if (tc->remote_pend &&
        (tc->remote_pend_li & (DEPOT_LISTS_PER_OWNER - 1)) == i)
      n++;
  }
  pthread_mutex_unlock(&registry_lock);
  return n;
}

/* Takes room from other bins, round robin, until need more bytes fit in the
 * budget or every other bin is at limit 0. */
static void steal(depot_tcache_t *tc, unsigned except, size_t need) {
  for (unsigned n = 0;
       n < DEPOT_TCACHE_BINS && tc->limit_bytes + need > tc->budget; n++) {
    unsigned j = tc->steal_cursor = (tc->steal_cursor + 1) % DEPOT_TCACHE_BINS;
    depot_bin_t *bin = &tc->bins[j];
    if (j == except || bin->limit == 0) continue;
    uint32_t cut = bin_batch(j) < bin->limit ? bin_batch(j) : bin->limit;
    bin->limit -= cut;
    bin->room -= (int32_t)cut;
    tc->limit_bytes -= cut * bin_size(j);
    if (bin->room < 0) flush_blocks(tc, j, (uint32_t)-bin->room);
  }
}

int depot_tcache_bypass;

/* Raises bin i's limit by a batch if the budget allows (after stealing
 * from other bins, if may_steal).
 * A budget changed at run time (tcache_max_bytes) is taken up here: a
 * smaller one sheds limits, and blocks beyond them, at once. */
static int grow(depot_tcache_t *tc, unsigned i, int may_steal) {
  size_t budget = (size_t)depot_config_live(DEPOT_CONF_tcache_max_bytes);
  if (depot_unlikely(budget != tc->budget)) {
    tc->budget = budget;
    for (size_t before = 0;
         tc->limit_bytes > budget && tc->limit_bytes != before;) {
      before = tc->limit_bytes;
      steal(tc, DEPOT_TCACHE_BINS, 0);
    }
  }
  depot_bin_t *bin = &tc->bins[i];
  if (depot_tcache_bypass) return 0;
  uint32_t b = bin_batch(i);
  if (bin->limit + b > bin_max(i)) return 0;
  size_t need = b * bin_size(i);
  if (tc->limit_bytes + need > tc->budget && may_steal) steal(tc, i, need);
  if (tc->limit_bytes + need > tc->budget) return 0;
  bin->limit += b;
  bin->room += (int32_t)b;
  tc->limit_bytes += need;
  return 1;
}

/* ---- idle-bin trimming ------------------------------------------------------
 * As jemalloc's tcache GC: cached blocks should follow use.  Every
 * GC_EVERY slow-path calls the owner looks at the clock; at most every
 * GC_MS a pass gives back half of what each bin holds if the bin did not
 * run dry since the last pass (its low-water mark stayed above zero, so
 * those blocks sat idle).  The blocks flushed are the list's tail, the
 * least recently freed.  Only the owner runs it, on its slow paths: the
 * fast paths pay nothing. */
#define GC_EVERY 32u
#define GC_MS 100u

/* Detaches the last n blocks of bin i and gives them back a batch at a
 * time. */
static void flush_tail(depot_tcache_t *tc, unsigned i, uint32_t n) {
  depot_bin_t *bin = &tc->bins[i];
  uint32_t count = depot_bin_count(bin), b = bin_batch(i);
  if (n == 0 || n > count) return;
  void **link = &bin->head;
  for (uint32_t k = n; k < count; k++) link = (void **)*link;
  void *rest = *link;
  *link = NULL;
  bin->room += (int32_t)n;
  while (rest) {
    void *head = rest, *last = head;
    for (uint32_t k = 1; k < b && *(void **)last; k++) last = *(void **)last;
    rest = *(void **)last;
    *(void **)last = NULL;
    uint32_t m = 0;
    for (void *x = head; x; x = *(void **)x) m++;
    depot_central_give(depot_central_of(bin_list_id(tc, i)), head, m,
                       &tc->stash);
  }
}

static depot_noinline void gc_pass(depot_tcache_t *tc) {
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++) {
    uint32_t n = depot_bin_count(&tc->bins[i]);
    if (n && !(tc->gc_dry[i / 64] >> (i % 64) & 1))
      flush_tail(tc, i, (n + 1) / 2);
  }
  memset(tc->gc_dry, 0, sizeof tc->gc_dry);
  post_all(tc);
  /* Idle flushing's signal check (idle.c, quiet): signals blocked now as
   * well.  A thread started with every signal blocked (the usual way to
   * create a thread that must not take signals) that unblocks one later
   * has it checked from here on. */
  depot_store_relaxed(&tc->sigmask0,
                      depot_load_relaxed(&tc->sigmask0) & blocked_signals());
}

static inline void gc_tick(depot_tcache_t *tc) {
  if (++tc->gc_events % GC_EVERY) return;
  uint32_t now = depot_os_now_ms();
  if (depot_ms_before(now, tc->gc_ms + GC_MS)) return;
  tc->gc_ms = now;
  gc_pass(tc);
}

/* ---- the inbox -------------------------------------------------------------
 * Other threads' frees of this thread's blocks arrive as chains, one list
 * id each, in its owner heap's inbox (central.h).  The owner takes them on
 * its refill slow path: a chain is spliced whole onto its bin (its ends and
 * length are in the message: no walk, no atomic), and what exceeds the
 * bin's limit goes to the owner's pool, as any overflow. */
static void take_chain(void *ctx, depot_inbox_node_t *m) {
  depot_tcache_t *tc = ctx;
  uint32_t li = depot_inbox_list_id(m);
  unsigned i = li - tc->owner_base;
  DEPOT_CHECK(i < DEPOT_TCACHE_BINS); /* only the owner's blocks come home */
  uint32_t count;
  void *head = depot_inbox_open(m, &count);
  /* The free key back where the message kept its link and length. */
  ((uintptr_t *)m)[1] = depot_free_key;
  ((uintptr_t *)head)[1] = depot_free_key;
  int32_t n = (int32_t)count;
  depot_bin_t *bin = &tc->bins[i];
  if (bin->room < n) grow(tc, i, 0);
  if (bin->room < n) {
    /* No room for the whole chain: it goes to the pool whole, as one
     * batch, unwalked (splicing it and flushing the excess would walk
     * blocks whose lines the posting thread wrote last, a cache miss
     * each).  The chain is NULL-terminated again (depot_inbox_open). */
    depot_central_give(depot_central_of(li), head, count, &tc->stash);
    return;
  }
  *(void **)m = bin->head;
  bin->head = head;
  bin->room -= n;
}

depot_noinline void *depot_tcache_alloc_slow(depot_tcache_t *tc, unsigned d,
                                             unsigned cls) {
  unsigned i = (d << DEPOT_LIST_CLASS_BITS) | cls;
  depot_bin_t *bin = &tc->bins[i];
  void *p = bin->head;
  if (p) { /* not a miss after all (aligned requests land here) */
    bin->head = *(void **)p;
    bin->room++;
    return p;
  }
  gc_tick(tc);
  tc->gc_dry[i / 64] |= (uint64_t)1 << (i % 64);
  if (depot_inbox_ready(tc->owner) &&
      depot_inbox_drain(tc->owner, take_chain, tc) && (p = bin->head) != NULL) {
    bin->head = *(void **)p;
    bin->room++;
    return p;
  }
  if (bin->limit == 0) grow(tc, i, 1);
  uint32_t want =
      bin->limit ? (bin->limit < bin_batch(i) ? bin->limit : bin_batch(i)) : 1;
  void *head;
  uint32_t n = depot_central_take(depot_central_ready(bin_list_id(tc, i)), want,
                                  &head, &tc->stash);
  if (n == 0) return NULL;
  DEPOT_CHECK_INTERNAL(bin->head == NULL && (n <= want || n <= bin_batch(i)));
  bin->head = *(void **)head;
  bin->room = (int32_t)bin->limit - (int32_t)(n - 1);
  return head;
}

depot_noinline void depot_tcache_free_slow(depot_tcache_t *tc, void *p,
                                           unsigned d, unsigned cls) {
  unsigned i = (d << DEPOT_LIST_CLASS_BITS) | cls;
  depot_bin_t *bin = &tc->bins[i];
  gc_tick(tc);
  if (bin->room <= 0) grow(tc, i, 1);
  if (bin->limit == 0) { /* no budget at all: straight to the pool */
    *(void **)p = NULL;
    /* Carrying the free key, as every block waiting free does (alloc.c's
     * free_full): a second free of it is then caught here too. */
    ((uintptr_t *)p)[1] = depot_free_key;
    depot_central_give(depot_central_of(bin_list_id(tc, i)), p, 1, &tc->stash);
    return;
  }
  /* limit > 0 and room <= 0 imply blocks on the list, so this ends. */
  for (uint32_t b = bin_batch(i); bin->room <= 0;) {
    uint32_t n = depot_bin_count(bin);
    flush_blocks(tc, i, n < b ? n : b);
  }
  *(void **)p = bin->head;
  ((uintptr_t *)p)[1] = depot_free_key;
  bin->head = p;
  bin->room--;
  DEPOT_CHECK_INTERNAL(bin->room >= 0 && (uint32_t)bin->room < bin->limit);
  if (DEPOT_CHECKING_EXPENSIVE) depot_tcache_check(tc);
}

int depot_tcache_holds(const depot_tcache_t *tc, const void *p, unsigned d,
                       unsigned cls) {
  const depot_bin_t *bin = &tc->bins[(d << DEPOT_LIST_CLASS_BITS) | cls];
  uint32_t n = depot_bin_count(bin);
  for (void *b = bin->head; b && n; b = *(void **)b, n--)
    if (b == p) return 1;
  return 0;
}

void depot_tcache_check(const depot_tcache_t *tc) {
  size_t limit_bytes = 0;
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++) {
    const depot_bin_t *bin = &tc->bins[i];
    unsigned cls = i & DEPOT_LIST_CLASS_MASK;
    if (cls == 0 || cls >= DEPOT_NCLASSES) {
      /* Bins no class uses stay empty: the fast path treats them as misses. */
      DEPOT_CHECK(bin->head == NULL && bin->limit == 0 && bin->room == 0);
      continue;
    }
    limit_bytes += (size_t)bin->limit * bin_size(i);
    /* The bin's invariant: blocks on the list == limit - room. */
    uint32_t n = 0;
    for (void *b = bin->head; b; b = *(void **)b) {
      DEPOT_CHECK(++n <= depot_bin_count(bin));
      uintptr_t off = depot_region_offset((uintptr_t)b);
      if (depot_region_contains(off))
        DEPOT_CHECK(depot_region_list_id(off) == bin_list_id(tc, i));
    }
    DEPOT_CHECK(n == depot_bin_count(bin));
  }
  /* Each used outbox bucket: a NULL-terminated chain of bucket_room - room
   * blocks of its list id (another owner's), the first one in last. */
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++) {
    const depot_outbox_t *b = &tc->outbox[k];
    if (b->list_id == DEPOT_OUTBOX_NONE) continue;
    DEPOT_CHECK(b->head != NULL &&
                depot_outbox_of((depot_tcache_t *)tc, b->list_id) == b &&
                (b->list_id & ~(DEPOT_LISTS_PER_OWNER - 1)) != tc->owner_base);
    uint32_t n = 0, want = bucket_count(b);
    const void *last = NULL;
    for (void *x = b->head; x; x = *(void **)x) {
      DEPOT_CHECK(++n <= want && depot_inbox_list_id(x) == b->list_id);
      last = x;
    }
    DEPOT_CHECK(n == want && last == tc->outbox_last[k]);
  }
  /* The pending remote free: a block of its list id, another owner's, on
   * no chain of the outbox. */
  if (tc->remote_pend) {
    unsigned qli = tc->remote_pend_li;
    DEPOT_CHECK(depot_inbox_list_id(tc->remote_pend) == qli &&
                (qli & ~(DEPOT_LISTS_PER_OWNER - 1)) != tc->owner_base);
    DEPOT_CHECK(!bucket_holds(depot_outbox_of((depot_tcache_t *)tc, qli), qli,
                              tc->remote_pend));
  }
  DEPOT_CHECK(limit_bytes == tc->limit_bytes);
  DEPOT_CHECK(tc->limit_bytes <= tc->budget || tc->budget == 0);
}

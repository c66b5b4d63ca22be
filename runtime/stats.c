/* stats.c: DepotMem_Stats and the statistics report (text and JSON). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/common.h"
#include "alloc/heap.h"
#include "alloc/os.h"
#include "alloc/sizeclass.h"
#include "runtime/runtime.h"

/* The public struct keeps its 72 rows (its layout is the ABI); the core's
 * classes fill the first DEPOT_NCLASSES - 1, the rest stay zero. */
_Static_assert(DEPOT_STATS_CLASSES >= DEPOT_NCLASSES - 1,
               "every class of the core has a public row");

static void add_row(DepotMemClassStats *to, const DepotMemClassStats *r) {
  to->spans += r->spans;
  to->blocks_in_use += r->blocks_in_use;
  to->free_blocks += r->free_blocks;
  to->bytes_in_use += r->bytes_in_use;
  to->bytes_held += r->bytes_held;
}

/* The process's resident memory, from /proc/self/statm; 0 if unknown. */
static uint64_t resident_bytes(void) {
  char buf[128];
  if (depot_os_read_small_file("/proc/self/statm", buf, sizeof buf) <= 0)
    return 0;
  uint64_t pages = 0;
  const char *s = strchr(buf, ' '); /* field 2: resident pages */
  if (!s) return 0;
  for (s++; *s >= '0' && *s <= '9'; s++)
    pages = pages * 10 + (uint64_t)(*s - '0');
  return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void fill_domain(unsigned d, DepotMemDomainStats *ds) {
  for (unsigned c = 1; c < DEPOT_NCLASSES; c++) {
    depot_class_stats_t cs;
    depot_core_class_stats(d, c, &cs);
    DepotMemClassStats *r = &ds->classes[c - 1];
    size_t held_out =
        cs.out -
        (cs.stacked + cs.cached > cs.out ? cs.out : cs.stacked + cs.cached);
    r->block_size = depot_class_size[c];
    r->spans = cs.spans;
    r->blocks_in_use = held_out;
    r->free_blocks = cs.capacity - held_out;
    r->bytes_in_use = held_out * depot_class_size[c];
    r->bytes_held = cs.span_bytes;
    add_row(&ds->total, r);
  }
  depot_big_stats_t bs;
  depot_core_big_stats(d, &bs);
  ds->large = (DepotMemClassStats){0, bs.large_blocks, bs.large_blocks,
                                   0, bs.large_bytes,  bs.large_bytes};
  ds->huge = (DepotMemClassStats){0, bs.huge_blocks, bs.huge_blocks,
                                  0, bs.huge_bytes,  bs.huge_bytes};
  add_row(&ds->total, &ds->large);
  add_row(&ds->total, &ds->huge);
  uint64_t req;
  if (depot_debug_requested(d, &req)) {
    ds->bytes_requested = req;
    ds->requested_tracked = 1;
  }
}

int DepotMem_Stats(DepotMemStats *stats) {
  if (!stats || stats->size < offsetof(DepotMemStats, domains)) {
    errno = EINVAL;
    return -1;
  }
  depot_runtime_init();
  DepotMemStats all;
  memset(&all, 0, sizeof all);
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    fill_domain(d, &all.domains[d]);
    add_row(&all.total, &all.domains[d].total);
  }
  depot_core_stats_t core;
  depot_core_stats(&core);
  all.os_mapped_bytes = core.os_mapped_bytes;
  all.resident_bytes = resident_bytes();
  all.held_bytes = core.held_bytes;
  all.dirty_bytes = (uint64_t)core.dirty_pages * DEPOT_PAGE_SIZE;
  all.memory_limit_bytes = core.limit_bytes;
  all.memory_limit_hits = core.limit_hits;
  all.soft_limit_purges = core.limit_reclaims;
  all.purger_running = core.purger_running;
  all.purger_idle_reclaims = core.purger_idle_reclaims;
  all.idle_cache_flushes = core.idle_cache_flushes;
  all.idle_flushed_blocks = core.idle_flushed_blocks;
  /* An older, smaller struct gets the prefix it knows. */
  size_t n = stats->size < sizeof all ? stats->size : sizeof all;
  all.size = n;
  all.version = DEPOT_STATS_VERSION;
  memcpy(stats, &all, n);
  return 0;
}

/* ---- the report ------------------------------------------------------------ */

typedef struct {
  int fd, err;
  size_t len;
  char buf[4096];
} writer_t;

static void flush(writer_t *w) {
  for (size_t off = 0; off < w->len && !w->err;) {
    ssize_t n = write(w->fd, w->buf + off, w->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) w->err = n < 0 ? errno : EIO;
    else off += (size_t)n;
  }
  w->len = 0;
}

static void out(writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out(writer_t *w, const char *fmt, ...) {
  va_list ap;
  if (w->len > sizeof w->buf - 512) flush(w);
  va_start(ap, fmt);
  int n = vsnprintf(w->buf + w->len, sizeof w->buf - w->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    w->len += (size_t)n < sizeof w->buf - w->len ? (size_t)n
                                                 : sizeof w->buf - w->len - 1;
}

static void text_row(writer_t *w, const char *name,
                     const DepotMemClassStats *r) {
  out(w, "  %-8s %10llu %12llu %12llu %14llu %14llu\n", name,
      (unsigned long long)r->spans, (unsigned long long)r->blocks_in_use,
      (unsigned long long)r->free_blocks, (unsigned long long)r->bytes_in_use,
      (unsigned long long)r->bytes_held);
}

/* ---- heaps (alloc/heap.h), by name --------------------------------------- */

/* name as a JSON string's contents: quotes, backslashes and control bytes
 * escaped; other bytes as they are. */
static void json_string(writer_t *w, const char *name) {
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
    if (*c == '"' || *c == '\\') out(w, "\\%c", *c);
    else if (*c < 0x20 || *c == 0x7f) out(w, "\\u%04x", *c);
    else out(w, "%c", *c);
  }
}

static void heap_text(const depot_heap_stats_t *h, void *ctx) {
  writer_t *w = ctx;
  char name[2 * DEPOT_HEAP_NAME_MAX];
  out(w, "  %-24s %5d %12llu %14llu %14llu %14llu %14llu %8llu\n",
      depot_escape(h->name, strlen(h->name), name, sizeof name), h->node,
      (unsigned long long)h->blocks, (unsigned long long)h->bytes,
      (unsigned long long)h->held, (unsigned long long)h->peak,
      (unsigned long long)h->limit, (unsigned long long)h->limit_hits);
}

typedef struct {
  writer_t *w;
  size_t n; /* heaps written so far */
} heap_list_t;

static void heap_json(const depot_heap_stats_t *h, void *ctx) {
  heap_list_t *l = ctx;
  writer_t *w = l->w;
  out(w, "%s{\"name\":\"", l->n++ ? "," : "");
  json_string(w, h->name);
  out(w,
      "\",\"node\":%d,\"blocks_in_use\":%llu,\"bytes_in_use\":%llu,"
      "\"blocks_cached\":%llu,\"bytes_held\":%llu,\"peak_bytes_held\":%llu,"
      "\"limit_bytes\":%llu,\"limit_hits\":%llu,\"spans\":%llu}",
      h->node, (unsigned long long)h->blocks, (unsigned long long)h->bytes,
      (unsigned long long)h->cached, (unsigned long long)h->held,
      (unsigned long long)h->peak, (unsigned long long)h->limit,
      (unsigned long long)h->limit_hits, (unsigned long long)h->spans);
}

static void report_text(writer_t *w, const DepotMemStats *s) {
  out(w, "Depot memory statistics\n");
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    const DepotMemDomainStats *ds = &s->domains[d];
    out(w, "domain %s\n  %-8s %10s %12s %12s %14s %14s\n", depot_domain_name(d),
        "class", "spans", "in use", "free", "bytes in use", "bytes held");
    for (unsigned c = 0; c < DEPOT_STATS_CLASSES; c++) {
      const DepotMemClassStats *r = &ds->classes[c];
      if (!r->spans && !r->blocks_in_use) continue;
      char name[16];
      snprintf(name, sizeof name, "%llu", (unsigned long long)r->block_size);
      text_row(w, name, r);
    }
    text_row(w, "large", &ds->large);
    text_row(w, "huge", &ds->huge);
    text_row(w, "total", &ds->total);
    if (ds->requested_tracked)
      out(w, "  bytes requested (debug hooks): %llu\n",
          (unsigned long long)ds->bytes_requested);
  }
  out(w, "all domains\n");
  text_row(w, "total", &s->total);
  out(w, "address space mapped: %llu bytes\nresident memory: %llu bytes\n",
      (unsigned long long)s->os_mapped_bytes,
      (unsigned long long)s->resident_bytes);
  out(w,
      "held from the OS: %llu bytes (%llu waiting to be purged)\n"
      "memory limit: %llu bytes (0: none), %llu hits, %llu soft-limit purges\n"
      "background purger: %s, %llu idle reclaims\n"
      "idle threads' caches: %llu emptied, %llu blocks\n",
      (unsigned long long)s->held_bytes, (unsigned long long)s->dirty_bytes,
      (unsigned long long)s->memory_limit_bytes,
      (unsigned long long)s->memory_limit_hits,
      (unsigned long long)s->soft_limit_purges,
      s->purger_running ? "running" : "off",
      (unsigned long long)s->purger_idle_reclaims,
      (unsigned long long)s->idle_cache_flushes,
      (unsigned long long)s->idle_flushed_blocks);
  out(w, "heaps\n  %-24s %5s %12s %14s %14s %14s %14s %8s\n", "name", "node",
      "in use", "bytes in use", "bytes held", "peak held", "limit", "hits");
  depot_heap_each(heap_text, w);
}

static void json_row(writer_t *w, const DepotMemClassStats *r) {
  out(w,
      "{\"block_size\":%llu,\"spans\":%llu,\"blocks_in_use\":%llu,"
      "\"free_blocks\":%llu,\"bytes_in_use\":%llu,\"bytes_held\":%llu}",
      (unsigned long long)r->block_size, (unsigned long long)r->spans,
      (unsigned long long)r->blocks_in_use, (unsigned long long)r->free_blocks,
      (unsigned long long)r->bytes_in_use, (unsigned long long)r->bytes_held);
}

static void report_json(writer_t *w, const DepotMemStats *s) {
  out(w, "{\"version\":%u,\"domains\":{", s->version);
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    const DepotMemDomainStats *ds = &s->domains[d];
    out(w, "%s\"%s\":{\"classes\":[", d ? "," : "", depot_domain_name(d));
    for (unsigned c = 0; c < DEPOT_NCLASSES - 1; c++) {
      if (c) out(w, ",");
      json_row(w, &ds->classes[c]);
    }
    out(w, "],\"large\":");
    json_row(w, &ds->large);
    out(w, ",\"huge\":");
    json_row(w, &ds->huge);
    out(w, ",\"total\":");
    json_row(w, &ds->total);
    if (ds->requested_tracked)
      out(w, ",\"bytes_requested\":%llu",
          (unsigned long long)ds->bytes_requested);
    out(w, "}");
  }
  out(w, "},\"total\":");
  json_row(w, &s->total);
  out(w,
      ",\"os_mapped_bytes\":%llu,\"resident_bytes\":%llu,"
      "\"held_bytes\":%llu,\"dirty_bytes\":%llu,\"memory_limit_bytes\":%llu,"
      "\"memory_limit_hits\":%llu,\"soft_limit_purges\":%llu,"
      "\"purger_running\":%llu,\"purger_idle_reclaims\":%llu,"
      "\"idle_cache_flushes\":%llu,\"idle_flushed_blocks\":%llu,\"heaps\":[",
      (unsigned long long)s->os_mapped_bytes,
      (unsigned long long)s->resident_bytes, (unsigned long long)s->held_bytes,
      (unsigned long long)s->dirty_bytes,
      (unsigned long long)s->memory_limit_bytes,
      (unsigned long long)s->memory_limit_hits,
      (unsigned long long)s->soft_limit_purges,
      (unsigned long long)s->purger_running,
      (unsigned long long)s->purger_idle_reclaims,
      (unsigned long long)s->idle_cache_flushes,
      (unsigned long long)s->idle_flushed_blocks);
  heap_list_t l = {w, 0};
  depot_heap_each(heap_json, &l);
  out(w, "]}\n");
}

/* Lock 1 of the lock order (alloc/README.md): held across a whole report,
 * while the core's own locks are taken and dropped one at a time.  write()
 * is a cancellation point: a report runs with cancellation disabled, as
 * glibc's malloc_stats does, so that a thread cancelled while writing
 * cannot leave the lock held (a pending cancel acts at the thread's next
 * cancellation point after the report). */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

void depot_stats_prefork(void) { pthread_mutex_lock(&report_lock); }
void depot_stats_postfork(void) { pthread_mutex_unlock(&report_lock); }

int DepotMem_PrintStats(int fd, unsigned flags) {
  /* Static: a report is large, and stacks of exiting threads may be small.
   * report_lock keeps two reports from sharing it. */
  depot_sparse_bss static DepotMemStats s;
  depot_sparse_bss static writer_t w;
  int cancel_state;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(&report_lock);
  s.size = sizeof s;
  DepotMem_Stats(&s);
  w.fd = fd;
  w.err = 0;
  w.len = 0;
  if (flags & DEPOT_STATS_JSON) report_json(&w, &s);
  else report_text(&w, &s);
  flush(&w);
  int err = w.err;
  pthread_mutex_unlock(&report_lock);
  pthread_setcancelstate(cancel_state, NULL);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* ---- statistics on a signal (stats_signal=...) --------------------------------
 * The handler only posts a semaphore (async-signal-safe); a reporter
 * thread, started only when the key is set, waits on it and writes the
 * report to stderr.  Printing from the handler itself could deadlock on a
 * lock the interrupted thread holds. */

static sem_t report_sem;

static void on_stats_signal(int sig) {
  (void)sig;
  int saved = errno;
  sem_post(&report_sem);
  errno = saved;
}

static void *reporter_main(void *arg) {
  (void)arg;
  for (;;) {
    if (sem_wait(&report_sem) != 0) continue; /* EINTR */
    DepotMem_PrintStats(STDERR_FILENO, 0);
  }
  return NULL;
}

void depot_stats_signal_install(int sig) {
  if (sig <= 0) return;
  pthread_t t;
  pthread_attr_t attr;
  sigset_t all, old;
  if (sem_init(&report_sem, 0, 0) != 0) return;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the reporter takes no signal */
  int err = pthread_create(&t, &attr, reporter_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err) {
    depot_say("depot: stats_signal=%d: cannot start the reporter thread", sig);
    return;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stats_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* meta.c: a bump allocator for metadata over chunks from the OS layer. */
#include "alloc/meta.h"

#include <pthread.h>

#include <stdatomic.h>

#include "alloc/common.h"
#include "alloc/limit.h"
#include "alloc/os.h"

#define META_CHUNK ((size_t)1 << 20)

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static char *meta_cur, *meta_end; /* guarded by meta_lock */
/* The padding skipped before the last object that had to start on a page:
 * smaller objects fill it first, so that, say, the small tables made after
 * an owner heap share a page with what came before it rather than touch
 * one more (guarded by meta_lock; 64-byte aligned, as every size is). */
static char *hole_cur, *hole_end;
static size_t meta_total;         /* guarded by meta_lock */

void *depot_meta_alloc(size_t size) {
  size = depot_align_up(size ? size : 1, DEPOT_CACHE_LINE);
  void *p = NULL;
  if (size > META_CHUNK / 4) { /* big tables get their own mapping */
    size = depot_align_up(size, 4096);
    if (depot_os_map(size, 4096, &p) != 0) return NULL;
    depot_limit_grow(size); /* metadata is never refused, only counted */
    pthread_mutex_lock(&meta_lock);
    meta_total += size;
    pthread_mutex_unlock(&meta_lock);
    return p;
  }
  /* An object of a page or more (a thread cache, an owner heap) starts on
   * a page: its hot fields sit at its start, and an unaligned one would
   * spill them onto one more page.  The padding it skips is the hole that
   * smaller objects fill next. */
  uintptr_t align = size >= 4096 ? 4096 : DEPOT_CACHE_LINE;
  pthread_mutex_lock(&meta_lock);
  if (align < 4096 && (size_t)(hole_end - hole_cur) >= size) {
    if (depot_os_commit_mapped() == 0) { /* the fault seam, as on reuse */
      p = hole_cur;
      hole_cur += size;
      meta_total += size;
    }
    pthread_mutex_unlock(&meta_lock);
    return p;
  }
  int refused = 0;
  size_t pad = (size_t)(-(uintptr_t)meta_cur & (align - 1));
  if ((size_t)(meta_end - meta_cur) < pad + size) {
    void *chunk;
    if (depot_os_map(META_CHUNK, 4096, &chunk) == 0) {
      depot_limit_grow(META_CHUNK);
      meta_cur = chunk;
      meta_end = meta_cur + META_CHUNK;
      pad = 0; /* chunks start on a page */
    }
  } else {
    refused = depot_os_commit_mapped() != 0; /* the fault seam, on reuse */
  }
  if (!refused && (size_t)(meta_end - meta_cur) >= pad + size) {
    p = meta_cur + pad; /* fresh mappings are zero and never reused */
    if (pad >= DEPOT_CACHE_LINE) {
      hole_cur = meta_cur;
      hole_end = meta_cur + pad;
    }
    meta_cur += pad + size;
    meta_total += size;
  }
  pthread_mutex_unlock(&meta_lock);
  return p;
}

size_t depot_meta_bytes(void) {
  pthread_mutex_lock(&meta_lock);
  size_t n = meta_total;
  pthread_mutex_unlock(&meta_lock);
  return n;
}

void depot_meta_prefork(void) { pthread_mutex_lock(&meta_lock); }
void depot_meta_postfork(void) { pthread_mutex_unlock(&meta_lock); }

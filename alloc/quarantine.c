/* quarantine.c: freed blocks held back and checked (quarantine.h).  A ring
 * of entries in metadata memory (made on first use), bounded in entries
 * and in bytes. */
#include "alloc/quarantine.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc/badptr.h"
#include "alloc/config.h"
#include "alloc/log.h"
#include "alloc/meta.h"

#define MAX_ENTRIES 8192u
#define TAG 0x51A2A17140DEAD00u /* first word of a held block: TAG ^ address */

int depot_quarantine_on;

static depot_spin_t quarantine_lock;
static depot_qentry_t *ring; /* made at start-up; NULL: blocks leave at once */
/* quarantine_lock: */
static uint32_t head, count;
static size_t held_bytes;

void depot_quarantine_init(void) {
  int explicit_bytes = depot_config_source(DEPOT_CONF_quarantine_bytes) !=
                       DEPOT_CONF_FROM_DEFAULT;
  depot_quarantine_on = depot_options.quarantine_bytes > 0 &&
                        (depot_options.debug || explicit_bytes);
  if (depot_quarantine_on && !ring)
    ring = depot_meta_alloc(MAX_ENTRIES * sizeof *ring);
}

void depot_quarantine_prefork(void) { depot_spin_lock(&quarantine_lock); }
void depot_quarantine_postfork(void) { depot_spin_unlock(&quarantine_lock); }

int depot_quarantine_takes(size_t bytes) {
  return bytes >= sizeof(uintptr_t) &&
         bytes <= depot_options.quarantine_bytes / 4;
}

static uintptr_t tag_of(const void *block) { return TAG ^ (uintptr_t)block; }

unsigned depot_quarantine_put(const depot_qentry_t *e, depot_qentry_t *out,
                              unsigned max) {
  if (e) {
    memset(e->block, DEPOT_QUARANTINE_FILL, e->bytes);
    *(uintptr_t *)e->block = tag_of(e->block);
  }
  unsigned n = 0;
  depot_spin_lock(&quarantine_lock);
  if (e && !ring) {
    out[n++] = *e; /* no room to hold it: it leaves at once */
  } else if (e) {
    if (count == MAX_ENTRIES) {
      out[n++] = ring[head];
      held_bytes -= ring[head].bytes;
      head = (head + 1) % MAX_ENTRIES;
      count--;
    }
    ring[(head + count) % MAX_ENTRIES] = *e;
    count++;
    held_bytes += e->bytes;
  }
  while (n < max && count > 0 && held_bytes > depot_options.quarantine_bytes) {
    out[n++] = ring[head];
    held_bytes -= ring[head].bytes;
    head = (head + 1) % MAX_ENTRIES;
    count--;
  }
  depot_spin_unlock(&quarantine_lock);
  return n;
}

unsigned depot_quarantine_flush(depot_qentry_t *out, unsigned max) {
  unsigned n = 0;
  depot_spin_lock(&quarantine_lock);
  for (; n < max && count > 0; n++) {
    out[n] = ring[head];
    held_bytes -= ring[head].bytes;
    head = (head + 1) % MAX_ENTRIES;
    count--;
  }
  depot_spin_unlock(&quarantine_lock);
  return n;
}

int depot_quarantine_holds(const void *block) {
  if (*(const uintptr_t *)block != tag_of(block)) return 0;
  int found = 0;
  depot_spin_lock(&quarantine_lock);
  for (uint32_t k = 0; k < count && !found; k++)
    found = ring[(head + k) % MAX_ENTRIES].block == block;
  depot_spin_unlock(&quarantine_lock);
  return found;
}

void depot_quarantine_check(const depot_qentry_t *e) {
  const unsigned char *b = e->block;
  size_t first = SIZE_MAX, last = 0, changed = 0;
  uintptr_t tag = tag_of(b);
  for (size_t k = 0; k < e->bytes; k++) {
    unsigned char want = k < sizeof tag ? ((const unsigned char *)&tag)[k]
                                        : DEPOT_QUARANTINE_FILL;
    if (b[k] != want) {
      if (first == SIZE_MAX) first = k;
      last = k;
      changed++;
    }
  }
  if (changed == 0) return;
  /* Offsets are the program's: from the pointer it freed. */
  long off = (long)first - (long)e->user_off;
  char serial[48] = "";
  if (e->serial)
    snprintf(serial, sizeof serial, ", serial number %llu",
             (unsigned long long)e->serial);
  char bytes[3 * 16 + 1];
  size_t shown = 0;
  for (size_t k = first; k <= last && shown < 16; k++, shown++)
    snprintf(bytes + 3 * shown, 4, " %02x", b[k]);
  bytes[3 * shown] = 0;
  depot_say(
      "depot: write after free: block at %p (%zu bytes, domain '%s'%s): "
      "%zu bytes changed after it was freed, the first at offset %ld "
      "(bytes %ld..%ld now:%s%s)",
      (const void *)(b + e->user_off), e->size, depot_domain_name(e->domain),
      serial, changed, off, off, (long)last - (long)e->user_off, bytes,
      last - first + 1 > shown ? " ..." : "");
  depot_bad_pointer_end();
}

void depot_quarantine_check_all(void) {
  if (!ring) return;
  depot_spin_lock(&quarantine_lock);
  for (uint32_t k = 0; k < count; k++)
    depot_quarantine_check(&ring[(head + k) % MAX_ENTRIES]);
  depot_spin_unlock(&quarantine_lock);
}

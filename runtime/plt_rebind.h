/* plt_rebind.h: pointing loaded objects' PLT slots at other functions
 * (plt_rebind.c). */
#ifndef DEPOT_RUNTIME_PLT_REBIND_H
#define DEPOT_RUNTIME_PLT_REBIND_H

#include <stddef.h>

typedef struct {
  const char *name; /* the symbol the slot is for */
  const void *from; /* the address it must hold now */
  const void *to;   /* the address it gets */
} depot_rebind_t;

/* Every jump slot, in every loaded object, for one of pairs[0..n)'s names
 * that holds its `from` gets its `to`.  Slots in read-only (RELRO) pages
 * only when may_protect (the process has one thread).  Returns how many
 * slots it wrote.  Allocates nothing. */
size_t depot_plt_rebind(const depot_rebind_t *pairs, size_t n,
                        int may_protect);

#endif

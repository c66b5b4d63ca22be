/* plt_rebind.c: points the PLT slots that loaded objects hold for some of
 * libdepot.so's entry points at other functions (depot_plt_rebind).
 *
 * What it is for: with prof=1, override.c writes a jump from each plain
 * entry point (malloc, ...) to its counting version, so every call pays
 * that jump besides the countdown's decrement and branch.  A call from a
 * program or library goes through its PLT, which jumps through a slot of
 * its GOT that the dynamic loader filled with the plain entry's address;
 * writing the counting version's address there instead sends the call
 * straight to it, and the jump is left to the callers nobody rebound
 * (libdepot.so's own calls, libraries loaded later, slots bound later).
 *
 * How: dl_iterate_phdr lists the loaded objects; each one's dynamic section
 * gives its PLT relocations (DT_JMPREL, DT_PLTRELSZ; ELF64 RELA on x86-64
 * and AArch64), its symbol table and string table.  A relocation of the
 * jump-slot type whose symbol has one of the names asked for, and whose
 * slot holds exactly the `from` address, gets `to` (one aligned 8-byte
 * store: a concurrent call reads the old or the new address, both of which
 * are right).  Nothing else is touched:
 *   - only jump slots, never GLOB_DAT: those give the program &malloc, and
 *     a function's address must not change under it (a jump slot is only
 *     ever jumped through);
 *   - a slot that holds anything else (a lazy slot not yet bound, which
 *     points back into its PLT; another allocator's function) is left as
 *     it is;
 *   - a slot inside the object's PT_GNU_RELRO (read-only after loading: a
 *     program linked with -z now) is written only if the caller allows it
 *     (`may_protect`, while the process has one thread: the page is made
 *     writable for the store and read-only again);
 *   - objects without PLT relocations (the vDSO) are skipped.
 * The dynamic section's addresses are the loader's: glibc adds the load
 * address to them in place, other loaders do not, so an address inside the
 * object's loaded segments is taken as relocated, any other one as a
 * link-time address to which the load address is added.
 * The read-only slots' pages are made read-only again after the store:
 * they were, since a slot is written only if it holds a plain version's
 * address, which the loader writes when it relocates the object and
 * before it protects the object's RELRO; the pass with may_protect runs
 * once, at the first allocation miss after start-up, when no relocation
 * is under way (an object that dlopen is loading at that moment still
 * holds its link-time values, which match nothing).  If that mprotect
 * fails the page stays writable, as it was for the store.
 *
 * Nothing here allocates or takes a lock of Depot's; dl_iterate_phdr takes
 * the loader's (recursive) lock of its object list. */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "runtime/plt_rebind.h"

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__ELF__) && defined(__LP64__)
#define JUMP_SLOT R_X86_64_JUMP_SLOT
#elif defined(__aarch64__) && defined(__ELF__) && defined(__LP64__)
#define JUMP_SLOT R_AARCH64_JUMP_SLOT
#endif

#ifdef JUMP_SLOT

typedef struct {
  const depot_rebind_t *pairs;
  size_t n;
  int may_protect;
  size_t done;
  uintptr_t page;
  uintptr_t lo, hi; /* the lowest and highest `from` */
} walk_t;

/* A dynamic-section address, relocated (see the file comment): [lo, hi)
 * is the object's loaded segments. */
static uintptr_t dyn_addr(uintptr_t base, uintptr_t lo, uintptr_t hi,
                          ElfW(Addr) v) {
  return v >= lo && v < hi ? v : base + v;
}

/* Writes to to *slot; 0, or -1 if the page could not be made writable. */
static int store(walk_t *w, void **slot, const void *to, int in_relro) {
  if (!in_relro) {
    __atomic_store_n(slot, (void *)to, __ATOMIC_RELAXED);
    return 0;
  }
  void *page = (void *)((uintptr_t)slot & ~(w->page - 1));
  if (mprotect(page, w->page, PROT_READ | PROT_WRITE) != 0) return -1;
  __atomic_store_n(slot, (void *)to, __ATOMIC_RELAXED);
  mprotect(page, w->page, PROT_READ);
  return 0;
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  walk_t *w = arg;
  uintptr_t base = info->dlpi_addr;
  const ElfW(Dyn) *dyn = NULL;
  uintptr_t relro_lo = 0, relro_hi = 0, lo = UINTPTR_MAX, hi = 0;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
    if (ph->p_type == PT_LOAD) {
      if (base + ph->p_vaddr < lo) lo = base + ph->p_vaddr;
      if (base + ph->p_vaddr + ph->p_memsz > hi)
        hi = base + ph->p_vaddr + ph->p_memsz;
    }
    if (ph->p_type == PT_GNU_RELRO) {
      /* The loader protects the whole pages inside the segment. */
      relro_lo = (base + ph->p_vaddr) & ~(w->page - 1);
      relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~(w->page - 1);
    }
  }
  if (!dyn) return 0;
  const ElfW(Rela) *rel = NULL;
  const ElfW(Sym) *syms = NULL;
  const char *strs = NULL;
  size_t relsz = 0, strsz = 0;
  int rela = 0;
  for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
    switch (d->d_tag) {
      case DT_JMPREL:
        rel = (const ElfW(Rela) *)dyn_addr(base, lo, hi, d->d_un.d_ptr);
        break;
      case DT_PLTRELSZ: relsz = d->d_un.d_val; break;
      case DT_PLTREL: rela = d->d_un.d_val == DT_RELA; break;
      case DT_SYMTAB:
        syms = (const ElfW(Sym) *)dyn_addr(base, lo, hi, d->d_un.d_ptr);
        break;
      case DT_STRTAB:
        strs = (const char *)dyn_addr(base, lo, hi, d->d_un.d_ptr);
        break;
      case DT_STRSZ: strsz = d->d_un.d_val; break;
      default: break;
    }
  }
  if (!rel || !syms || !strs || !rela) return 0;
  for (size_t i = 0; i < relsz / sizeof *rel; i++) {
    if (ELF64_R_TYPE(rel[i].r_info) != JUMP_SLOT) continue;
    void **slot = (void **)(base + rel[i].r_offset);
    const void *now = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if ((uintptr_t)now < w->lo || (uintptr_t)now > w->hi) continue;
    for (size_t k = 0; k < w->n; k++) {
      if (now != w->pairs[k].from) continue;
      size_t name = syms[ELF64_R_SYM(rel[i].r_info)].st_name;
      if (name >= strsz || strcmp(strs + name, w->pairs[k].name) != 0) break;
      uintptr_t a = (uintptr_t)slot;
      int in_relro = a >= relro_lo && a < relro_hi;
      if (in_relro && !w->may_protect) break;
      if (store(w, slot, w->pairs[k].to, in_relro) == 0) w->done++;
      break;
    }
  }
  return 0;
}

size_t depot_plt_rebind(const depot_rebind_t *pairs, size_t n,
                        int may_protect) {
  walk_t w = {pairs, n, may_protect, 0, (uintptr_t)sysconf(_SC_PAGESIZE),
              UINTPTR_MAX, 0};
  for (size_t k = 0; k < n; k++) {
    uintptr_t f = (uintptr_t)pairs[k].from;
    if (f < w.lo) w.lo = f;
    if (f > w.hi) w.hi = f;
  }
  dl_iterate_phdr(each_object, &w);
  return w.done;
}

#else /* no ELF64 jump slots known here: calls keep the jump */

size_t depot_plt_rebind(const depot_rebind_t *pairs, size_t n,
                        int may_protect) {
  (void)pairs, (void)n, (void)may_protect;
  return 0;
}

#endif

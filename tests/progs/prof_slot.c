/* Where this program's calls of malloc and calloc go under
 * LD_PRELOAD=libdepot.so: it allocates enough for the profiler to take
 * samples, then reads its own PLT slots for the two (the jump-slot
 * relocations of its dynamic section) and prints, for each,
 *   "<name> plain"    the slot holds the exported function (dlsym's answer),
 *   "<name> rebound"  it holds another function of the same library,
 *   "<name> other"    anything else (not bound, another library),
 *   "<name> none"     the program has no jump slot for it.
 * Built twice (tests/BUILD): linked with -z now (slots bound, read-only, at
 * start-up) and with -z lazy (each slot bound at its first call).  Also
 * checks that the blocks it allocated are usable. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  void *value;
  int found;
} slot_t;

static int main_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  slot_t *s = arg;
  ElfW(Addr) base = info->dlpi_addr;
  const ElfW(Dyn) *dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = (const ElfW(Dyn) *)(base + info->dlpi_phdr[i].p_vaddr);
  const ElfW(Rela) *rel = NULL;
  const ElfW(Sym) *sym = NULL;
  const char *str = NULL;
  size_t n = 0;
  for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
    ElfW(Addr) v = dyn->d_un.d_ptr;
    if (v < base) v += base; /* glibc relocates these in place */
    if (dyn->d_tag == DT_JMPREL) rel = (const ElfW(Rela) *)v;
    if (dyn->d_tag == DT_SYMTAB) sym = (const ElfW(Sym) *)v;
    if (dyn->d_tag == DT_STRTAB) str = (const char *)v;
    if (dyn->d_tag == DT_PLTRELSZ) n = dyn->d_un.d_val / sizeof *rel;
  }
  for (size_t i = 0; rel && sym && str && i < n; i++)
    if (strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, s->name) == 0) {
      s->value = *(void **)(base + rel[i].r_offset);
      s->found = 1;
    }
  return 1; /* the first object is the program */
}

static void report(const char *name) {
  slot_t s = {name, NULL, 0};
  dl_iterate_phdr(main_object, &s);
  void *exported = dlsym(RTLD_DEFAULT, name);
  Dl_info a, b;
  const char *what = "none";
  if (s.found) {
    if (s.value == exported) what = "plain";
    else if (dladdr(s.value, &a) && dladdr(exported, &b) &&
             strcmp(a.dli_fname, b.dli_fname) == 0)
      what = "rebound";
    else what = "other";
  }
  printf("%s %s\n", name, what);
}

/* Keeps the compiler from removing the allocations. */
static void *volatile sink;

int main(void) {
  /* 64 MiB in 16 KiB blocks: about 128 samples at the default 512 KiB. */
  for (int i = 0; i < 4096; i++) {
    char *p = malloc(16384), *q = calloc(1, 64);
    if (!p || !q || q[63] != 0) return 1;
    p[0] = p[16383] = 1;
    sink = p;
    sink = q;
    free(p);
    free(q);
  }
  report("malloc");
  report("calloc");
  return 0;
}

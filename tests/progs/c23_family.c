/* c23_family: the C23 sized frees and malloc_good_size of the override
 * (linked statically from //:depot_malloc).
 *   c23_family            every size class and beyond: good size = usable
 *                         size, sized frees of plain and aligned blocks
 *   c23_family oversize   free_sized with a size larger than the block
 *   c23_family misaligned free_aligned_sized with a wrong alignment
 * The last two are reported and abort in debug mode (DEPOTMALLOC=debug). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C23 <stdlib.h>; glibc 2.36 does not declare them yet. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
size_t malloc_good_size(size_t size);
size_t malloc_usable_size(void *p);

static int check_sizes(void) {
  static const size_t sizes[] = {0,     1,     15,     16,      17,      128,
                                 129,   1000,  1024,   1025,    32767,   32768,
                                 32769, 65536, 100000, 1 << 20, 3 << 20, 10 << 20};
  int bad = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *p = malloc(n);
    size_t good = malloc_good_size(n), usable = malloc_usable_size(p);
    if (!p || good < n || good != usable) {
      printf("FAIL size %zu: good %zu, usable %zu\n", n, good, usable);
      bad = 1;
    }
    memset(p, 1, n);
    free_sized(p, n);
  }
  for (size_t align = 16; align <= 1 << 16; align <<= 2) {
    void *p = aligned_alloc(align, 3 * align);
    free_aligned_sized(p, align, 3 * align);
  }
  free_sized(NULL, 0);
  free_aligned_sized(NULL, 64, 0);
  return bad;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "oversize") == 0) {
    free_sized(malloc(100), 4096);
    puts("freed");
    return 0;
  }
  if (strcmp(mode, "misaligned") == 0) {
    free_aligned_sized(aligned_alloc(64, 640), 48, 640);
    puts("freed");
    return 0;
  }
  if (check_sizes()) return 1;
  puts("PASS depot");
  return 0;
}

/* malloc_semantics.c: the C library's allocation contract, checked function
 * by function.  Passes on glibc's own malloc (the control run) and must pass
 * with libdepot.so preloaded; prints "depot" or "libc" for who served it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "FAILED line %d: %s\n", __LINE__, #cond);     \
      failures++;                                                   \
    }                                                               \
  } while (0)

int main(void) {
  /* malloc(0) and calloc with zeros: unique, freeable pointers. */
  void *z1 = malloc(0), *z2 = malloc(0);
  CHECK(z1 && z2 && z1 != z2);
  free(z1);
  free(z2);
  free(NULL);
  /* Alignment and usable size. */
  for (size_t n = 1; n < 70000; n = n * 3 + 1) {
    unsigned char *p = malloc(n);
    CHECK(p && (uintptr_t)p % 16 == 0);
    CHECK(malloc_usable_size(p) >= n);
    memset(p, 0xA5, malloc_usable_size(p));
    free(p);
  }
  CHECK(malloc_usable_size(NULL) == 0);
  /* calloc zeroes and catches overflow. */
  unsigned char *c = calloc(1000, 3);
  for (int i = 0; i < 3000; i++) CHECK(c[i] == 0);
  free(c);
  errno = 0;
  CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
  /* realloc: contents kept, realloc(p, 0) frees and returns NULL,
   * realloc(NULL, n) allocates, failure keeps the block. */
  char *r = malloc(10);
  strcpy(r, "abcdefghi");
  r = realloc(r, 100000);
  CHECK(r && strcmp(r, "abcdefghi") == 0);
  r = realloc(r, 5);
  CHECK(r && memcmp(r, "abcde", 5) == 0);
  errno = 0;
  CHECK(realloc(r, SIZE_MAX) == NULL && errno == ENOMEM);
  CHECK(memcmp(r, "abcde", 5) == 0);
  CHECK(realloc(r, 0) == NULL);
  char *rn = realloc(NULL, 7);
  CHECK(rn != NULL);
  free(rn);
  /* reallocarray overflow. */
  errno = 0;
  CHECK(reallocarray(NULL, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
  void *ra = reallocarray(NULL, 10, 10);
  CHECK(ra != NULL);
  free(ra);
  /* posix_memalign: EINVAL and ENOMEM through the result, *out untouched. */
  void *out = (void *)0x1234;
  CHECK(posix_memalign(&out, 3, 64) == EINVAL && out == (void *)0x1234);
  CHECK(posix_memalign(&out, 4, 64) == EINVAL && out == (void *)0x1234);
  CHECK(posix_memalign(&out, 64, SIZE_MAX / 2) == ENOMEM && out == (void *)0x1234);
  for (size_t a = sizeof(void *); a <= ((size_t)1 << 22); a <<= 1) {
    CHECK(posix_memalign(&out, a, 100) == 0 && (uintptr_t)out % a == 0);
    memset(out, 1, 100);
    free(out);
  }
  /* aligned_alloc, memalign, valloc, pvalloc. */
  /* A non-power-of-two alignment: EINVAL (C17, glibc 2.38 and Depot);
   * glibc before 2.38 rounds it up instead. */
  int depot = dlsym(RTLD_DEFAULT, "DepotMem_Stats") != NULL;
  errno = 0;
  void *odd = aligned_alloc(24, 48);
  if (depot) CHECK(odd == NULL && errno == EINVAL);
  else CHECK(odd == NULL ? errno == EINVAL : (uintptr_t)odd % 32 == 0);
  free(odd);
  void *aa = aligned_alloc(256, 512);
  CHECK(aa && (uintptr_t)aa % 256 == 0);
  free(aa);
  void *ma = memalign(48, 100); /* rounded up to 64 */
  CHECK(ma && (uintptr_t)ma % 64 == 0);
  free(ma);
  long ps = sysconf(_SC_PAGESIZE);
  void *va = valloc(10);
  CHECK(va && (uintptr_t)va % (uintptr_t)ps == 0);
  free(va);
  void *pv = pvalloc(ps + 1);
  CHECK(pv && (uintptr_t)pv % (uintptr_t)ps == 0 && malloc_usable_size(pv) >= (size_t)(2 * ps));
  free(pv);
  /* malloc_trim answers. */
  malloc_trim(0);
  printf("%s %s\n", failures ? "FAIL" : "PASS", depot ? "depot" : "libc");
  return failures ? 1 : 0;
}

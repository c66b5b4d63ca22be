/* numa_policy.c: parsing and naming the NUMA policies (numa_policy.h).  No
 * locale, no allocation: it runs while the configuration loads, before the
 * allocator works. */
#include "alloc/numa_policy.h"

#include "alloc/common.h"

int depot_numa_parse(const char *s, size_t n, depot_numa_policy_t *policy,
                     uint64_t *mask) {
  *mask = 0;
  for (depot_numa_policy_t p = DEPOT_NUMA_OFF; p < DEPOT_NUMA_BIND; p++)
    if (depot_word_is(s, n, depot_numa_policy_name(p))) {
      *policy = p;
      return 0;
    }
  if (n <= 5 || !depot_word_is(s, 5, "bind:")) return -1;
  /* Items N or N-M (N <= M), separated by '+' (or ',', which only a file
   * can carry: see config.h), none empty. */
  for (size_t i = 5; i <= n;) {
    unsigned lo = 0, hi = 0, *cur = &lo;
    size_t j = i, digits = 0;
    for (; j < n && s[j] != '+' && s[j] != ','; j++) {
      if (s[j] == '-' && cur == &lo && digits) {
        cur = &hi;
        digits = 0;
        continue;
      }
      if (s[j] < '0' || s[j] > '9') return -1;
      *cur = *cur * 10 + (unsigned)(s[j] - '0');
      if (*cur >= DEPOT_NUMA_BIND_MAX_OS_NODE) return -1;
      digits++;
    }
    if (!digits) return -1; /* "", "+2", "1++2", "1-" */
    if (cur == &lo) hi = lo;
    if (hi < lo) return -1; /* "3-1" */
    for (unsigned node = lo; node <= hi; node++) *mask |= (uint64_t)1 << node;
    i = j + 1;
  }
  *policy = DEPOT_NUMA_BIND;
  return 0;
}

const char *depot_numa_policy_name(depot_numa_policy_t policy) {
  switch (policy) {
    case DEPOT_NUMA_OFF: return "off";
    case DEPOT_NUMA_LOCAL: return "local";
    case DEPOT_NUMA_INTERLEAVE: return "interleave";
    case DEPOT_NUMA_BIND: return "bind";
  }
  return "?";
}

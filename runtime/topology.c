/* topology.c: NUMA topology discovery with hwloc, and the placement policy
 * installed into the core (see topology.h and alloc/numa.h).
 *
 * hwloc allocates while it loads a topology, and Depot may be the process's
 * malloc: so discovery runs after the core is up (from the runtime's
 * start-up, never from inside an allocation), while the core still behaves
 * as one node; its allocations are ordinary node-0 blocks.
 *
 * libhwloc is loaded with dlopen, and only when there is something to
 * discover (more than one node, or a synthetic topology asked for): a
 * program that preloads Depot on a one-node machine maps neither hwloc nor
 * its dependencies. */
#define _GNU_SOURCE
#include "runtime/topology.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/nodes.h"
#include "alloc/os.h"

_Static_assert(DEPOT_TOPO_MAX_NODES == DEPOT_MAX_NODES, "node limits agree");
_Static_assert(DEPOT_TOPO_MAX_CPUS == DEPOT_NUMA_MAX_CPUS, "CPU limits agree");

/* A one-node machine's CPUs and memory, read without sysconf where the
 * kernel tells: sysconf, and the number parser it calls, would bring
 * windows of the C library's code and tables into every program that never
 * calls them itself (88 KiB more resident in a single-threaded one,
 * measured). */

long depot_topology_cpu_list_end(const char *text) {
  long top = 0, v = -1;
  for (const char *c = text;; c++) {
    if (*c >= '0' && *c <= '9') {
      v = (v < 0 ? 0 : v * 10) + (*c - '0');
      if (v >= DEPOT_TOPO_MAX_CPUS) return 0;
    } else {
      if (v + 1 > top) top = v + 1;
      v = -1;
      if (*c == 0) return top;
      if (*c != ',' && *c != '-' && *c != '\n') return 0;
    }
  }
}

long depot_topology_possible_cpus(void) {
  char buf[4096];
  long n = depot_os_read_small_file("/sys/devices/system/cpu/possible", buf,
                                    sizeof buf);
  if (n <= 0 || (size_t)n == sizeof buf - 1) return 0; /* none, or cut */
  return depot_topology_cpu_list_end(buf);
}

uint64_t depot_topology_total_memory(void) {
  struct sysinfo si;
  if (syscall(SYS_sysinfo, &si) != 0) return 0;
  return (uint64_t)si.totalram * (si.mem_unit ? si.mem_unit : 1u);
}

static void one_node(depot_topology_t *t) {
  long cpus = depot_topology_possible_cpus();
  if (cpus <= 0) cpus = sysconf(_SC_NPROCESSORS_CONF);
  uint64_t bytes = depot_topology_total_memory();
  if (bytes == 0) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
  }
  t->nnodes = 1;
  t->os_node[0] = 0;
  t->node_bytes[0] = bytes;
  t->ncpus = cpus > 0 && cpus <= DEPOT_TOPO_MAX_CPUS ? (unsigned)cpus : 1;
  for (unsigned c = 0; c < t->ncpus; c++) t->cpu_node[c] = 0;
}

/* Whether the kernel shows one node only ("0" in .../node/online): then, with
 * no synthetic topology asked for, hwloc has nothing to add and its start-up
 * cost can be skipped for every process. */
static int kernel_has_one_node(void) {
  char buf[64];
  /* Unreadable: no NUMA support in this kernel. */
  if (depot_os_read_small_file("/sys/devices/system/node/online", buf,
                               sizeof buf) <= 0)
    return 1;
  return strcmp(buf, "0\n") == 0 || strcmp(buf, "0") == 0;
}

/* The few hwloc functions used (the header's inline helpers call others,
 * so only exported functions are called here). */
typedef struct {
  int (*topology_init)(hwloc_topology_t *);
  int (*topology_load)(hwloc_topology_t);
  void (*topology_destroy)(hwloc_topology_t);
  int (*get_type_depth)(hwloc_topology_t, hwloc_obj_type_t);
  unsigned (*get_nbobjs_by_depth)(hwloc_topology_t, int);
  hwloc_obj_t (*get_obj_by_depth)(hwloc_topology_t, int, unsigned);
  int (*bitmap_first)(hwloc_const_bitmap_t);
  int (*bitmap_next)(hwloc_const_bitmap_t, int);
} hwloc_api_t;

static int load_hwloc(hwloc_api_t *api) {
  void *h = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("libhwloc.so", RTLD_NOW | RTLD_LOCAL);
  if (!h) return ENOENT;
#define DEPOT_HWLOC_SYM(field, name) \
  if (!(*(void **)&api->field = dlsym(h, name))) return ENOENT
  DEPOT_HWLOC_SYM(topology_init, "hwloc_topology_init");
  DEPOT_HWLOC_SYM(topology_load, "hwloc_topology_load");
  DEPOT_HWLOC_SYM(topology_destroy, "hwloc_topology_destroy");
  DEPOT_HWLOC_SYM(get_type_depth, "hwloc_get_type_depth");
  DEPOT_HWLOC_SYM(get_nbobjs_by_depth, "hwloc_get_nbobjs_by_depth");
  DEPOT_HWLOC_SYM(get_obj_by_depth, "hwloc_get_obj_by_depth");
  DEPOT_HWLOC_SYM(bitmap_first, "hwloc_bitmap_first");
  DEPOT_HWLOC_SYM(bitmap_next, "hwloc_bitmap_next");
#undef DEPOT_HWLOC_SYM
  return 0;
}

static void probe_binding(depot_topology_t *t) {
  void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    t->bind_errno = errno;
    return;
  }
  t->bind_errno = depot_os_bind(page, 4096, t->os_node[0], 0);
  t->bind_works = t->bind_errno == 0;
  munmap(page, 4096);
}

/* Only the first ncpus entries of cpu_node are ever read, so only those
 * are written: the table is 8 KiB, of which a small machine uses a few
 * bytes, and untouched static memory costs no resident page. */
static void cpus_upto(depot_topology_t *t, unsigned n) {
  for (; t->ncpus < n; t->ncpus++) t->cpu_node[t->ncpus] = -1;
}

int depot_topology_discover(depot_topology_t *t) {
  memset(t, 0, offsetof(depot_topology_t, cpu_node));
  t->synthetic =
      getenv("HWLOC_SYNTHETIC") != NULL || getenv("HWLOC_XMLFILE") != NULL;
  int err = 0;
  hwloc_topology_t topo;
  hwloc_api_t api;
  if (!t->synthetic && kernel_has_one_node()) {
    one_node(t);
  } else if ((err = load_hwloc(&api)) != 0) {
    one_node(t); /* hwloc is not installed: one node */
  } else if (api.topology_init(&topo) != 0) {
    err = errno ? errno : EIO;
    one_node(t);
  } else if (api.topology_load(topo) != 0) {
    err = errno ? errno : EIO;
    api.topology_destroy(topo);
    one_node(t);
  } else {
    int depth = api.get_type_depth(topo, HWLOC_OBJ_NUMANODE);
    int n = (int)api.get_nbobjs_by_depth(topo, depth);
    if (n > DEPOT_TOPO_MAX_NODES) n = DEPOT_TOPO_MAX_NODES;
    for (int i = 0; i < n; i++) {
      hwloc_obj_t node = api.get_obj_by_depth(topo, depth, (unsigned)i);
      t->os_node[i] = node->os_index;
      t->node_bytes[i] = node->attr ? node->attr->numanode.local_memory : 0;
      for (int cpu = api.bitmap_first(node->cpuset); cpu >= 0;
           cpu = api.bitmap_next(node->cpuset, cpu)) {
        if (cpu < DEPOT_TOPO_MAX_CPUS) {
          cpus_upto(t, (unsigned)cpu + 1);
          t->cpu_node[cpu] = (int16_t)i;
        }
      }
    }
    api.topology_destroy(topo);
    if (n > 0) {
      t->nnodes = (unsigned)n;
      t->from_hwloc = 1;
    } else {
      one_node(t);
    }
  }
  probe_binding(t);
  return err;
}

/* ---- applying ---------------------------------------------------------------- */

static pthread_mutex_t apply_lock = PTHREAD_MUTEX_INITIALIZER;
depot_sparse_bss static depot_topology_t current; /* apply_lock */
/* Scratch under apply_lock: the topology a reload discovers and the map
 * built from it.  Given back to the OS (zero again, which is all the next
 * use expects) before the lock is released: the core keeps its own copy of
 * the map, and current the topology, so the scratch would otherwise keep
 * two pages resident for the life of the process.  Aligned to 4 KiB, so
 * also a whole number of 4 KiB pages long: given back only where pages are
 * that size (x86), so that they hold nothing else.  (Aligned to 64 KiB, the
 * largest page Linux uses, it would move libdepot.so's data segment.) */
depot_sparse_bss static struct __attribute__((aligned(4096))) {
  depot_topology_t fresh;
  depot_numa_map_t map depot_cache_aligned;
} scratch;

/* depot_topology_apply(t), or with t NULL a discovery first (a reload). */
static int apply(const depot_topology_t *t) {
  depot_numa_map_t *m = &scratch.map;
  depot_numa_policy_t policy;
  uint64_t mask;
  const char *text = depot_config_text(DEPOT_CONF_numa);
  if (depot_numa_parse(text, strlen(text), &policy, &mask) != 0)
    policy = DEPOT_NUMA_LOCAL; /* the parser refused it at load already */
  int err = depot_init();      /* node 0 and the class table come first */
  if (err) return err;
  /* No cancellation while apply_lock is held: depot_say writes. */
  int cancel_state;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(&apply_lock);
  if (!t) { /* hwloc reads files (cancellation points, disabled above) */
    depot_topology_discover(&scratch.fresh);
    t = &scratch.fresh;
  }
  if (t != &current) { /* the used part: see cpus_upto */
    memcpy(&current, t, offsetof(depot_topology_t, cpu_node));
    for (unsigned c = 0; c < t->ncpus; c++)
      current.cpu_node[c] = t->cpu_node[c];
  }
  memset(m, 0, offsetof(depot_numa_map_t, cpu_node));
  m->policy = policy;
  m->strict = (int)depot_config_get(DEPOT_CONF_numa_strict);
  /* Nodes are never removed from the core: keep any it already has. */
  unsigned have = depot_numa_nodes();
  const depot_numa_map_t *old = depot_numa_current_map();
  m->nnodes = t->nnodes > have ? t->nnodes : have;
  for (unsigned n = 0; n < m->nnodes; n++)
    m->os_node[n] = n < t->nnodes ? t->os_node[n] : old ? old->os_node[n] : n;
  m->ncpus = t->ncpus;
  for (unsigned c = 0; c < t->ncpus; c++)
    m->cpu_node[c] = t->cpu_node[c] < 0 ? 0 : (uint16_t)t->cpu_node[c];
  int errors = 0;
  if (policy == DEPOT_NUMA_BIND) {
    for (unsigned n = 0; n < t->nnodes; n++)
      if (t->os_node[n] < DEPOT_NUMA_BIND_MAX_OS_NODE &&
          (mask >> t->os_node[n]) & 1)
        m->allowed[m->nallowed++] = (uint16_t)n;
    for (unsigned b = 0; b < DEPOT_NUMA_BIND_MAX_OS_NODE; b++) {
      int known = 0;
      for (unsigned n = 0; n < t->nnodes; n++) known |= t->os_node[n] == b;
      if ((mask >> b) & 1 && !known) {
        depot_say(
            "depot: config: numa=%s: node %u does not exist here; ignored",
            text, b);
        errors++;
      }
    }
    if (m->nallowed == 0) {
      depot_say(
          "depot: config: numa=%s names no node of this machine; using "
          "local",
          text);
      m->policy = DEPOT_NUMA_LOCAL;
    }
  } else {
    for (unsigned n = 0; n < t->nnodes; n++)
      m->allowed[m->nallowed++] = (uint16_t)n;
  }
  err = depot_nodes_install(m);
#if defined(__x86_64__) || defined(__i386__)
  depot_os_decommit(&scratch, sizeof scratch, 0); /* best effort */
#endif
  pthread_mutex_unlock(&apply_lock);
  pthread_setcancelstate(cancel_state, NULL);
  depot_config_refuse(errors); /* strict_config=1: a missing node is fatal */
  return err;
}

const depot_topology_t *depot_topology_current(void) { return &current; }

void depot_topology_prefork(void) { pthread_mutex_lock(&apply_lock); }
void depot_topology_postfork(void) { pthread_mutex_unlock(&apply_lock); }

int depot_topology_apply(const depot_topology_t *t) { return apply(t); }

int depot_topology_reload(void) { return apply(NULL); }

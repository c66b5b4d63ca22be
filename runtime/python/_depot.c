/* _depot.c: the C half of Python's `depot` module (depot/__init__.py is the
 * other): install()/uninstall() of Depot under CPython's PyMem domains,
 * active(), stats(), trim(), config(), set_option(), dump_profile() and the
 * Pool and Block types.
 *
 * It links libdepot.so (by its soname), so a process that preloads Depot
 * and imports this module has one Depot, and uses only Depot's public API.
 *
 * Routing (install): each installed domain (mem, object) gets a router as
 * its PyMem allocator.  The router sends new blocks to Depot's domain of the
 * same name and sends every free and realloc to the allocator that made the
 * block: DepotMem_DomainOf(p) (never faults, no lock) says whether Depot
 * made it; any other block goes to the allocator that was in place before
 * (`prev`).  uninstall() puts `prev` back only when no block made through
 * the router is live and the router is still the domain's allocator;
 * otherwise the router stays and drains: new blocks come from `prev`, and
 * Depot's blocks still go back to Depot as they die.
 *
 * Concurrency: the mem and object domains are called with the GIL held
 * (CPython's contract for them), and install/uninstall run with it too, so
 * the router's state, its counters (plain integers: a locked
 * read-modify-write on every call would buy nothing under the GIL) and the
 * PyMem tables change with no allocation of these domains in flight.
 * Free-threaded builds, where that does not hold, are refused.  The raw
 * domain is not offered: CPython calls it without the GIL, so swapping its
 * table in a running interpreter would race with other threads
 * (`python3 -m depot run` serves it instead). */
#ifdef DEPOT_HAVE_PYTHON /* without python3-dev this file is empty */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <depot/depot.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef Py_GIL_DISABLED
#define DEPOT_FREE_THREADED 1
#else
#define DEPOT_FREE_THREADED 0
#endif

/* ---- routers --------------------------------------------------------------- */

enum { ROUTE_OFF, ROUTE_SERVING, ROUTE_DRAINING };

typedef struct {
  const char *name; /* "mem", "object" */
  PyMemAllocatorDomain pydomain;
  int depot_domain;      /* DEPOT_DOMAIN_MEM / _OBJ */
  char debug_id;         /* CPython's debug-hooks API id: 'm', 'o' */
  int state;             /* ROUTE_*; written with the GIL held */
  int under_debug;       /* CPython's debug hooks sit above the router */
  PyMemAllocatorEx prev; /* the allocator foreign blocks go back to */
  void *(*d_malloc)(size_t);
  void *(*d_calloc)(size_t, size_t);
  void *(*d_realloc)(void *, size_t);
  void (*d_free)(void *);
  _Atomic long long live;             /* router's Depot blocks still live */
  _Atomic unsigned long long foreign; /* frees/reallocs sent to prev */
} route_t;

static route_t routes[2] = {
    {"mem",
     PYMEM_DOMAIN_MEM,
     DEPOT_DOMAIN_MEM,
     'm',
     ROUTE_OFF,
     0,
     {0},
     DepotMem_Malloc,
     DepotMem_Calloc,
     DepotMem_Realloc,
     DepotMem_Free,
     0,
     0},
    {"object",
     PYMEM_DOMAIN_OBJ,
     DEPOT_DOMAIN_OBJ,
     'o',
     ROUTE_OFF,
     0,
     {0},
     DepotObject_Malloc,
     DepotObject_Calloc,
     DepotObject_Realloc,
     DepotObject_Free,
     0,
     0},
};

static void *r_malloc(void *ctx, size_t n) {
  route_t *r = ctx;
  if (r->state != ROUTE_SERVING) return r->prev.malloc(r->prev.ctx, n);
  void *p = r->d_malloc(n);
  if (p) r->live++;
  return p;
}

static void *r_calloc(void *ctx, size_t nelem, size_t elsize) {
  route_t *r = ctx;
  if (r->state != ROUTE_SERVING)
    return r->prev.calloc(r->prev.ctx, nelem, elsize);
  void *p = r->d_calloc(nelem, elsize);
  if (p) r->live++;
  return p;
}

static int ours(const route_t *r, void *p) {
  return DepotMem_DomainOf(p) == r->depot_domain;
}

static void *r_realloc(void *ctx, void *p, size_t n) {
  route_t *r = ctx;
  if (!p) return r_malloc(ctx, n);
  /* A block stays with the allocator that made it (its size is known only
   * there, so it cannot be moved across). */
  if (ours(r, p)) return r->d_realloc(p, n);
  r->foreign++;
  return r->prev.realloc(r->prev.ctx, p, n);
}

static void r_free(void *ctx, void *p) {
  route_t *r = ctx;
  if (!p) return;
  if (ours(r, p)) {
    r->live--;
    r->d_free(p);
    return;
  }
  r->foreign++;
  r->prev.free(r->prev.ctx, p);
}

/* The router as a PyMem allocator. */
static PyMemAllocatorEx router(route_t *r) {
  PyMemAllocatorEx a = {r, r_malloc, r_calloc, r_realloc, r_free};
  return a;
}

/* CPython's debug hooks keep, as their ctx, a struct that starts with the
 * API id and then the allocator they wrap (obmalloc.c's debug_alloc_api_t,
 * the same from 3.6 to 3.13).  Used only after _PyMem_GetCurrentAllocatorName
 * said the hooks are on and the id matches; otherwise Depot goes above the
 * hooks (safe: foreign blocks still reach them) and says so. */
typedef struct {
  char api_id;
  PyMemAllocatorEx alloc;
} py_debug_api_t;

static const char *py_allocator_name(void) {
#if PY_VERSION_HEX >= 0x03080000 && !DEPOT_FREE_THREADED
  return _PyMem_GetCurrentAllocatorName();
#else
  return NULL;
#endif
}

static int py_debug_name(const char *name) {
  return name && strstr(name, "debug") != NULL;
}

/* CPython's allocator name before the first install (after it, CPython
 * no longer recognises its table and says NULL). */
static const char *initial_name;

/* What serves a Python domain that is not Depot's, in words. */
static const char *not_depot(int domain, const char *name) {
  if (!name) name = initial_name;
  if (!name) return "another allocator hook";
  int debug = py_debug_name(name), pymalloc = strncmp(name, "pymalloc", 8) == 0;
  if (domain == 0 || !pymalloc) /* pymalloc's raw domain is malloc */
    return debug ? "malloc (CPython's debug hooks)" : "malloc";
  return debug ? "pymalloc (CPython's debug hooks)" : "pymalloc";
}

/* Whether the router of r is in domain's chain as installed: the current
 * allocator itself, or wrapped by CPython's debug hooks we put back. */
static int router_on_top(const route_t *r) {
  PyMemAllocatorEx cur;
  PyMem_GetAllocator(r->pydomain, &cur);
  if (cur.malloc == r_malloc && cur.ctx == r) return 1;
  if (r->under_debug && cur.ctx) {
    const py_debug_api_t *api = cur.ctx;
    return api->alloc.malloc == r_malloc && api->alloc.ctx == r;
  }
  return 0;
}

static const char *domain_list_error =
    "domains must be a sequence of 'mem' and 'object' (the raw domain is "
    "called without the GIL and cannot be switched in a running "
    "interpreter: use `python3 -m depot run`)";

/* Parses domains into flags[2]; -1 with an exception. */
static int parse_domains(PyObject *domains, int flags[2]) {
  flags[0] = flags[1] = 0;
  if (PyUnicode_Check(domains)) {
    PyErr_SetString(PyExc_TypeError, domain_list_error);
    return -1;
  }
  PyObject *seq = PySequence_Fast(domains, domain_list_error);
  if (!seq) return -1;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
    const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
    if (s && strcmp(s, "mem") == 0) flags[0] = 1;
    else if (s && (strcmp(s, "object") == 0 || strcmp(s, "obj") == 0))
      flags[1] = 1;
    else {
      Py_DECREF(seq);
      PyErr_Format(PyExc_ValueError, "depot.install: bad domain %R: %s", item,
                   domain_list_error);
      return -1;
    }
  }
  Py_DECREF(seq);
  return 0;
}

/* d[key] = value, stealing value; -1 on failure. */
static int put(PyObject *d, const char *key, PyObject *value) {
  if (!value) return -1;
  int rc = PyDict_SetItemString(d, key, value);
  Py_DECREF(value);
  return rc;
}

/* install(domains): returns a dict domain -> what happened. */
static PyObject *py_install(PyObject *self, PyObject *args, PyObject *kw) {
  (void)self;
  static char *names[] = {"domains", NULL};
  PyObject *domains = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:install", names, &domains))
    return NULL;
  int want[2] = {1, 1};
  if (domains && parse_domains(domains, want) < 0) return NULL;
#if DEPOT_FREE_THREADED
  PyErr_SetString(PyExc_RuntimeError,
                  "depot.install: this is a free-threaded CPython: its "
                  "allocator is mimalloc, tied to the interpreter's own "
                  "object layout, and cannot be replaced (see the README's "
                  "\"From Python and Cython\")");
  return NULL;
#endif
  const char *pyname = py_allocator_name();
  int py_debug = py_debug_name(pyname);
  if (!initial_name) initial_name = pyname;
  PyObject *report = PyDict_New();
  if (!report) return NULL;
  for (int i = 0; i < 2; i++) {
    route_t *r = &routes[i];
    const char *what;
    if (!want[i]) continue;
    if (r->state == ROUTE_SERVING) {
      what = "already installed: nothing changed";
    } else if (r->state == ROUTE_DRAINING) {
      r->state = ROUTE_SERVING;
      what = "installed again (it was draining after uninstall())";
    } else {
      PyMemAllocatorEx cur;
      PyMem_GetAllocator(r->pydomain, &cur);
      const py_debug_api_t *api = cur.ctx;
      if (py_debug && api && api->api_id == r->debug_id) {
        /* Under CPython's debug hooks: Depot goes beneath them, so new
         * blocks are checked too; the hooks pass every block's base down,
         * and the router sends the old ones to the allocator the hooks
         * wrapped before. */
        r->prev = api->alloc;
        r->under_debug = 1;
        what = "installed under CPython's debug hooks";
      } else {
        r->prev = cur;
        r->under_debug = 0;
        what = pyname ? "installed over CPython's own allocator"
                      : "installed over another allocator hook (tracemalloc "
                        "or an extension's): its blocks go back to it";
      }
      r->state = ROUTE_SERVING;
      PyMemAllocatorEx a = router(r);
      PyMem_SetAllocator(r->pydomain, &a);
      /* At once, before anything allocates: the hooks go back over every
       * domain that lost them (a domain still wrapped is left alone). */
      if (r->under_debug) PyMem_SetupDebugHooks();
    }
    if (put(report, r->name, PyUnicode_FromString(what)) < 0) {
      Py_DECREF(report);
      return NULL;
    }
  }
  return report;
}

/* uninstall(): a dict domain -> what happened and why. */
static PyObject *py_uninstall(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  PyObject *report = PyDict_New();
  if (!report) return NULL;
  for (int i = 0; i < 2; i++) {
    route_t *r = &routes[i];
    PyObject *v;
    if (r->state == ROUTE_OFF) continue;
    long long live = r->live;
    if (live <= 0 && router_on_top(r)) {
      /* No block of the router's is live: nothing can reach it again. */
      PyMem_SetAllocator(r->pydomain, &r->prev);
      if (r->under_debug) PyMem_SetupDebugHooks();
      r->state = ROUTE_OFF;
      v = PyUnicode_FromString("restored the previous allocator");
    } else {
      r->state = ROUTE_DRAINING;
      if (live > 0)
        v = PyUnicode_FromFormat(
            "draining: %lld blocks Depot made are still live, so Depot "
            "stays in the chain to free them; new blocks come from the "
            "previous allocator (call uninstall() again to restore it once "
            "they are gone)",
            live);
      else
        v = PyUnicode_FromString(
            "draining: another allocator hook was installed over Depot's, "
            "so Depot's cannot be taken out from under it; new blocks come "
            "from the previous allocator");
    }
    if (put(report, r->name, v) < 0) {
      Py_DECREF(report);
      return NULL;
    }
  }
  return report;
}

/* ---- active() ------------------------------------------------------------------- */

/* The path of the libdepot.so this module uses. */
static const char *depot_library(void) {
  Dl_info info;
  if (dladdr((void *)DepotMem_Malloc, &info) && info.dli_fname)
    return info.dli_fname;
  return NULL;
}

/* Which Depot domain served a probe block, as text; the probe's pointer is
 * stripped of CPython's debug header when the hooks are on. */
static const char *served_by(void *p, int py_debug) {
  if (!p) return "unknown";
  int d = DepotMem_DomainOf(p);
  if (d < 0 && py_debug) d = DepotMem_DomainOf((char *)p - 2 * sizeof(size_t));
  switch (d) {
    case DEPOT_DOMAIN_RAW: return "depot (raw domain, through malloc)";
    case DEPOT_DOMAIN_MEM: return "depot (mem domain, depot.install)";
    case DEPOT_DOMAIN_OBJ: return "depot (object domain, depot.install)";
    default: return NULL;
  }
}

static int set_str(PyObject *d, const char *key, const char *value) {
  return put(d, key, value ? PyUnicode_FromString(value) : Py_NewRef(Py_None));
}

static PyObject *py_active(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  /* The C family: ask the process's malloc (through a pointer, so a
   * preloaded or linked Depot answers if it is the one in use). */
  void *(*volatile process_malloc)(size_t) = malloc;
  void (*volatile process_free)(void *) = free;
  void *p = process_malloc(64);
  int c_ours = p && DepotMem_DomainOf(p) == DEPOT_DOMAIN_RAW;
  process_free(p);
  const char *lib = depot_library();
  const char *preload = getenv("LD_PRELOAD");
  const char *c_family = NULL;
  if (c_ours) {
    const char *base = lib ? strrchr(lib, '/') : NULL;
    base = base ? base + 1 : lib;
    c_family =
        preload && base && strstr(preload, "libdepot") ? "preload" : "linked";
  }
  const char *pyname = py_allocator_name();
  int py_debug = py_debug_name(pyname ? pyname : initial_name);
  int any_router_debug = routes[0].under_debug || routes[1].under_debug;
  static const struct {
    const char *name;
    void *(*alloc)(size_t);
    void (*release)(void *);
  } probes[] = {{"raw", PyMem_RawMalloc, PyMem_RawFree},
                {"mem", PyMem_Malloc, PyMem_Free},
                {"object", PyObject_Malloc, PyObject_Free}};
  PyObject *py = PyDict_New();
  if (!py) goto fail;
  for (unsigned i = 0; i < 3; i++) {
    void *q = probes[i].alloc(24);
    const char *who = served_by(q, py_debug || any_router_debug);
    probes[i].release(q);
    if (!who) who = not_depot((int)i, pyname);
    if (set_str(py, probes[i].name, who) < 0) goto fail;
  }
  char dbg[16] = "0";
  DepotMem_GetOption("debug", dbg, sizeof dbg);
  const char *env_dbg = getenv("DEPOTMALLOC");
  PyObject *installed = PyList_New(0);
  if (!installed) goto fail;
  for (int i = 0; i < 2; i++)
    if (routes[i].state != ROUTE_OFF) {
      PyObject *s = PyUnicode_FromFormat(
          "%s%s", routes[i].name,
          routes[i].state == ROUTE_DRAINING ? " (draining)" : "");
      if (!s || PyList_Append(installed, s) < 0) {
        Py_XDECREF(s);
        Py_DECREF(installed);
        goto fail;
      }
      Py_DECREF(s);
    }
  int debug = strcmp(dbg, "1") == 0 || (env_dbg && strstr(env_dbg, "debug"));
  if (put(d, "installed", installed) < 0 ||
      set_str(d, "c_family", c_family) < 0 ||
      put(d, "python", Py_NewRef(py)) < 0 ||
      put(d, "depot_debug", PyBool_FromLong(debug)) < 0 ||
      put(d, "python_debug_hooks",
          PyBool_FromLong(py_debug || any_router_debug)) < 0 ||
      set_str(d, "python_allocator", pyname) < 0 ||
      set_str(d, "library", lib) < 0)
    goto fail;
  Py_DECREF(py);
  return d;
fail:
  Py_XDECREF(py);
  Py_DECREF(d);
  return NULL;
}

/* ---- stats() -------------------------------------------------------------------- */

static PyObject *class_dict(const DepotMemClassStats *c) {
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K}", "block_size",
                       (unsigned long long)c->block_size, "spans",
                       (unsigned long long)c->spans, "blocks_in_use",
                       (unsigned long long)c->blocks_in_use, "free_blocks",
                       (unsigned long long)c->free_blocks, "bytes_in_use",
                       (unsigned long long)c->bytes_in_use, "bytes_held",
                       (unsigned long long)c->bytes_held);
}

static PyObject *domain_dict(const DepotMemDomainStats *ds) {
  PyObject *d = PyDict_New(), *classes = PyList_New(0);
  if (!d || !classes) goto fail;
  /* Only the classes that hold something (rows of zeros help no one; the
   * rows past the last class are zero too). */
  for (int c = 0; c < DEPOT_STATS_CLASSES; c++) {
    if (!ds->classes[c].spans && !ds->classes[c].blocks_in_use) continue;
    PyObject *row = class_dict(&ds->classes[c]);
    if (!row || PyList_Append(classes, row) < 0) {
      Py_XDECREF(row);
      goto fail;
    }
    Py_DECREF(row);
  }
  if (PyDict_SetItemString(d, "classes", classes) < 0 ||
      put(d, "large", class_dict(&ds->large)) < 0 ||
      put(d, "huge", class_dict(&ds->huge)) < 0 ||
      put(d, "total", class_dict(&ds->total)) < 0)
    goto fail;
  if (ds->requested_tracked &&
      put(d, "bytes_requested",
          PyLong_FromUnsignedLongLong(ds->bytes_requested)) < 0)
    goto fail;
  Py_DECREF(classes);
  return d;
fail:
  Py_XDECREF(classes);
  Py_XDECREF(d);
  return NULL;
}

/* Every live heap of the process (the module's Pools, a Cython module's
 * own heaps), by name: name -> the keys of DepotHeap_Stats.  The public API
 * has no way to enumerate heaps but DepotMem_PrintStats, whose JSON lists
 * them all, so the report goes to an anonymous file and its "heaps" array
 * is read back with the json module.  Names need not be unique (a heap is
 * named by its maker): a repeated one gets " (2)", " (3)", ... */
static PyObject *heaps_dict(void) {
  int fd = memfd_create("depot-stats", MFD_CLOEXEC);
  if (fd < 0) return PyErr_SetFromErrno(PyExc_OSError);
  PyObject *text = NULL, *json = NULL, *report = NULL, *out = NULL;
  off_t len;
  char *map = MAP_FAILED;
  if (DepotMem_PrintStats(fd, DEPOT_STATS_JSON) != 0 ||
      (len = lseek(fd, 0, SEEK_END)) < 0 ||
      (len && (map = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0)) ==
                  MAP_FAILED)) {
    PyErr_SetFromErrno(PyExc_OSError);
    close(fd);
    return NULL;
  }
  close(fd);
  text = PyUnicode_DecodeUTF8(len ? map : "", len, "replace");
  if (len) munmap(map, (size_t)len);
  if (!text || !(json = PyImport_ImportModule("json"))) goto done;
  report = PyObject_CallMethod(json, "loads", "O", text);
  PyObject *list = report && PyDict_Check(report)
                       ? PyDict_GetItemString(report, "heaps")
                       : NULL; /* borrowed */
  if (!list || !PyList_Check(list)) {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_RuntimeError,
                      "depot.stats: DepotMem_PrintStats' JSON has no heaps");
    goto done;
  }
  if (!(out = PyDict_New())) goto done;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
    PyObject *h = PyList_GET_ITEM(list, i); /* borrowed */
    PyObject *name = PyDict_Check(h) ? PyDict_GetItemString(h, "name") : NULL;
    if (!name || !PyUnicode_Check(name)) continue;
    PyObject *key = Py_NewRef(name);
    int taken = 0;
    for (int n = 2; key && (taken = PyDict_Contains(out, key)) == 1; n++) {
      Py_DECREF(key);
      key = PyUnicode_FromFormat("%U (%d)", name, n);
    }
    if (!key || taken < 0 || PyDict_SetItem(out, key, h) < 0) {
      Py_XDECREF(key);
      Py_CLEAR(out);
      goto done;
    }
    Py_DECREF(key);
  }
done:
  Py_XDECREF(report);
  Py_XDECREF(json);
  Py_XDECREF(text);
  return out;
}

static PyObject *py_stats(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  DepotMemStats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (DepotMem_Stats(&s) != 0) return PyErr_SetFromErrno(PyExc_OSError);
  static const char *const dnames[3] = {"raw", "mem", "object"};
  PyObject *out = PyDict_New(), *domains = PyDict_New(), *routed = PyDict_New();
  if (!out || !domains || !routed) goto fail;
  for (int i = 0; i < 3; i++)
    if (put(domains, dnames[i], domain_dict(&s.domains[i])) < 0) goto fail;
  for (int i = 0; i < 2; i++) {
    const route_t *r = &routes[i];
    if (r->state == ROUTE_OFF) continue;
    PyObject *v =
        Py_BuildValue("{s:L,s:K}", "live_blocks", (long long)r->live,
                      "foreign_frees", (unsigned long long)r->foreign);
    if (put(routed, r->name, v) < 0) goto fail;
  }
  PyObject *heaps = heaps_dict();
  if (!heaps || put(out, "heaps", heaps) < 0) goto fail;
  if (PyDict_SetItemString(out, "domains", domains) < 0 ||
      PyDict_SetItemString(out, "installed", routed) < 0 ||
      put(out, "total", class_dict(&s.total)) < 0)
    goto fail;
  static const struct {
    const char *name;
    size_t offset;
  } fields[] = {
#define F(n) {#n, offsetof(DepotMemStats, n)}
      F(os_mapped_bytes),   F(resident_bytes),     F(held_bytes),
      F(dirty_bytes),       F(memory_limit_bytes), F(memory_limit_hits),
      F(soft_limit_purges), F(purger_running),     F(purger_idle_reclaims),
#undef F
  };
  for (unsigned i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    uint64_t v;
    memcpy(&v, (const char *)&s + fields[i].offset, sizeof v);
    if (put(out, fields[i].name, PyLong_FromUnsignedLongLong(v)) < 0) goto fail;
  }
  Py_DECREF(domains);
  Py_DECREF(routed);
  return out;
fail:
  Py_XDECREF(out);
  Py_XDECREF(domains);
  Py_XDECREF(routed);
  return NULL;
}

/* ---- trim, config, set_option, dump_profile, version ------------------------ */

static PyObject *py_trim(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  /* Trimming walks every arena: let other Python threads run meanwhile. */
  PyThreadState *ts = PyEval_SaveThread();
  DepotMem_Trim();
  PyEval_RestoreThread(ts);
  Py_RETURN_NONE;
}

static PyObject *py_config(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  char buf[512];
  for (unsigned i = 0; DepotMem_OptionName(i); i++) {
    const char *name = DepotMem_OptionName(i);
    if (strncmp(name, "stats.", 6) == 0) break; /* config only: see stats() */
    if (DepotMem_GetOption(name, buf, sizeof buf) != 0) continue;
    if (put(d, name, PyUnicode_FromString(buf)) < 0) {
      Py_DECREF(d);
      return NULL;
    }
  }
  return d;
}

static PyObject *py_set_option(PyObject *self, PyObject *args) {
  (void)self;
  const char *name, *value;
  if (!PyArg_ParseTuple(args, "ss:set_option", &name, &value)) return NULL;
  int err = DepotMem_SetOption(name, value);
  if (err == ENOENT)
    return PyErr_Format(PyExc_KeyError, "%s", DepotMem_OptionError());
  if (err) return PyErr_Format(PyExc_ValueError, "%s", DepotMem_OptionError());
  Py_RETURN_NONE;
}

static PyObject *py_dump_profile(PyObject *self, PyObject *arg) {
  (void)self;
  PyObject *bytes;
  if (!PyUnicode_FSConverter(arg, &bytes)) return NULL;
  int err = DepotMem_DumpProfile(PyBytes_AS_STRING(bytes));
  if (err == EINVAL) {
    Py_DECREF(bytes);
    PyErr_SetString(PyExc_RuntimeError,
                    "depot.dump_profile: heap profiling is off (start the "
                    "process with DEPOT_CONF=prof=1)");
    return NULL;
  }
  if (err) {
    errno = err;
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
    Py_DECREF(bytes);
    return NULL;
  }
  Py_DECREF(bytes);
  Py_RETURN_NONE;
}

/* ---- Pool and Block ------------------------------------------------------------
 * A Block is one buffer of a pool: it keeps its pool alive, exports its
 * bytes through the buffer protocol (writable, contiguous), and refuses to
 * be resized or freed while a view of it exists (as bytearray does).
 * Dropping a Block does not free its memory: the pool keeps it until
 * Block.free() or the pool's own end. */
typedef struct {
  PyObject_HEAD DepotHeap *heap; /* owned: destroyed with the pool */
  PyObject *weakrefs;
} PoolObject;

typedef struct {
  PyObject_HEAD PoolObject *pool;
  void *data; /* NULL once freed */
  Py_ssize_t size;
  Py_ssize_t exports;
} BlockObject;

static PyTypeObject Pool_Type, Block_Type;

/* A pool's heap is named "depot.Pool-<n>" unless Pool(name=...) says
 * otherwise (n counts pools, under the GIL). */
static unsigned long long pools_made;

static PyObject *Pool_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *names[] = {"node", "limit", "name", NULL};
  PyObject *node_o = Py_None, *limit_o = Py_None, *name_o = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOO:Pool", names, &node_o,
                                   &limit_o, &name_o))
    return NULL;
  DepotHeapOptions opts = DEPOT_HEAP_OPTIONS_INIT;
  if (node_o != Py_None) {
    long node = PyLong_AsLong(node_o);
    if (node == -1 && PyErr_Occurred()) return NULL;
    if (node < 0 || node > INT_MAX)
      return PyErr_Format(PyExc_ValueError,
                          "Pool: node must be a NUMA node number (0 .. "
                          "nodes-1) or None, not %ld",
                          node);
    opts.node = (int)node;
  }
  if (limit_o != Py_None) {
    Py_ssize_t limit = PyNumber_AsSsize_t(limit_o, PyExc_OverflowError);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (limit <= 0)
      return PyErr_Format(PyExc_ValueError,
                          "Pool: limit must be a positive number of bytes "
                          "or None (no limit), not %zd",
                          limit);
    opts.limit_bytes = (size_t)limit;
  }
  char name[48];
  if (name_o != Py_None) {
    Py_ssize_t len;
    const char *s =
        PyUnicode_Check(name_o) ? PyUnicode_AsUTF8AndSize(name_o, &len) : NULL;
    if (!s) {
      if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "Pool: name must be a str or None");
      return NULL;
    }
    if (len == 0 || (size_t)len >= sizeof name || strlen(s) != (size_t)len)
      return PyErr_Format(PyExc_ValueError,
                          "Pool: name must be 1 to %d bytes of UTF-8 with "
                          "no NUL, not %R",
                          (int)sizeof name - 1, name_o);
    memcpy(name, s, (size_t)len + 1);
  } else {
    snprintf(name, sizeof name, "depot.Pool-%llu", ++pools_made);
  }
  opts.name = name; /* copied by DepotHeap_New */
  PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
  if (!self) return NULL;
  errno = 0;
  self->heap = DepotHeap_New(&opts);
  if (!self->heap) {
    int err = errno;
    Py_DECREF(self);
    if (err == EINVAL)
      return PyErr_Format(PyExc_ValueError,
                          "Pool: Depot refused the heap's options (node=%d "
                          "is not a NUMA node of this machine)",
                          opts.node);
    return PyErr_NoMemory(); /* no memory, or 65535 heaps alive */
  }
  return (PyObject *)self;
}

static void Pool_dealloc(PoolObject *self) {
  if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
  /* No Block is left (each keeps its pool alive), so no view of the
   * heap's memory is either: every block goes at once. */
  if (self->heap) DepotHeap_Destroy(self->heap);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Pool_alloc(PoolObject *self, PyObject *arg) {
  Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0) return PyErr_Format(PyExc_ValueError, "negative size %zd", n);
  BlockObject *b = PyObject_New(BlockObject, &Block_Type);
  if (!b) return NULL;
  b->data = DepotHeap_Malloc(self->heap, (size_t)n);
  if (!b->data) {
    b->pool = NULL;
    Py_DECREF(b);
    return PyErr_NoMemory();
  }
  b->pool = (PoolObject *)Py_NewRef(self);
  b->size = n;
  b->exports = 0;
  return (PyObject *)b;
}

/* The heap's statistics (under the GIL no other thread uses it, so the
 * in-use figures are exact); 0 or -1 with an exception. */
static int pool_heap_stats(PoolObject *self, DepotHeapStats *hs) {
  memset(hs, 0, sizeof *hs);
  hs->size = sizeof *hs;
  if (DepotHeap_Stats(self->heap, hs) != 0) {
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
  }
  return 0;
}

static PyObject *Pool_blocks(PoolObject *self, void *closure) {
  (void)closure;
  DepotHeapStats hs;
  if (pool_heap_stats(self, &hs) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(hs.blocks_in_use);
}

static PyObject *Pool_name(PoolObject *self, void *closure) {
  (void)closure;
  return PyUnicode_DecodeUTF8(DepotHeap_Name(self->heap),
                              (Py_ssize_t)strlen(DepotHeap_Name(self->heap)),
                              "replace");
}

/* The keys of DepotMem_PrintStats' JSON for a heap (see heaps_dict). */
static PyObject *Pool_stats(PoolObject *self, PyObject *unused) {
  (void)unused;
  DepotHeapStats hs;
  if (pool_heap_stats(self, &hs) < 0) return NULL;
  return Py_BuildValue(
      "{s:s,s:i,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "name", hs.name, "node",
      (int)hs.node, "blocks_in_use", (unsigned long long)hs.blocks_in_use,
      "bytes_in_use", (unsigned long long)hs.bytes_in_use, "blocks_cached",
      (unsigned long long)hs.blocks_cached, "bytes_held",
      (unsigned long long)hs.bytes_held, "peak_bytes_held",
      (unsigned long long)hs.peak_bytes_held, "limit_bytes",
      (unsigned long long)hs.limit_bytes, "limit_hits",
      (unsigned long long)hs.limit_hits, "spans", (unsigned long long)hs.spans);
}

static PyMethodDef Pool_methods[] = {
    {"alloc", (PyCFunction)Pool_alloc, METH_O,
     "alloc(size) -> Block: a new buffer of size bytes (uninitialised); "
     "MemoryError past the pool's limit"},
    {"stats", (PyCFunction)Pool_stats, METH_NOARGS,
     "stats() -> dict: the pool's heap (DepotHeap_Stats), with the keys of "
     "depot.stats()['heaps']"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"blocks", (getter)Pool_blocks, NULL, "blocks the pool holds", NULL},
    {"name", (getter)Pool_name, NULL,
     "the name of the pool's heap (in depot.stats()['heaps'])", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void Block_dealloc(BlockObject *self) {
  Py_XDECREF(self->pool); /* the memory stays in the pool (see above) */
  PyObject_Free(self);
}

static int block_usable(BlockObject *self, const char *op) {
  if (!self->data) {
    PyErr_Format(PyExc_ValueError, "Block.%s: the block was freed", op);
    return 0;
  }
  if (self->exports) {
    PyErr_Format(PyExc_BufferError,
                 "Block.%s: %zd views of the block exist (release them "
                 "first: memoryview.release())",
                 op, self->exports);
    return 0;
  }
  return 1;
}

static PyObject *Block_resize(BlockObject *self, PyObject *arg) {
  Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0) return PyErr_Format(PyExc_ValueError, "negative size %zd", n);
  if (!block_usable(self, "resize")) return NULL;
  void *p = DepotHeap_Realloc(self->pool->heap, self->data, (size_t)n);
  if (!p) return PyErr_NoMemory(); /* the block is intact */
  self->data = p;
  self->size = n;
  Py_RETURN_NONE;
}

static PyObject *Block_free(BlockObject *self, PyObject *unused) {
  (void)unused;
  if (!block_usable(self, "free")) return NULL;
  DepotHeap_Free(self->data);
  self->data = NULL;
  self->size = 0;
  Py_RETURN_NONE;
}

static PyObject *Block_address(BlockObject *self, void *closure) {
  (void)closure;
  return PyLong_FromVoidPtr(self->data);
}

static Py_ssize_t Block_len(BlockObject *self) { return self->size; }

static int Block_getbuffer(BlockObject *self, Py_buffer *view, int flags) {
  if (!self->data) {
    PyErr_SetString(PyExc_BufferError, "the block was freed");
    return -1;
  }
  if (PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->size, 0,
                        flags) < 0)
    return -1;
  self->exports++;
  return 0;
}

static void Block_releasebuffer(BlockObject *self, Py_buffer *view) {
  (void)view;
  self->exports--;
}

static PyObject *Block_repr(BlockObject *self) {
  if (!self->data) return PyUnicode_FromString("<depot.Block (freed)>");
  return PyUnicode_FromFormat("<depot.Block of %zd bytes at %p>", self->size,
                              self->data);
}

static PyMethodDef Block_methods[] = {
    {"resize", (PyCFunction)Block_resize, METH_O,
     "resize(size): grow or shrink in place or by moving (contents kept up "
     "to the smaller size); no view may exist"},
    {"free", (PyCFunction)Block_free, METH_NOARGS,
     "free(): give the memory back to the pool now; no view may exist"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Block_getset[] = {
    {"address", (getter)Block_address, NULL,
     "the block's address (for C and Cython code; 0 once freed)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Block_as_sequence = {.sq_length = (lenfunc)Block_len};
static PyBufferProcs Block_as_buffer = {(getbufferproc)Block_getbuffer,
                                        (releasebufferproc)Block_releasebuffer};

static PyTypeObject Pool_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "depot.Pool",
    .tp_basicsize = sizeof(PoolObject),
    .tp_dealloc = (destructor)Pool_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc =
        "Pool(*, node=None, limit=None, name=None): memory tied to this "
        "object's life, one Depot heap.  alloc(n) gives a Block; "
        "everything left is freed at once when the pool and its blocks "
        "are gone.  node: the NUMA node its memory comes from; limit: most "
        "bytes of pages it may hold; name: its name in depot.stats().",
    .tp_weaklistoffset = offsetof(PoolObject, weakrefs),
    .tp_methods = Pool_methods,
    .tp_getset = Pool_getset,
    .tp_new = Pool_new,
};

static PyTypeObject Block_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "depot.Block",
    .tp_basicsize = sizeof(BlockObject),
    .tp_dealloc = (destructor)Block_dealloc,
    .tp_repr = (reprfunc)Block_repr,
    .tp_as_sequence = &Block_as_sequence,
    .tp_as_buffer = &Block_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc =
        "One buffer of a depot.Pool: memoryview(block) wraps it "
        "without a copy.",
    .tp_methods = Block_methods,
    .tp_getset = Block_getset,
};

/* ---- the module ---------------------------------------------------------------- */

static PyObject *py_version(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  unsigned v = DepotMem_Version();
  return Py_BuildValue("(III)", v / 10000, v / 100 % 100, v % 100);
}

static PyMethodDef methods[] = {
    {"install", (PyCFunction)(void (*)(void))py_install,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"uninstall", py_uninstall, METH_NOARGS, NULL},
    {"active", py_active, METH_NOARGS, NULL},
    {"stats", py_stats, METH_NOARGS, NULL},
    {"trim", py_trim, METH_NOARGS, NULL},
    {"config", py_config, METH_NOARGS, NULL},
    {"set_option", py_set_option, METH_VARARGS, NULL},
    {"dump_profile", py_dump_profile, METH_O, NULL},
    {"version", py_version, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "depot._depot",
    "Depot's C half; use the depot package.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__depot(void) {
  if (PyType_Ready(&Pool_Type) < 0 || PyType_Ready(&Block_Type) < 0)
    return NULL;
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  if (PyModule_AddObjectRef(m, "Pool", (PyObject *)&Pool_Type) < 0 ||
      PyModule_AddObjectRef(m, "Block", (PyObject *)&Block_Type) < 0 ||
      PyModule_AddIntConstant(m, "FREE_THREADED", DEPOT_FREE_THREADED) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
#endif /* DEPOT_HAVE_PYTHON */

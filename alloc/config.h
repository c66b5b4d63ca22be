/* config.h: Depot's configuration, the core's options.  One table
 * (DEPOT_CONFIG_KEYS) defines every key: its kind, the C type of its field
 * in depot_options, its default, accepted range and help text.  The option
 * struct, the parser, the error messages, the topology tool's listing and
 * the README's reference all come from it: adding a key touches the table,
 * the code that uses the key and a test.
 *
 * The core loads the configuration on first use (depot_init calls
 * depot_config_ensure before anything reads an option), as the very first
 * step of start-up; the runtime only reads it.
 *
 * Sources, later ones overriding earlier ones:
 *   default  <  file named by DEPOT_CONF_FILE (key=value lines, # comments)
 *            <  DEPOT_CONF="key=value,key=value" in the environment.
 * A bad key or value never aborts and never passes silently: one line on
 * stderr names the key, the bad value (escaped: control characters print
 * as \n, \xHH, ...), what is accepted and the value used instead.
 * strict_config=1 makes any such error fatal: one more line, then the
 * process exits with status 1.
 *
 * In DEPOT_CONF, ',' separates items, except inside the node list of
 * numa=: a piece after a comma made only of digits, '-' and '+' continues
 * it (numa=bind:0,2 is one item; numa=bind:0+2 is the spelling to use).  The
 * file must be a regular file of at most DEPOT_CONF_FILE_MAX bytes; it is
 * opened without blocking, so a FIFO or a terminal is refused, not waited
 * on.
 * Parsing allocates nothing and does not depend on the locale. */
#ifndef DEPOT_ALLOC_CONFIG_H
#define DEPOT_ALLOC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  DEPOT_CONF_BOOL, /* 0/1, true/false, yes/no, on/off */
  DEPOT_CONF_UINT, /* decimal integer in [min, max] */
  DEPOT_CONF_SIZE, /* integer with optional k, m or g suffix (binary) */
  DEPOT_CONF_ENUM, /* one of the words in `choices` */
  DEPOT_CONF_TEXT, /* free text, validated by its user (e.g. a node list) */
} depot_conf_type_t;

typedef enum {
  DEPOT_CONF_FROM_DEFAULT = 0,
  DEPOT_CONF_FROM_FILE,
  DEPOT_CONF_FROM_ENV,
  DEPOT_CONF_FROM_RUNTIME,
} depot_conf_source_t;

/* X(name, kind, C type, default, min, max, choices, help).  ENUM keys are
 * stored as the index of the word in choices. */
/* One row per key, laid out by hand. */
/* clang-format off */
#define DEPOT_CONFIG_KEYS(X)                                                   \
  X(stats, BOOL, int, "0", 0, 1, NULL,                                         \
    "print the statistics report to stderr at exit")                          \
  X(verbose, BOOL, int, "0", 0, 1, NULL,                                       \
    "print the effective configuration to stderr at start-up")                \
  X(strict_config, BOOL, int, "0", 0, 1, NULL,                                 \
    "make a bad configuration key or value fatal")                            \
  X(on_bad_free, ENUM, int, "abort", 0, 0, "abort|warn",                       \
    "a free of a foreign pointer or with the wrong domain: abort, or warn "   \
    "and leak the block")                                                     \
  X(tcache_max_bytes, SIZE, size_t, "4m", 0, (uint64_t)1 << 30, NULL,          \
    "per-thread cache budget in bytes (0: no caching)")                       \
  X(tcache_batch, UINT, unsigned, "32", 2, 256, NULL,                          \
    "most blocks moved between a thread cache and a central pool at once")    \
  X(arena_reserve_bytes, SIZE, size_t, "64g", (uint64_t)64 << 20,              \
    (uint64_t)1 << 46, NULL,                                                   \
    "most address space the heap region grows to, a segment at a time")       \
  X(huge_threshold_bytes, SIZE, size_t, "2m", (uint64_t)32 << 10,              \
    (uint64_t)3 << 20, NULL,                                                   \
    "blocks above this size are mapped directly from the OS")                 \
  X(numa, TEXT, const char *, "local", 0, 0,                                   \
    "off, local, interleave or bind:<nodes> (e.g. bind:0+2, bind:0-3)",       \
    "NUMA placement: off (one pool), local (each thread its CPU's node), "    \
    "interleave (spans rotate over the nodes), bind:<nodes> (only those)")    \
  X(numa_strict, BOOL, int, "0", 0, 1, NULL,                                   \
    "fail an allocation whose memory cannot be bound to its node, rather "    \
    "than count the failed bind and go on")                                   \
  X(purge_delay_ms, UINT, unsigned, "1000", 0, 3600000, NULL,                  \
    "milliseconds free pages stay resident before going back to the OS "      \
    "(0: at once)")                                                           \
  X(purge, ENUM, int, "dontneed", 0, 0, "dontneed|free",                       \
    "how pages go back: dontneed (resident memory falls at once) or free "    \
    "(MADV_FREE: the kernel takes them when it needs memory)")              \
  X(background_purge, ENUM, int, "auto", 0, 0, "0|1|auto",                     \
    "a thread that returns free pages after the purge delay while the "       \
    "program sleeps: 0 never, 1 always, auto once the process has started "   \
    "a thread of its own")                                                    \
  X(memory_limit, TEXT, const char *, "0", 0, 0,                               \
    "0 (none), a size (k, m, g) or cgroup",                                   \
    "most bytes Depot holds from the OS; beyond it allocations fail with "    \
    "ENOMEM; cgroup: the control group's limit less memory_limit_margin")     \
  X(memory_limit_soft, UINT, unsigned, "90", 1, 100, NULL,                     \
    "percentage of memory_limit past which Depot purges every free page and " \
    "flushes caches before it grows")                                         \
  X(memory_limit_margin, TEXT, const char *, "10%", 0, 0,                      \
    "a percentage (e.g. 10%) or a size (k, m, g)",                            \
    "what memory_limit=cgroup leaves for memory that is not Depot's heap")    \
  X(stats_signal, TEXT, const char *, "0", 0, 0,                               \
    "0 (none), a signal number or name (e.g. SIGUSR2)",                       \
    "print the statistics report to stderr when the process receives this "   \
    "signal")                                                                 \
  X(thp, ENUM, int, "default", 0, 0, "default|always|never",                   \
    "transparent huge pages on the heap region: the system's default, "       \
    "always (MADV_HUGEPAGE) or never (MADV_NOHUGEPAGE)")                   \
  X(debug, BOOL, int, "0", 0, 1, NULL,                                         \
    "debug mode for every family, the C library's included (as "              \
    "DEPOTMALLOC=debug): guard bytes, fills, serial numbers, a quarantine")   \
  X(quarantine_bytes, SIZE, size_t, "4m", 0, (uint64_t)1 << 32, NULL,          \
    "freed blocks held back (filled, checked for writes when they leave), "   \
    "in bytes, for the whole process; on in debug mode, or when set alone "   \
    "(0: off)")                                                               \
  X(guard_sample, UINT, unsigned, "0", 0, 1000000000, NULL,                    \
    "serve about one allocation in N (random) from the guarded pool: "        \
    "against an inaccessible page, inaccessible once freed (0: off; turned "  \
    "on at start-up only, then changed or paused at run time)")               \
  X(guard_slots, UINT, unsigned, "256", 1, 65536, NULL,                        \
    "blocks the guarded pool holds at once (16 KiB of address space each "    \
    "and a guard page); a full pool stops sampling")                          \
  X(guard_underflow, ENUM, int, "overflow", 0, 0, "overflow|underflow|both",   \
    "where a guarded block sits: against the page after it (overflows), "     \
    "the page before it (underflows), or either at random")                 \
  X(prof, BOOL, int, "0", 0, 1, NULL,                                          \
    "heap profiling: sample allocations (by bytes) with their call stacks; "  \
    "fixed at start-up")                                                      \
  X(prof_sample, SIZE, size_t, "512k", 1, (uint64_t)1 << 40, NULL,             \
    "with prof=1, mean bytes between samples (exponentially distributed)")    \
  X(prof_active, BOOL, int, "1", 0, 1, NULL,                                   \
    "with prof=1, whether samples are taken now (changes at run time)")       \
  X(prof_final, BOOL, int, "0", 0, 1, NULL,                                    \
    "with prof=1, write the heap profile at exit")                            \
  X(prof_leak, BOOL, int, "0", 0, 1, NULL,                                     \
    "with prof=1, report the sampled blocks still in use at exit (stderr "    \
    "and a profile)")                                                         \
  X(prof_peak, BOOL, int, "0", 0, 1, NULL,                                     \
    "with prof=1, keep the in-use profile of the highest heap and write it "  \
    "at exit")                                                                \
  X(prof_interval, SIZE, size_t, "0", 0, (uint64_t)1 << 46, NULL,              \
    "with prof=1, write a profile each time the in-use heap grows by this "   \
    "many bytes (0: never)")                                                  \
  X(prof_signal, TEXT, const char *, "0", 0, 0,                                \
    "0 (none), a signal number or name (e.g. SIGUSR2)",                       \
    "with prof=1, write a profile when the process receives this signal")     \
  X(prof_prefix, TEXT, const char *, "depot", 0, 0, "a path prefix",          \
    "profiles are written to <prof_prefix>.<pid>.<seq>.<kind>.heap")          \
  X(idle_flush_ms, UINT, unsigned, "1000", 0, 3600000, NULL,                   \
    "the purger empties the cache of a thread blocked in a system call that " \
    "has not refilled or flushed it for this long (0: never)")
/* clang-format on */

/* Values of the ENUM keys, in the order of their choices. */
enum { DEPOT_ON_BAD_FREE_ABORT = 0, DEPOT_ON_BAD_FREE_WARN = 1 };
enum { DEPOT_PURGE_DONTNEED = 0, DEPOT_PURGE_FREE = 1 };
enum { DEPOT_BG_PURGE_OFF = 0, DEPOT_BG_PURGE_ON = 1, DEPOT_BG_PURGE_AUTO = 2 };
enum { DEPOT_THP_DEFAULT = 0, DEPOT_THP_ALWAYS = 1, DEPOT_THP_NEVER = 2 };

/* memory_limit's value (depot_config_live): 0 none, DEPOT_LIMIT_CGROUP, or
 * bytes.  memory_limit_margin's: bytes, or a percentage with
 * DEPOT_MARGIN_PERCENT set. */
#define DEPOT_LIMIT_CGROUP UINT64_MAX
#define DEPOT_MARGIN_PERCENT ((uint64_t)1 << 63)

/* The keys that may change while the program runs (depot_config_set).  The
 * core reads them with depot_config_live, never through depot_options,
 * whose fields keep their load-time values. */
/* clang-format off */
#define DEPOT_CONFIG_RUNTIME_KEYS(X)                                           \
  X(purge_delay_ms) X(background_purge) X(tcache_max_bytes)                    \
  X(huge_threshold_bytes) X(memory_limit) X(memory_limit_soft)                 \
  X(memory_limit_margin) X(prof_active) X(idle_flush_ms)                       \
  X(guard_sample)
/* clang-format on */
enum {
  DEPOT_GUARD_OVERFLOW = 0,
  DEPOT_GUARD_UNDERFLOW = 1,
  DEPOT_GUARD_BOTH = 2
};

typedef enum {
#define DEPOT_CONF_ENUM_ID(name, ...) DEPOT_CONF_##name,
  DEPOT_CONFIG_KEYS(DEPOT_CONF_ENUM_ID)
#undef DEPOT_CONF_ENUM_ID
      DEPOT_CONF_NKEYS
} depot_conf_key_t;

/* The options, one field per key, of the key's C type: what the core and
 * the runtime read.  Written while the configuration loads (under the
 * configuration lock, before depot_init publishes the core) and by tests;
 * read plainly afterwards.  TEXT fields point into the configuration's own
 * storage. */
typedef struct {
#define DEPOT_CONF_FIELD(name, kind, ctype, ...) ctype name;
  DEPOT_CONFIG_KEYS(DEPOT_CONF_FIELD)
#undef DEPOT_CONF_FIELD
} depot_options_t;
extern depot_options_t depot_options;

typedef struct {
  const char *name;
  depot_conf_type_t type;
  const char *default_text;
  uint64_t min, max;
  const char *choices; /* ENUM: words separated by '|' */
  const char *help;
} depot_conf_def_t;

extern const depot_conf_def_t depot_conf_defs[DEPOT_CONF_NKEYS];

/* The largest configuration file read whole. */
#define DEPOT_CONF_FILE_MAX 16384u

/* Loads the configuration once (later calls return at once).  The core's
 * start-up calls it first of all. */
void depot_config_ensure(void);

/* Loads the defaults, then the file named by DEPOT_CONF_FILE, then
 * DEPOT_CONF.  Returns the number of errors reported (each on one line of
 * stderr); with strict_config=1 in the end, any error exits instead
 * (depot_config_refuse). */
int depot_config_load(void);

/* The same from a given file path and DEPOT_CONF text (either may be NULL);
 * also re-loads at run time (tests, the topology tool).  Takes the
 * configuration lock. */
int depot_config_load_from(const char *file_path, const char *env_text);

/* With strict_config=1 and errors > 0 (reported already, one line each),
 * says so on one more line and ends the process with status 1 (_exit: no
 * core dump, no atexit handlers); otherwise returns.  For errors found
 * after loading too (a NUMA node that does not exist, DEPOTMALLOCSTATS). */
void depot_config_refuse(int errors);

/* Parses a boolean as the BOOL keys accept it: 1/0, true/false, yes/no,
 * on/off, any case.  Returns 0 with *out, or -1. */
int depot_config_parse_bool(const char *text, size_t len, int *out);

/* Restores every key to its default (tests). */
void depot_config_reset(void);

/* The value of a key: numbers and booleans as integers, ENUM as the index of
 * the word in its choices. */
uint64_t depot_config_get(depot_conf_key_t key);

/* The value as text (TEXT keys, and for printing). */
const char *depot_config_text(depot_conf_key_t key);
depot_conf_source_t depot_config_source(depot_conf_key_t key);
const char *depot_config_source_name(depot_conf_source_t source);

/* The value of a key as an atomic (relaxed) load: what every reader of a
 * key of DEPOT_CONFIG_RUNTIME_KEYS uses, from any thread, at any time. */
uint64_t depot_config_live(depot_conf_key_t key);

/* Whether key may change at run time. */
int depot_config_runtime_key(depot_conf_key_t key);

/* Changes a key of DEPOT_CONFIG_RUNTIME_KEYS while the program runs (its
 * source becomes "run time").  Returns 0; EINVAL for a bad value, EPERM for
 * a key fixed at start-up, with a message of one line in err (if err_len). */
int depot_config_set(depot_conf_key_t key, const char *value, char *err,
                     size_t err_len);

/* The key named name (length len), or DEPOT_CONF_NKEYS. */
depot_conf_key_t depot_config_find(const char *name, size_t len);

/* Copies the value's text into buf under the configuration lock (safe
 * against a concurrent depot_config_set). */
void depot_config_text_copy(depot_conf_key_t key, char *buf, size_t len);

/* Fork safety (init.c): the configuration lock. */
void depot_config_prefork(void);
void depot_config_postfork(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_CONFIG_H */

/* depot_run.c: depot-run, runs a program on Depot.
 *   depot-run [--debug] [--conf k=v,...] [--stats] [--lib PATH] [--force]
 *             -- program args...
 *
 * It preloads libdepot.so (LD_PRELOAD, put first) with the configuration
 * asked for (DEPOT_CONF, DEPOTMALLOC), and makes sure Depot really serves
 * malloc in the program rather than letting it run silently without:
 *
 *   1. Before running it, from the program's file: a setuid or setgid
 *      program (the loader ignores LD_PRELOAD for it), a statically linked
 *      one (no PT_INTERP: no loader to preload anything) and a 32-bit one
 *      are refused with a message and status 126, unless --force.
 *   2. In the program: libdepot.so's handshake constructor
 *      (runtime/run_check.c) asks the process's malloc for a block and
 *      writes through a pipe whether it was Depot's.  A program that brings
 *      its own malloc is stopped before main (status 126, unless --force);
 *      if libdepot.so was never loaded at all, depot-run says so when the
 *      program ends.
 *
 * Exit status: the program's (128 + N if signal N killed it); 126 when
 * Depot cannot serve the program, 127 when it cannot be run, 2 for bad
 * usage. */
#define _GNU_SOURCE
#include <depot/depot.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define SONAME "libdepot.so." STR(DEPOT_VERSION_MAJOR)

enum { EXIT_USAGE = 2, EXIT_NO_DEPOT = 126, EXIT_NOT_RUN = 127 };

static struct {
  int debug, stats, force;
  const char *lib;
  char conf[4096];
} opt;

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: depot-run [options] [--] program [args...]\n"
      "Runs program with Depot as its malloc (LD_PRELOAD).\n"
      "  --debug          DEPOTMALLOC=debug: debug hooks on the Depot API\n"
      "                   and size checks of free_sized\n"
      "  --conf k=v,...   Depot configuration (DEPOT_CONF; see depot(7))\n"
      "  --stats          print Depot's statistics at exit (stats=1)\n"
      "  --lib PATH       the libdepot.so to preload (default: " SONAME
      "\n"
      "                   in ../lib beside depot-run, or $DEPOT_RUN_LIB)\n"
      "  --force          run a static, setuid or own-allocator program "
      "anyway\n"
      "  --version, --help\n"
      "Exit status: the program's; 126 if Depot cannot serve it, 127 if it\n"
      "cannot be run, 2 for bad usage.\n");
}

static void add_conf(const char *kv) {
  size_t used = strlen(opt.conf);
  snprintf(opt.conf + used, sizeof opt.conf - used, "%s%s", used ? "," : "",
           kv);
}

/* Returns the index of the program in argv. */
static int parse_args(int argc, char **argv) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) return i + 1;
    if (strcmp(a, "--debug") == 0) opt.debug = 1;
    else if (strcmp(a, "--stats") == 0) opt.stats = 1;
    else if (strcmp(a, "--force") == 0) opt.force = 1;
    else if (strcmp(a, "--conf") == 0 && i + 1 < argc) add_conf(argv[++i]);
    else if (strncmp(a, "--conf=", 7) == 0) add_conf(a + 7);
    else if (strcmp(a, "--lib") == 0 && i + 1 < argc) opt.lib = argv[++i];
    else if (strncmp(a, "--lib=", 6) == 0) opt.lib = a + 6;
    else if (strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--version") == 0) {
      printf("depot-run (Depot) %d.%d.%d\n", DEPOT_VERSION_MAJOR,
             DEPOT_VERSION_MINOR, DEPOT_VERSION_PATCH);
      exit(0);
    } else {
      fprintf(stderr, "depot-run: unknown option %s\n", a);
      usage(stderr);
      exit(EXIT_USAGE);
    }
  }
  return i;
}

/* The file execvp would run for name, in out; 0 if there is none. */
static int find_program(const char *name, char *out, size_t len) {
  if (strchr(name, '/')) {
    snprintf(out, len, "%s", name);
    return access(out, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    snprintf(out, len, "%.*s%s%s", (int)n, path, n ? "/" : "", name);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
      return 1;
    path += n + (path[n] == ':');
  }
  return 0;
}

/* Why Depot cannot be preloaded into the program file, or NULL if it can
 * (a script: its interpreter is checked by the handshake). */
static const char *cannot_preload(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
    return "is setuid or setgid: the dynamic loader ignores LD_PRELOAD for it";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL; /* exec will say why */
  Elf64_Ehdr eh;
  const char *why = NULL;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    close(fd);
    return NULL;
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    why = "is not an x86-64 program, and libdepot.so is";
  } else {
    int interp = 0;
    for (unsigned i = 0; i < eh.e_phnum && !interp; i++) {
      Elf64_Phdr ph;
      off_t at = (off_t)eh.e_phoff + (off_t)i * eh.e_phentsize;
      if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph) break;
      interp = ph.p_type == PT_INTERP;
    }
    if (!interp)
      why =
          "is statically linked: there is no dynamic loader to preload Depot "
          "(link it with libdepot_malloc.a instead)";
  }
  close(fd);
  return why;
}

/* The libdepot.so to preload: --lib, $DEPOT_RUN_LIB, the installed one
 * beside this program's bin/, or the one of a Bazel tree (bazel-bin/). */
static const char *find_library(char *buf, size_t len) {
  if (opt.lib) return opt.lib;
  const char *env = getenv("DEPOT_RUN_LIB");
  if (env && *env) return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return NULL;
  self[n] = 0;
  char *slash = strrchr(self, '/');
  *slash = 0;
  static const char *const tries[] = {"/../lib/" SONAME, "/../libdepot.so"};
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    snprintf(buf, len, "%s%s", self, tries[i]);
    if (access(buf, R_OK) == 0) return realpath(buf, NULL);
  }
  return NULL;
}

static void set_env(const char *lib, int fd) {
  const char *old = getenv("LD_PRELOAD");
  char *preload;
  if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "",
               old ? old : "") < 0)
    _exit(EXIT_NOT_RUN);
  setenv("LD_PRELOAD", preload, 1);
  if (opt.stats) add_conf("stats=1");
  if (opt.conf[0]) {
    const char *conf = getenv("DEPOT_CONF");
    char *all;
    if (asprintf(&all, "%s%s%s", conf && *conf ? conf : "",
                 conf && *conf ? "," : "", opt.conf) < 0)
      _exit(EXIT_NOT_RUN);
    setenv("DEPOT_CONF", all, 1);
  }
  if (opt.debug) setenv("DEPOTMALLOC", "debug", 1);
  char fdtext[16];
  snprintf(fdtext, sizeof fdtext, "%d", fd);
  setenv("DEPOT_RUN_FD", fdtext, 1);
  if (opt.force) setenv("DEPOT_RUN_FORCE", "1", 1);
  else unsetenv("DEPOT_RUN_FORCE");
}

/* The handshake byte: 'y' Depot serves malloc, 'n' it does not, 'x' exec
 * failed, 0 nothing came (libdepot.so never loaded).  Stops waiting when
 * the child exits (*status then holds its wait status). */
static char await_verdict(int fd, pid_t child, int *status, int *reaped) {
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (r > 0) {
      char c;
      ssize_t n = read(fd, &c, 1);
      if (n == 1) return c;
      if (n == 0 && *reaped) return 0;
    } else if (r < 0 && errno != EINTR) {
      return 0;
    }
    if (*reaped) return 0;
    if (waitpid(child, status, WNOHANG) == child) *reaped = 1;
  }
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
  int first = parse_args(argc, argv);
  if (first >= argc) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[first];
  char path[PATH_MAX], libbuf[PATH_MAX];
  if (!find_program(name, path, sizeof path)) {
    fprintf(stderr, "depot-run: %s: no such program\n", name);
    return EXIT_NOT_RUN;
  }
  const char *why = cannot_preload(path);
  if (why && !opt.force) {
    fprintf(stderr,
            "depot-run: %s %s; not running it without Depot (--force runs it "
            "anyway)\n",
            path, why);
    return EXIT_NO_DEPOT;
  }
  if (why)
    fprintf(stderr, "depot-run: warning: %s %s; running it anyway\n", path,
            why);
  const char *lib = find_library(libbuf, sizeof libbuf);
  if (!lib || access(lib, R_OK) != 0) {
    fprintf(stderr, "depot-run: cannot find %s (use --lib PATH)\n",
            lib ? lib : SONAME);
    return EXIT_NOT_RUN;
  }
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    perror("depot-run: pipe");
    return EXIT_NOT_RUN;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("depot-run: fork");
    return EXIT_NOT_RUN;
  }
  if (child == 0) {
    /* The write end stays open across exec for the handshake. */
    int wfd = fcntl(pfd[1], F_DUPFD, 3);
    close(pfd[0]);
    close(pfd[1]);
    set_env(lib, wfd);
    execv(path, argv + first);
    int err = errno;
    ssize_t ignored = write(wfd, "x", 1);
    (void)ignored;
    fprintf(stderr, "depot-run: cannot run %s: %s\n", path, strerror(err));
    _exit(EXIT_NOT_RUN);
  }
  close(pfd[1]);
  /* Like system(): the terminal's interrupt goes to the program; wait for it. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int status = 0, reaped = 0;
  char verdict = await_verdict(pfd[0], child, &status, &reaped);
  if (!reaped) waitpid(child, &status, 0);
  if (verdict == 'x') return EXIT_NOT_RUN;
  if (verdict == 'n')
    fprintf(stderr,
            "depot-run: %s: malloc in it is not Depot's (the program has an "
            "allocator "
            "of its own)%s\n",
            path,
            opt.force ? "; it ran on that one"
                      : "; stopped before main (--force runs it anyway)");
  else if (verdict != 'y')
    fprintf(stderr,
            "depot-run: warning: %s ran without Depot: libdepot.so was never "
            "loaded into it\n",
            path);
  return exit_code(status);
}

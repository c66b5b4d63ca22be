// subprocess.h: running a command of the test's (a probe program, a
// preloaded one) and collecting its exit status and output.
#ifndef DEPOT_TESTS_SUBPROCESS_H
#define DEPOT_TESTS_SUBPROCESS_H

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace depot_test {

struct Result {
  int status;          // exit code, or 128 + signal
  std::string output;  // stdout and stderr together
};

// The path of a file the test depends on (Bazel runfiles).
inline std::string Runfile(const std::string &rel) {
  const char *srcdir = getenv("TEST_SRCDIR");
  const char *ws = getenv("TEST_WORKSPACE");
  return srcdir && ws ? std::string(srcdir) + "/" + ws + "/" + rel : rel;
}

// Runs cmd with /bin/sh, stderr merged into the output.
inline Result Sh(const std::string &cmd) {
  Result r{-1, ""};
  FILE *f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.output.append(buf, n);
  int st = pclose(f);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

}  // namespace depot_test

#endif  // DEPOT_TESTS_SUBPROCESS_H

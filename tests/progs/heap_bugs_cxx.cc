// heap_bugs_cxx: heap bugs of C++ programs (new/delete), one per mode, and
// with "ok" after the mode the correct counterpart.
//   heap_bugs_cxx MODE [ok]
// Modes: overflow, double_delete, use_after_delete, array_delete_mismatch
// (new[] of a type with a destructor freed with delete: the pointer freed is
// inside the block, past the element count the compiler stores before the
// array).  delete[] of a single object is not among them: it reads a count
// that is not there and runs that many destructors before any free, which
// no allocator can see coming.
#include <cstdio>
#include <cstring>
#include <string>

namespace {

struct Tracked {
  Tracked() : value(1) {}
  ~Tracked() { value = 0; }
  volatile long value;  // its writes happen, even on a deleted object
};

template <typename T>
T *launder(T *p) {
  static T *volatile sink;
  sink = p;
  return sink;
}

void churn() {
  for (int i = 0; i < 20000; i++) delete[] launder(new char[200 + (i % 7) * 100]);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: heap_bugs_cxx MODE [ok]\n");
    return 2;
  }
  std::string m = argv[1];
  bool ok = argc > 2 && std::strcmp(argv[2], "ok") == 0;
  if (m == "overflow") {
    char *p = launder(new char[32]);
    std::memset(p, 'a', ok ? 32 : 33);
    delete[] launder(p);  // laundered: the compiler must not drop the memset
  } else if (m == "double_delete") {
    Tracked *t = launder(new Tracked);
    delete t;
    if (!ok) delete launder(t);
  } else if (m == "use_after_delete") {
    Tracked *t = launder(new Tracked[4]);
    delete[] t;
    if (!ok) launder(t)[1].value = 42;
    churn();
  } else if (m == "array_delete_mismatch") {
    Tracked *t = launder(new Tracked[4]);
    if (ok) delete[] t;
    else delete launder(t);  // should be delete[]
  } else {
    std::fprintf(stderr, "heap_bugs_cxx: unknown mode %s\n", m.c_str());
    return 2;
  }
  std::printf("clean\n");
  return 0;
}

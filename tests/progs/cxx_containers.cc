// cxx_containers.cc: a C++ program whose operator new/delete go through
// malloc/free; containers built and checked from several threads.
#include <dlfcn.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

int main() {
  std::vector<std::thread> ts;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; t++)
    ts.emplace_back([t, &bad] {
      for (int round = 0; round < 20; round++) {
        std::map<int, std::string> m;
        std::unordered_map<std::string, std::vector<int>> u;
        for (int i = 0; i < 2000; i++) {
          m[i] = std::to_string(i * 7 + t);
          u[m[i]].assign(size_t(i % 17), i);
        }
        auto big = std::make_unique<long[]>(100000);
        for (int i = 0; i < 100000; i++) big[size_t(i)] = i;
        for (int i = 0; i < 2000; i++) {
          if (m[i] != std::to_string(i * 7 + t)) bad[size_t(t)]++;
          const auto &v = u[m[i]];
          if (v.size() != size_t(i % 17) || (!v.empty() && v[0] != i)) bad[size_t(t)]++;
        }
        for (int i = 0; i < 100000; i += 997)
          if (big[size_t(i)] != i) bad[size_t(t)]++;
      }
    });
  for (auto &t : ts) t.join();
  int total = 0;
  for (int b : bad) total += b;
  std::printf("%s %s\n", total ? "FAIL" : "PASS",
              dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc");
  return total ? 1 : 0;
}

// DepotMem_Stats and the statistics report.
#include <depot/depot.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

DepotMemStats Snapshot() {
  DepotMemStats s{};
  s.size = sizeof s;
  EXPECT_EQ(DepotMem_Stats(&s), 0);
  EXPECT_EQ(s.version, unsigned(DEPOT_STATS_VERSION));
  return s;
}

// Index of the class row that serves 48-byte blocks (classes step by 16).
constexpr int kRow48 = 2;

TEST(Stats, BlocksInUseFollowAllocationsPerDomainAndClass) {
  DepotMemStats before = Snapshot();
  std::vector<void *> v;
  for (int i = 0; i < 1000; i++) v.push_back(DepotObject_Malloc(40));
  DepotMemStats mid = Snapshot();
  const DepotMemClassStats &b = before.domains[DEPOT_DOMAIN_OBJ].classes[kRow48];
  const DepotMemClassStats &m = mid.domains[DEPOT_DOMAIN_OBJ].classes[kRow48];
  EXPECT_EQ(m.block_size, 48u);
  EXPECT_EQ(m.blocks_in_use - b.blocks_in_use, 1000u);
  EXPECT_EQ(m.bytes_in_use - b.bytes_in_use, 48000u);
  EXPECT_GE(m.spans, 1u);
  EXPECT_GE(m.bytes_held, m.bytes_in_use);
  EXPECT_EQ(m.free_blocks + m.blocks_in_use,
            m.spans * (m.bytes_held / m.spans / 48)) << "capacity adds up";
  // Other domains did not see this traffic.
  EXPECT_EQ(mid.domains[DEPOT_DOMAIN_MEM].classes[kRow48].blocks_in_use,
            before.domains[DEPOT_DOMAIN_MEM].classes[kRow48].blocks_in_use);
  for (void *p : v) DepotObject_Free(p);
  DepotMemStats after = Snapshot();
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_OBJ].classes[kRow48].blocks_in_use,
            b.blocks_in_use);
}

TEST(Stats, LargeAndHugeRows) {
  DepotMemStats before = Snapshot();
  void *l = DepotMem_Malloc(100000);
  void *h = DepotMem_Malloc(size_t(6) << 20);
  DepotMemStats mid = Snapshot();
  const DepotMemDomainStats &b = before.domains[DEPOT_DOMAIN_MEM];
  const DepotMemDomainStats &m = mid.domains[DEPOT_DOMAIN_MEM];
  EXPECT_EQ(m.large.blocks_in_use - b.large.blocks_in_use, 1u);
  EXPECT_GE(m.large.bytes_held - b.large.bytes_held, 100000u);
  EXPECT_EQ(m.huge.blocks_in_use - b.huge.blocks_in_use, 1u);
  EXPECT_EQ(m.huge.bytes_held - b.huge.bytes_held, size_t(6) << 20);
  EXPECT_EQ(m.total.blocks_in_use - b.total.blocks_in_use, 2u);
  EXPECT_GT(mid.resident_bytes, 0u);
  {  // the resident figure, not the mapped one (statm's first field)
    std::ifstream status("/proc/self/status");
    std::string line;
    uint64_t rss_kib = 0;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) rss_kib = std::stoull(line.substr(6));
    ASSERT_GT(rss_kib, 0u);
    EXPECT_GE(mid.resident_bytes, rss_kib * 1024 / 2);
    EXPECT_LE(mid.resident_bytes, rss_kib * 1024 * 2);
  }
  EXPECT_GE(mid.os_mapped_bytes, size_t(6) << 20);
  DepotMem_Free(l);
  DepotMem_Free(h);
  DepotMemStats after = Snapshot();
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_MEM].huge.blocks_in_use, b.huge.blocks_in_use);
  EXPECT_EQ(after.domains[DEPOT_DOMAIN_MEM].large.blocks_in_use, b.large.blocks_in_use);
}

TEST(Stats, OlderSmallerStructsGetTheirPrefix) {
  unsigned char buf[sizeof(DepotMemStats)];
  memset(buf, 0xAB, sizeof buf);
  auto *s = reinterpret_cast<DepotMemStats *>(buf);
  size_t small = offsetof(DepotMemStats, domains) + sizeof(DepotMemDomainStats);
  s->size = small;
  ASSERT_EQ(DepotMem_Stats(s), 0);
  EXPECT_EQ(s->size, small);
  EXPECT_EQ(s->version, unsigned(DEPOT_STATS_VERSION));
  for (size_t i = small; i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xAB) << i;
  s->size = 3;
  errno = 0;
  EXPECT_EQ(DepotMem_Stats(s), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(DepotMem_Stats(nullptr), -1);
}

std::string Report(unsigned flags) {
  FILE *f = tmpfile();
  EXPECT_EQ(DepotMem_PrintStats(fileno(f), flags), 0);
  rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

// The struct keeps DEPOT_STATS_CLASSES rows (its layout is the ABI); the
// classes fill the first rows in increasing size up to 32 KiB, every row
// after them is zero.
TEST(Stats, ClassRowsAscendThenTheRestAreZero) {
  void *p = DepotMem_RawMalloc(32768);
  DepotMemStats s = Snapshot();
  DepotMem_RawFree(p);
  const DepotMemClassStats *rows = s.domains[DEPOT_DOMAIN_RAW].classes;
  unsigned n = 0;
  while (n < DEPOT_STATS_CLASSES && rows[n].block_size) {
    if (n) {
      EXPECT_GT(rows[n].block_size, rows[n - 1].block_size) << n;
    }
    n++;
  }
  ASSERT_GT(n, 8u);
  EXPECT_EQ(rows[0].block_size, 16u);
  EXPECT_EQ(rows[n - 1].block_size, 32768u);
  EXPECT_GE(rows[n - 1].blocks_in_use, 1u) << "the 32 KiB block";
  for (unsigned c = n; c < DEPOT_STATS_CLASSES; c++) {
    const DepotMemClassStats &z = rows[c];
    EXPECT_EQ(z.block_size | z.spans | z.blocks_in_use | z.free_blocks |
                  z.bytes_in_use | z.bytes_held,
              0u)
        << "row " << c;
  }
}

TEST(Stats, TextReport) {
  void *p = DepotMem_RawMalloc(700);
  std::string r = Report(0);
  DepotMem_RawFree(p);
  for (const char *want : {"domain raw", "domain mem", "domain obj", "bytes held",
                           "large", "huge", "all domains", "resident memory: "})
    EXPECT_NE(r.find(want), std::string::npos) << want << "\n" << r;
  EXPECT_NE(r.find("\n  768 "), std::string::npos) << "the 768-byte class row";
}

TEST(Stats, JsonReport) {
  std::string r = Report(DEPOT_STATS_JSON);
  std::string head = "{\"version\":" + std::to_string(DEPOT_STATS_VERSION) +
                     ",\"domains\":{\"raw\":{\"classes\":[";
  EXPECT_EQ(r.rfind(head, 0), 0u) << r;
  int depth = 0, min_depth = 0;
  size_t rows = 0;
  for (size_t i = 0; i < r.size(); i++) {
    depth += r[i] == '{' || r[i] == '[';
    depth -= r[i] == '}' || r[i] == ']';
    if (depth < min_depth) min_depth = depth;
    if (r.compare(i, 13, "{\"block_size\"") == 0) rows++;
  }
  EXPECT_EQ(depth, 0) << "unbalanced JSON";
  EXPECT_EQ(min_depth, 0);
  // Only the classes' rows (not the struct's zero rows past the last
  // class): the rows of block size 0 are each domain's large, huge and
  // total and the overall total.
  size_t classes = 0;
  for (const DepotMemClassStats &c : Snapshot().domains[0].classes)
    classes += c.block_size != 0;
  EXPECT_EQ(rows, 3u * (classes + 3) + 1) << "rows per domain + total";
  size_t zero_rows = 0;
  for (size_t at = 0;
       (at = r.find("{\"block_size\":0,", at)) != std::string::npos; at++)
    zero_rows++;
  EXPECT_EQ(zero_rows, 3u * 3 + 1) << "a class row of block size 0";
  EXPECT_NE(r.find("\"resident_bytes\":"), std::string::npos);
  EXPECT_EQ(r.back(), '\n');
}

TEST(Stats, PrintToABadDescriptorFails) {
  errno = 0;
  EXPECT_EQ(DepotMem_PrintStats(-1, 0), -1);
  EXPECT_EQ(errno, EBADF);
}

// A thread cancelled while its report waits in write() (a cancellation
// point) must not leave the report's lock held: the next report, from
// another thread, completes.
void *ReportToFd(void *arg) {
  DepotMem_PrintStats(*static_cast<int *>(arg), DEPOT_STATS_JSON);
  pthread_testcancel();  // a cancel held back during the report acts here
  return nullptr;
}

TEST(Stats, CancelledReportIsFollowedByAnother) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_GT(fcntl(fds[1], F_SETPIPE_SZ, 4096), 0);  // the JSON report is larger
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, ReportToFd, &fds[1]), 0);
  // Wait until the pipe is full (a report writes a few KiB at a time): the
  // writer is then blocked in write() with the report's lock held.
  int queued = 0, stable = 0;
  for (int i = 0; i < 5000 && stable < 50; i++) {
    usleep(1000);
    int now = 0;
    ASSERT_EQ(ioctl(fds[0], FIONREAD, &now), 0);
    stable = now > 0 && now == queued ? stable + 1 : 0;
    queued = now;
  }
  ASSERT_EQ(stable, 50) << "the report never filled the pipe";
  ASSERT_EQ(pthread_cancel(t), 0);
  std::thread drain([&] {
    char buf[4096];
    while (read(fds[0], buf, sizeof buf) > 0) {
    }
  });
  void *ret = nullptr;
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(ret, PTHREAD_CANCELED);
  close(fds[1]);
  drain.join();
  close(fds[0]);
  // The next report, with a deadline (a report waiting for the lock forever
  // cannot be joined: end the process with the failure instead).
  std::atomic<bool> done{false};
  std::thread next([&] {
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    EXPECT_EQ(DepotMem_PrintStats(devnull, 0), 0);
    close(devnull);
    done = true;
  });
  for (int i = 0; i < 10000 && !done; i++) usleep(1000);
  if (!done) {
    std::fprintf(stderr, "FAILED: the report after a cancelled one never ended\n");
    _exit(1);
  }
  next.join();
}

}  // namespace

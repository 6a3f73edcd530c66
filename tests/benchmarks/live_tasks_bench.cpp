// SPDX-License-Identifier: Apache-2.0
//
// What fu::live_tasks() costs (issue 16, part 3), each row beside a baseline from the same run:
//   L1  live_tasks() over N suspended tasks (N sleepers in a Pool(N/2): half running-suspended,
//       half queued): time per dump and per task, beside spawn+join of N empty tasks (what the
//       tasks themselves cost).
//   L2  spawn+join of N empty tasks while another thread dumps without pause, beside the same
//       with nobody dumping: what a dump running meanwhile costs the tasks.
// What the record costs when nobody dumps (W1, W6 against main) is measured by bench itself on
// two builds; README, "Performance", says how.
//
// usage: live_tasks_bench [--quick] [--runs K]
//   --quick  small sizes, one run, results checked, no figures judged (live_tasks_bench_quick)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "bench_process.hpp"

namespace fu = fiberutils;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const char bench::program_name[] = "live_tasks_bench";

namespace {

using bench::check;

double ns_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ns per task of spawn+join of n empty tasks.
double spawn_join(long n) {
  long ran = 0;
  const auto t0 = Clock::now();
  fu::Group g;
  for (long i = 0; i < n; ++i) g.spawn([&ran] { ++ran; });
  g.join();
  const double ns = ns_since(t0) / double(n);
  check(ran == n, "spawn_join: every task ran once");
  return ns;
}

// ns per dump of n live tasks.
double dump(long n, int dumps) {
  fu::Pool p(n / 2);
  std::atomic<long> asleep{0};
  for (long i = 0; i < n; ++i)
    p.spawn([&asleep] {
      ++asleep;
      fu::this_task::sleep_for(1h);
    });
  while (asleep.load() < n / 2) fu::this_task::yield();
  double ns = 0;
  for (int d = 0; d < dumps; ++d) {
    const auto t0 = Clock::now();
    const std::vector<fu::TaskInfo> tasks = fu::live_tasks();
    ns += ns_since(t0);
    check(long(tasks.size()) == n, "dump: every live task reported");
    long queued = 0;
    for (const fu::TaskInfo& t : tasks) queued += t.state == fu::TaskState::queued;
    check(queued == n - n / 2, "dump: the Pool's queued tasks reported as queued");
  }
  p.cancel();
  p.join();
  return ns / dumps;
}

// ns per task of spawn+join of n empty tasks while a thread dumps without pause.
double spawn_join_while_dumping(long n, long* dumps_done) {
  std::atomic<bool> stop{false};
  std::atomic<long> dumps{0};
  std::thread dumper([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      (void)fu::live_tasks();
      dumps.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (dumps.load() == 0) std::this_thread::yield();
  const double ns = spawn_join(n);
  stop = true;
  dumper.join();
  *dumps_done = dumps.load();
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
  }
  if (quick) runs = 1;
  const long n = quick ? 1000 : 10000;
  const long spawns = quick ? 2000 : 100000;

  std::vector<double> dump_ns, base_ns, dumping_ns, quiet_ns;
  long dumps = 0;
  for (int r = 0; r < runs; ++r) {
    base_ns.push_back(spawn_join(n));
    dump_ns.push_back(dump(n, quick ? 2 : 20));
    quiet_ns.push_back(spawn_join(spawns));
    dumping_ns.push_back(spawn_join_while_dumping(spawns, &dumps));
    check(dumps > 0, "a dump ran while tasks were spawned");
  }
  std::printf("| row | live tasks | baseline | ratio |\n|---|---|---|---|\n");
  std::printf("| L1 live_tasks() over %ld tasks | %.1f us per dump, %.1f ns per task | spawn+join: %.1f ns per task | %.2fx |\n",
              n, median(dump_ns) / 1000, median(dump_ns) / n, median(base_ns),
              median(dump_ns) / n / median(base_ns));
  std::printf("| L2 spawn+join %ld while a thread dumps | %.1f ns per task | nobody dumping: %.1f ns per task | %.2fx |\n",
              spawns, median(dumping_ns), median(quiet_ns), median(dumping_ns) / median(quiet_ns));
  std::printf("(median of %d runs; %s)\n", runs, quick ? "quick: results checked, figures not judged" : "full sizes");
  return 0;
}

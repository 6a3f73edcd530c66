// SPDX-License-Identifier: Apache-2.0
//
// fu::run_blocking against what people write without it (issue 14's M2 and its micro-benchmark).
// Every measurement runs in a fresh process (this program re-executes itself with --child), and
// each row is the median of --runs of them, next to its baselines measured in the same run.
//
//   M2     1,000 tasks through fu::Pool(16), each making a 10 ms nanosleep() call through
//          run_blocking, while a 1 ms ticker fiber runs on the spawning thread: wall time over the
//          ideal (1,000 x 10 ms / 16), and how late the ticker ever was once the calls had been
//          handed over (its first 20 ms, while the pool's 16 threads are created, are left out).
//          Baselines: the same tasks with a hand-written offload (std::async per call, a
//          boost::fibers::promise to wake the fiber), and 16 plain std::threads (no fibers at
//          all: the floor for this workload).
//   micro  one empty run_blocking round trip from plain code, against std::async + a fiber
//          future.
//
// usage: run_blocking_bench [--quick] [--runs K]
//   --quick  small sizes, one run each, results checked, no targets (the run_blocking_bench_quick
//            test)
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench_process.hpp"

namespace fu = fiberutils;
namespace bf = boost::fibers;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const char bench::program_name[] = "run_blocking_bench";

namespace {

using bench::check;

struct Params {
  long calls;            // M2: number of blocking calls
  long call_ms;          // M2: length of each
  long limit;            // M2: Pool limit / threads
  long micro_iterations;
};
const Params kFull{1000, 10, 16, 20000};
const Params kQuick{64, 1, 16, 500};

void blocking_sleep(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

// What a child prints: up to two figures.
struct Result {
  double a = 0, b = 0;
};

// Runs `work(pool)` with a 1 ms ticker on this thread; returns {wall / ideal, worst lateness ms}.
template <class Offload>
Result m2_with_ticker(const Params& p, Offload offload) {
  std::atomic<long> done{0};
  std::atomic<bool> finished{false};
  double worst_late_ms = 0;
  const auto t0 = Clock::now();
  fu::Group ticker;
  ticker.spawn([&] {
    auto next = Clock::now();
    while (!finished) {
      next += 1ms;
      fu::this_task::sleep_until(next);
      const double late = std::chrono::duration<double, std::milli>(Clock::now() - next).count();
      if (Clock::now() - t0 > 20ms) worst_late_ms = std::max(worst_late_ms, late);
    }
  });
  {
    fu::Pool pool(p.limit);
    for (long i = 0; i < p.calls; ++i)
      pool.spawn([&] {
        offload([&] { blocking_sleep(p.call_ms); });
        ++done;
      });
    pool.join();
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  finished = true;
  ticker.join();
  check(done == p.calls, "M2: every call ran");
  const double ideal = p.calls * p.call_ms / 1000.0 / p.limit;
  return {wall / ideal, worst_late_ms};
}

Result m2_fiberutils(const Params& p) {
  return m2_with_ticker(p, [](auto f) { fu::run_blocking(f); });
}

// The hand-written offload: a thread per call (std::async), a fiber promise to wake the fiber.
// The std::future's destructor joins the thread, blocking the fiber's thread until it has ended.
Result m2_async(const Params& p) {
  return m2_with_ticker(p, [](auto f) {
    bf::promise<void> done;
    bf::future<void> woken = done.get_future();
    std::future<void> thread = std::async(std::launch::async, [&] {
      f();
      done.set_value();
    });
    woken.get();
  });
}

Result m2_threads(const Params& p) {
  std::atomic<long> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (long t = 0; t < p.limit; ++t)
    ts.emplace_back([&] {
      while (next++ < p.calls) blocking_sleep(p.call_ms);
    });
  for (auto& t : ts) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  check(next >= p.calls, "M2 threads: every call ran");
  return {wall / (p.calls * p.call_ms / 1000.0 / p.limit), 0};
}

Result micro_fiberutils(const Params& p) {
  long sum = 0;
  (void)fu::run_blocking([] { return 0; });  // the pool's first thread is not what is measured
  const auto t0 = Clock::now();
  for (long i = 0; i < p.micro_iterations; ++i) sum += fu::run_blocking([](long v) { return v; }, 1L);
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  check(sum == p.micro_iterations, "micro: every call returned its value");
  return {ns / p.micro_iterations, 0};
}

Result micro_async(const Params& p) {
  long sum = 0;
  const auto t0 = Clock::now();
  for (long i = 0; i < p.micro_iterations; ++i) {
    bf::promise<long> result;
    bf::future<long> got = result.get_future();
    auto thread = std::async(std::launch::async, [&] { result.set_value(1); });
    sum += got.get();
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  check(sum == p.micro_iterations, "micro async: every call returned its value");
  return {ns / p.micro_iterations, 0};
}

struct Measure {
  const char* name;
  Result (*run)(const Params&);
};
const Measure kMeasures[] = {
    {"m2_fiberutils", m2_fiberutils}, {"m2_async", m2_async},     {"m2_threads", m2_threads},
    {"micro_fiberutils", micro_fiberutils}, {"micro_async", micro_async},
};

// Runs one measurement in a fresh process; returns what it printed.
Result run_child(const char* self, const char* name, bool quick) {
  std::vector<std::string> args = {self, "--child", name};
  if (quick) args.push_back("--quick");
  const bench::ChildRun run = bench::run_self(args);
  check(run.exited_ok(), name);
  Result r;
  check(std::sscanf(run.out.c_str(), "%lf %lf", &r.a, &r.b) == 2, "child output");
  return r;
}

Result median_of(const char* self, const char* name, bool quick, int runs) {
  std::vector<Result> rs;
  for (int i = 0; i < runs; ++i) rs.push_back(run_child(self, name, quick));
  auto med = [&](double Result::*f) {
    std::vector<double> v;
    for (auto& r : rs) v.push_back(r.*f);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {med(&Result::a), med(&Result::b)};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int runs = 3;
  const char* child = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--child") && i + 1 < argc) child = argv[++i];
  }
  const Params& p = quick ? kQuick : kFull;
  if (child) {
    for (const Measure& m : kMeasures)
      if (!std::strcmp(m.name, child)) {
        const Result r = m.run(p);
        std::printf("%.6f %.6f\n", r.a, r.b);
        return 0;
      }
    return 2;
  }
  if (quick) runs = 1;
  const char* self = "/proc/self/exe";
  const Result f = median_of(self, "m2_fiberutils", quick, runs);
  const Result a = median_of(self, "m2_async", quick, runs);
  const Result t = median_of(self, "m2_threads", quick, runs);
  const Result mf = median_of(self, "micro_fiberutils", quick, runs);
  const Result ma = median_of(self, "micro_async", quick, runs);

  std::printf("median of %d fresh processes each%s\n\n", runs, quick ? " (quick sizes)" : "");
  std::printf("| workload | fiberutils run_blocking | hand-written offload (std::async + fiber promise) | %ld plain std::threads |\n", p.limit);
  std::printf("|---|---|---|---|\n");
  std::printf("| M2 %ld calls of %ld ms, Pool(%ld): wall / ideal | %.3fx | %.3fx | %.3fx |\n", p.calls,
              p.call_ms, p.limit, f.a, a.a, t.a);
  std::printf("| M2: 1 ms ticker on the spawning thread, worst lateness | %.2f ms | %.2f ms | |\n",
              f.b, a.b);
  std::printf("| micro: one empty round trip from plain code | %.0f ns | %.0f ns (%.2fx) | |\n", mf.a,
              ma.a, ma.a / mf.a);
  if (quick) return 0;
  std::printf("\n");
  auto target = [](const char* what, bool ok) {
    std::printf("target %-60s %s\n", what, ok ? "met" : "NOT MET");
  };
  target("M2: wall <= 1.04x ideal", f.a <= 1.04);
  target("M2: ticker never late by more than 2 ms", f.b <= 2.0);
  target("micro: round trip faster than std::async + fiber future", mf.a < ma.a);
  return 0;
}

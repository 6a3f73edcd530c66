// SPDX-License-Identifier: Apache-2.0
//
// fu::Workers against fiberutils on one thread and against raw Boost.Fiber's multi-thread
// scheduling algorithms (work_stealing and shared_work, suspend=false and suspend=true), each
// measurement in a fresh process (this program re-executes itself with --child: Boost's
// algorithms keep static state and may be set up once per process), median of --runs K.
//   M1   2,000 tasks of ~1 ms CPU through a Group: wall time, speedup over one thread, and the
//        CPU the process burns during one idle second after the burst.
//   M1b  100,000 empty tasks spawned and joined: cost per task.
//   Idle CPU time of an idle Workers(2) over one second.
// Every run checks its result and fails loudly when wrong.
//
// usage: workers_bench [--quick] [--runs K]
//   --quick  small sizes, one run each, results checked, no targets (the workers_bench_quick test)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/fiber/all.hpp>
#include <boost/fiber/algo/shared_work.hpp>
#include <boost/fiber/algo/work_stealing.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench_process.hpp"

namespace fu = fiberutils;
namespace bf = boost::fibers;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const char bench::program_name[] = "workers_bench";

namespace {

using bench::check;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// ~1 ms of CPU: `iters` rounds of a 64-bit mix, calibrated once by the driver. The result is
// returned so that the compiler keeps the work.
std::uint64_t crunch(std::uint64_t seed, long iters) {
  std::uint64_t x = seed;
  for (long i = 0; i < iters; ++i) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 31;
  }
  return x;
}

long calibrate_1ms() {
  long iters = 1000;
  for (;;) {
    const auto t0 = Clock::now();
    volatile std::uint64_t sink = crunch(1, iters);
    (void)sink;
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s > 0.02) return static_cast<long>(static_cast<double>(iters) * 0.001 / s);
    iters *= 2;
  }
}

struct Result {
  double seconds = 0;      // the workload's wall time
  double idle_cpu_ms = 0;  // CPU the process used during one idle second afterwards (-1: not measured)
  double off_thread = 0;   // share of the tasks that ran on another thread than the spawner
};

// Counts the tasks that run on another thread than the one that spawned them: how evenly the
// work was shared, a figure that a loaded machine (other processes taking the CPUs) does not
// distort the way it distorts wall times.
struct OffThread {
  std::thread::id spawner = std::this_thread::get_id();
  std::atomic<long> n{0};
  void note() {
    if (std::this_thread::get_id() != spawner) n.fetch_add(1, std::memory_order_relaxed);
  }
};

// ---- fiberutils --------------------------------------------------------------------------

// Runs `tasks` tasks of `iters` rounds through a Group; returns the wall time.
double fu_burst(long tasks, long iters, OffThread* off = nullptr) {
  std::atomic<std::uint64_t> sum{0};
  std::atomic<long> ran{0};
  const auto t0 = Clock::now();
  fu::Group g;
  for (long i = 0; i < tasks; ++i)
    g.spawn([&, i] {
      sum.fetch_add(iters ? crunch(static_cast<std::uint64_t>(i), iters) : 1, std::memory_order_relaxed);
      ran.fetch_add(1, std::memory_order_relaxed);
      if (off) off->note();
    });
  g.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  check(ran == tasks, "every task ran once");
  return s;
}

// One idle second of the whole process, the calling thread asleep (no fiber of it runs).
double idle_cpu_ms(std::chrono::milliseconds idle) {
  const double c0 = cpu_seconds();
  std::this_thread::sleep_for(idle);
  return (cpu_seconds() - c0) * 1e3;
}

Result fu_run(unsigned threads, long tasks, long iters, std::chrono::milliseconds idle) {
  Result r;
  OffThread off;
  if (threads == 0) {
    r.seconds = fu_burst(tasks, iters, &off);
    r.idle_cpu_ms = idle.count() ? idle_cpu_ms(idle) : -1;
    r.off_thread = static_cast<double>(off.n) / static_cast<double>(tasks);
    return r;
  }
  fu::Workers workers(threads);
  (void)fu_burst(std::min(tasks, 1000L), 0);  // warm: helpers' runners and stacks exist
  r.seconds = fu_burst(tasks, iters, &off);
  r.idle_cpu_ms = idle.count() ? idle_cpu_ms(idle) : -1;
  r.off_thread = static_cast<double>(off.n) / static_cast<double>(tasks);
  return r;
}

// ---- raw Boost.Fiber -----------------------------------------------------------------------

// What a careful user writes: every thread installs the algorithm (its constructor waits for all
// of them), helpers wait on a fiber condition variable until the main thread says stop, fibers
// are joined through a counter under a fiber mutex.
struct RawShared {
  bf::mutex m;
  bf::condition_variable cv;
  long count = 0;
  bool stop = false;
};

// work_stealing takes the thread count; shared_work does not (its queue is one static).
template <class Algo>
void install_algorithm(unsigned threads, bool suspend) {
  if constexpr (std::is_constructible_v<Algo, std::uint32_t, bool>)
    bf::use_scheduling_algorithm<Algo>(threads, suspend);
  else
    bf::use_scheduling_algorithm<Algo>(suspend);
}

template <class Algo>
Result raw_run(unsigned threads, bool suspend, long tasks, long iters, std::chrono::milliseconds idle) {
  RawShared sh;
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> helpers;
  for (unsigned t = 1; t < threads; ++t)
    helpers.emplace_back([&] {
      install_algorithm<Algo>(threads, suspend);
      ++ready;
      std::unique_lock<bf::mutex> lk(sh.m);
      sh.cv.wait(lk, [&] { return sh.stop; });
    });
  install_algorithm<Algo>(threads, suspend);
  while (ready < threads - 1) std::this_thread::yield();  // set-up, not measured
  std::atomic<std::uint64_t> sum{0};
  std::atomic<long> ran{0};
  OffThread off;
  auto burst = [&](long n, long it) {
    for (long i = 0; i < n; ++i) {
      {
        std::lock_guard<bf::mutex> lk(sh.m);
        ++sh.count;
      }
      bf::fiber([&, i, it] {
        sum.fetch_add(it ? crunch(static_cast<std::uint64_t>(i), it) : 1, std::memory_order_relaxed);
        ran.fetch_add(1, std::memory_order_relaxed);
        off.note();
        std::lock_guard<bf::mutex> lk(sh.m);
        if (--sh.count == 0) sh.cv.notify_all();
      }).detach();
    }
    std::unique_lock<bf::mutex> lk(sh.m);
    sh.cv.wait(lk, [&] { return sh.count == 0; });
  };
  burst(std::min(tasks, 1000L), 0);
  ran = 0;
  off.n = 0;
  Result r;
  const auto t0 = Clock::now();
  burst(tasks, iters);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  check(ran == tasks, "every raw fiber ran once");
  r.off_thread = static_cast<double>(off.n) / static_cast<double>(tasks);
  r.idle_cpu_ms = idle.count() ? idle_cpu_ms(idle) : -1;
  {
    std::lock_guard<bf::mutex> lk(sh.m);
    sh.stop = true;
  }
  sh.cv.notify_all();
  for (auto& h : helpers) h.join();
  return r;
}

// Plain round_robin on one thread: raw Boost.Fiber's own one-thread figure.
Result raw_one_thread(long tasks, long iters, std::chrono::milliseconds idle) {
  RawShared sh;
  std::atomic<long> ran{0};
  std::atomic<std::uint64_t> sum{0};
  Result r;
  const auto t0 = Clock::now();
  for (long i = 0; i < tasks; ++i) {
    ++sh.count;
    bf::fiber([&, i] {
      sum.fetch_add(iters ? crunch(static_cast<std::uint64_t>(i), iters) : 1, std::memory_order_relaxed);
      ran.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<bf::mutex> lk(sh.m);
      if (--sh.count == 0) sh.cv.notify_all();
    }).detach();
  }
  {
    std::unique_lock<bf::mutex> lk(sh.m);
    sh.cv.wait(lk, [&] { return sh.count == 0; });
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  check(ran == tasks, "every raw fiber ran once");
  r.idle_cpu_ms = idle.count() ? idle_cpu_ms(idle) : -1;
  return r;
}

// ---- variants and the driver ---------------------------------------------------------------

struct Variant {
  const char* name;
  Result (*run)(long tasks, long iters, std::chrono::milliseconds idle);
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"fiberutils, one thread", [](long n, long it, std::chrono::milliseconds idle) { return fu_run(0, n, it, idle); }},
      {"fiberutils, Workers(2)", [](long n, long it, std::chrono::milliseconds idle) { return fu_run(2, n, it, idle); }},
      {"raw Boost.Fiber, one thread (round_robin)", raw_one_thread},
      {"raw work_stealing(2), suspend=false", [](long n, long it, std::chrono::milliseconds idle) {
         return raw_run<bf::algo::work_stealing>(2, false, n, it, idle); }},
      {"raw work_stealing(2), suspend=true", [](long n, long it, std::chrono::milliseconds idle) {
         return raw_run<bf::algo::work_stealing>(2, true, n, it, idle); }},
      {"raw shared_work(2), suspend=false", [](long n, long it, std::chrono::milliseconds idle) {
         return raw_run<bf::algo::shared_work>(2, false, n, it, idle); }},
      {"raw shared_work(2), suspend=true", [](long n, long it, std::chrono::milliseconds idle) {
         return raw_run<bf::algo::shared_work>(2, true, n, it, idle); }},
  };
  return v;
}

int child_main(char** argv) {
  // --child VARIANT TASKS ITERS IDLE_MS
  const Variant& v = variants().at(static_cast<std::size_t>(std::atol(argv[2])));
  const Result r = v.run(std::atol(argv[3]), std::atol(argv[4]), std::chrono::milliseconds(std::atol(argv[5])));
  std::printf("%.9f %.3f %.4f\n", r.seconds, r.idle_cpu_ms, r.off_thread);
  return 0;
}

Result run_child(std::size_t variant, long tasks, long iters, long idle_ms) {
  const bench::ChildRun run = bench::run_self({"workers_bench", "--child", std::to_string(variant),
                                               std::to_string(tasks), std::to_string(iters),
                                               std::to_string(idle_ms)});
  if (!run.exited_ok()) {
    std::fprintf(stderr, "workers_bench: %s failed\n", variants()[variant].name);
    std::exit(1);
  }
  Result r;
  check(std::sscanf(run.out.c_str(), "%lf %lf %lf", &r.seconds, &r.idle_cpu_ms, &r.off_thread) == 3,
        "child output");
  return r;
}

// Runs every variant `runs` times, interleaved (run 1 of each, then run 2 of each, ...), so
// that a change in the machine's load hits every variant alike. Each variant's figure is its
// median run; its ratio is the median of the ratios to the baseline in the same round.
struct Summary {
  Result median;
  double ratio;  // median over rounds of baseline / this (speedup) or this / baseline (cost)
};
std::vector<Summary> measure(long tasks, long iters, long idle_ms, int runs,
                             bool speedup) {
  const std::size_t nv = variants().size();
  std::vector<std::vector<Result>> r(nv);
  for (int i = 0; i < runs; ++i)
    for (std::size_t v = 0; v < nv; ++v) r[v].push_back(run_child(v, tasks, iters, idle_ms));
  std::vector<Summary> out(nv);
  for (std::size_t v = 0; v < nv; ++v) {
    // fiberutils rows against fiberutils on one thread, raw rows against raw on one thread.
    const std::size_t base = v < 2 ? 0 : 2;
    std::vector<double> ratios;
    for (int i = 0; i < runs; ++i)
      ratios.push_back(speedup ? r[base][i].seconds / r[v][i].seconds : r[v][i].seconds / r[base][i].seconds);
    std::sort(ratios.begin(), ratios.end());
    std::vector<Result> sorted = r[v];
    std::sort(sorted.begin(), sorted.end(), [](const Result& a, const Result& b) { return a.seconds < b.seconds; });
    out[v] = {sorted[sorted.size() / 2], ratios[ratios.size() / 2]};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child_main(argv);
  bool quick = false;
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: workers_bench [--quick] [--runs K]\n");
      return 2;
    }
  }
  if (quick) runs = 1;
  const long iters = quick ? calibrate_1ms() / 20 : calibrate_1ms();
  const long m1_tasks = quick ? 200 : 2000, m1b_tasks = quick ? 2000 : 100000;
  const long idle_ms = quick ? 50 : 1000;
  std::printf("workers_bench: %u hardware threads, ~1 ms of CPU = %ld rounds, %d interleaved round(s) of fresh processes%s\n\n",
              std::thread::hardware_concurrency(), iters, runs, quick ? " (quick: sizes reduced)" : "");

  bool m1_ok = false, m1b_ok = false, idle_ok = false;
  // M1
  std::printf("M1: %ld tasks of ~1 ms CPU through a group; idle CPU: the process over %ld ms after the burst\n\n",
              m1_tasks, idle_ms);
  std::printf("| variant | wall (median) | speedup over its one-thread run (median of same-round ratios) | tasks run off the spawning thread | idle CPU (ms per %ld ms) |\n|---|---|---|---|---|\n",
              idle_ms);
  const std::vector<Summary> m1 = measure(m1_tasks, iters, idle_ms, runs, true);
  for (std::size_t v = 0; v < variants().size(); ++v)
    std::printf("| %s | %.1f ms | %.2fx | %.0f%% | %.1f |\n", variants()[v].name, m1[v].median.seconds * 1e3,
                m1[v].ratio, m1[v].median.off_thread * 100, m1[v].median.idle_cpu_ms);
  const double m1_speedup = m1[1].ratio;
  m1_ok = m1_speedup >= 1.9 && m1[1].median.idle_cpu_ms < 5.0 * static_cast<double>(idle_ms) / 1000.0;

  // M1b
  std::printf("\nM1b: %ld empty tasks spawned and joined, per task\n\n", m1b_tasks);
  std::printf("| variant | per task (median) | against its one-thread run (median of same-round ratios) |\n|---|---|---|\n");
  const std::vector<Summary> m1b = measure(m1b_tasks, 0, 0, runs, false);
  for (std::size_t v = 0; v < variants().size(); ++v)
    std::printf("| %s | %.1f ns | %.2fx |\n", variants()[v].name,
                m1b[v].median.seconds * 1e9 / static_cast<double>(m1b_tasks), m1b[v].ratio);
  const double m1b_ratio = m1b[1].ratio;
  m1b_ok = m1b_ratio <= 1.5;

  // Idle
  std::vector<Result> idles;
  for (int i = 0; i < runs; ++i) idles.push_back(run_child(1, 10, 0, idle_ms));
  std::sort(idles.begin(), idles.end(), [](const Result& a, const Result& b) { return a.idle_cpu_ms < b.idle_cpu_ms; });
  const Result idle = idles[idles.size() / 2];
  std::printf("\nIdle: an idle Workers(2) used %.2f ms of CPU over %ld ms\n", idle.idle_cpu_ms, idle_ms);
  idle_ok = idle.idle_cpu_ms < 5.0 * static_cast<double>(idle_ms) / 1000.0;

  if (quick) {
    std::printf("\nquick run: every result checked, no targets\n");
    return 0;
  }
  std::printf("\ntarget M1 speedup >= 1.9x with helpers idle at ~0 CPU   %s (%.2fx, %.1f ms idle CPU)\n",
              m1_ok ? "met" : "NOT MET", m1_speedup, m1[1].median.idle_cpu_ms);
  std::printf("target M1b per task <= 1.5x one thread's                 %s (%.2fx)\n",
              m1b_ok ? "met" : "NOT MET", m1b_ratio);
  std::printf("target Idle Workers(2) < 5 ms CPU per second             %s (%.2f ms)\n",
              idle_ok ? "met" : "NOT MET", idle.idle_cpu_ms);
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
//
// What the benchmark files share: a workload's parameters and result check, and the pieces of
// the hand-written Boost.Fiber baseline that several components' workloads use. Each
// <component>_bench.cpp holds the workloads of one public header, each function running either
// fiberutils or its raw Boost.Fiber baseline; bench_main.cpp lists them in the table and runs
// them (child processes, timing, peak RSS, the table, the targets).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <boost/fiber/all.hpp>

#include "bench_process.hpp"

namespace bench {

namespace bf = boost::fibers;

// fail() and check() (a wrong result ends the program with exit status 3) are in
// bench_process.hpp.

// A workload's sizes; each workload reads the fields it needs.
struct Params {
  long n;             // tasks (or operations, for a micro-benchmark)
  long outer, inner;  // W2: outer tasks, each spawning `inner` tasks
  std::chrono::milliseconds sleep;
  long limit;
};

// A workload: runs fiberutils (true) or the raw Boost.Fiber baseline (false) with the given
// sizes, checks its own result, and returns its high-water mark (or 0).
using WorkloadFn = long (*)(bool fiberutils, const Params&);

// The most tasks inside a section at once (all on one thread).
struct HighWater {
  long now = 0, most = 0;
  void enter() { most = std::max(most, ++now); }
  void leave() { --now; }
};

// ---- The hand-written baseline: what a careful user writes with raw Boost.Fiber -------------
constexpr std::size_t kStackBytes = 128 * 1024;  // the same size fiberutils uses by default

inline bf::pooled_fixedsize_stack& shared_stacks() {
  static bf::pooled_fixedsize_stack stacks(kStackBytes);
  return stacks;
}

// A group: a fiber mutex + condition variable around a counter; fibers are detached.
struct RawGroup {
  bf::mutex m;
  bf::condition_variable cv;
  long count = 0;
  template <class F>
  void spawn(F f) {
    {
      std::lock_guard<bf::mutex> lk(m);
      ++count;
    }
    bf::fiber(std::allocator_arg, shared_stacks(), [this, f = std::move(f)]() mutable {
      f();
      std::lock_guard<bf::mutex> lk(m);
      if (--count == 0) cv.notify_all();
    }).detach();
  }
  void join() {
    std::unique_lock<bf::mutex> lk(m);
    cv.wait(lk, [&] { return count == 0; });
  }
};

// ---- The workloads, by component --------------------------------------------------------------
// group_bench.cpp
long w1_spawn_join(bool fiberutils, const Params& p);
long w2_nested(bool fiberutils, const Params& p);
long w3_sleepers(bool fiberutils, const Params& p);
long micro_spawn_join(bool fiberutils, const Params& p);
// yielder_bench.cpp
long w4_unordered(bool fiberutils, const Params& p);
long micro_stream_value(bool fiberutils, const Params& p);
// ordered_yielder_bench.cpp
long w5_ordered(bool fiberutils, const Params& p);
// pool_bench.cpp
long w6_pool(bool fiberutils, const Params& p);
long w7_fanout(bool fiberutils, const Params& p);
// semaphore_bench.cpp
long micro_semaphore(bool fiberutils, const Params& p);
// deadline_bench.cpp
long micro_deadline_scope(bool fiberutils, const Params& p);

}  // namespace bench

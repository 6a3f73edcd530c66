// SPDX-License-Identifier: Apache-2.0
//
// fu::Group (group.hpp) against a raw Boost.Fiber group (RawGroup in bench.hpp: detached fibers
// and a fiber mutex + condition variable counter): W1 spawn + join of short tasks, W2 nested
// spawns that sleep, W3 many sleepers at once, and one task spawned and joined at a time against
// a raw fiber's construction and join.
#include <atomic>
#include <memory>

#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

long w1_spawn_join(bool fiberutils, const Params& p) {
  long sum = 0;
  if (fiberutils) {
    fu::Group g;
    for (long i = 0; i < p.n; ++i) g.spawn([&sum](long i) { sum += i; }, i);
    g.join();
  } else {
    RawGroup g;
    for (long i = 0; i < p.n; ++i) g.spawn([&sum, i] { sum += i; });
    g.join();
  }
  check(sum == p.n * (p.n - 1) / 2, "W1 sum");
  return 0;
}

long w2_nested(bool fiberutils, const Params& p) {
  std::atomic<long> inner_done{0};
  if (fiberutils) {
    fu::Group g;
    for (long i = 0; i < p.outer; ++i)
      g.spawn([&] {
        fu::this_task::sleep_for(p.sleep);
        for (long j = 0; j < p.inner; ++j)
          g.spawn([&] {
            fu::this_task::sleep_for(p.sleep);
            ++inner_done;
          });
      });
    g.join();
  } else {
    RawGroup g;
    for (long i = 0; i < p.outer; ++i)
      g.spawn([&] {
        boost::this_fiber::sleep_for(p.sleep);
        for (long j = 0; j < p.inner; ++j)
          g.spawn([&] {
            boost::this_fiber::sleep_for(p.sleep);
            ++inner_done;
          });
      });
    g.join();
  }
  check(inner_done == p.outer * p.inner, "W2 inner tasks");
  return 0;
}

long w3_sleepers(bool fiberutils, const Params& p) {
  HighWater asleep;
  long woke = 0;
  auto body = [&](auto sleep) {
    asleep.enter();
    sleep(p.sleep);
    asleep.leave();
    ++woke;
  };
  if (fiberutils) {
    fu::Group g;
    for (long i = 0; i < p.n; ++i) g.spawn([&] { body([](auto d) { fu::this_task::sleep_for(d); }); });
    g.join();
  } else {
    RawGroup g;
    for (long i = 0; i < p.n; ++i)
      g.spawn([&] { body([](auto d) { boost::this_fiber::sleep_for(d); }); });
    g.join();
  }
  check(woke == p.n, "W3 sleepers woke");
  return asleep.most;
}

long micro_spawn_join(bool fiberutils, const Params& p) {
  long sum = 0;
  if (fiberutils) {
    fu::Group g;
    for (long i = 0; i < p.n; ++i) {
      g.spawn([&sum] { ++sum; });
      g.join();
    }
  } else {
    for (long i = 0; i < p.n; ++i) bf::fiber(std::allocator_arg, shared_stacks(), [&sum] { ++sum; }).join();
  }
  check(sum == p.n, "spawn+join count");
  return 0;
}

}  // namespace bench

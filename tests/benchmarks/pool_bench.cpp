// SPDX-License-Identifier: Apache-2.0
//
// fu::Pool (pool.hpp) against a RawGroup whose spawner takes a raw fiber semaphore (RawSemaphore)
// for each task: W6, 100,000 tasks through Pool(64) that yield once, and W7, 10,000 sleepers
// through Pool(100).
#include <mutex>

#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

namespace {
// A semaphore taken by the spawner to limit concurrency.
struct RawSemaphore {
  bf::mutex m;
  bf::condition_variable cv;
  long permits;
  explicit RawSemaphore(long n) : permits(n) {}
  void acquire() {
    std::unique_lock<bf::mutex> lk(m);
    cv.wait(lk, [&] { return permits > 0; });
    --permits;
  }
  void release() {
    {
      std::lock_guard<bf::mutex> lk(m);
      ++permits;
    }
    cv.notify_one();
  }
};
}  // namespace

long w6_pool(bool fiberutils, const Params& p) {
  HighWater running;
  long sum = 0;
  if (fiberutils) {
    fu::Pool pool(p.limit);
    for (long i = 0; i < p.n; ++i)
      pool.spawn([&](long i) {
        running.enter();
        fu::this_task::yield();
        running.leave();
        sum += i;
      }, i);
    pool.join();
  } else {
    RawGroup g;
    RawSemaphore slots(p.limit);
    for (long i = 0; i < p.n; ++i) {
      slots.acquire();
      g.spawn([&, i] {
        running.enter();
        boost::this_fiber::yield();
        running.leave();
        sum += i;
        slots.release();
      });
    }
    g.join();
  }
  check(sum == p.n * (p.n - 1) / 2, "W6 sum");
  check(running.most <= p.limit, "W6 high-water mark above the limit");
  return running.most;
}

long w7_fanout(bool fiberutils, const Params& p) {
  HighWater running;
  long done = 0;
  if (fiberutils) {
    fu::Pool pool(p.limit);
    for (long i = 0; i < p.n; ++i)
      pool.spawn([&] {
        running.enter();
        fu::this_task::sleep_for(p.sleep);
        running.leave();
        ++done;
      });
    pool.join();
  } else {
    RawGroup g;
    RawSemaphore slots(p.limit);
    for (long i = 0; i < p.n; ++i) {
      slots.acquire();
      g.spawn([&] {
        running.enter();
        boost::this_fiber::sleep_for(p.sleep);
        running.leave();
        ++done;
        slots.release();
      });
    }
    g.join();
  }
  check(done == p.n, "W7 tasks");
  check(running.most <= p.limit, "W7 high-water mark above the limit");
  return running.most;
}

}  // namespace bench

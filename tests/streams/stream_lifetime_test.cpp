// SPDX-License-Identifier: Apache-2.0
//
// Leaving a stream early, destroying it with tasks running, and streams across threads.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Counted;

namespace {
fu::Yielder<int> sleepy_stream(std::atomic<int>& stopped) {
  return fu::yielding<int>([&stopped](fu::Yielder<int>& y) {
    y.put(1);
    for (int i = 0; i < 10; ++i)
      y.spawn([&stopped] {
        try {
          fu::this_task::sleep_for(1h);
        } catch (const fu::cancelled&) {
          ++stopped;
          throw;
        }
        return 2;
      });
  });
}
}  // namespace

TEST_CASE("break out of a loop over a returned stream stops its sleeping tasks promptly") {
  std::atomic<int> stopped{0};
  const auto t0 = Clock::now();
  for (int v : sleepy_stream(stopped)) {
    CHECK(v == 1);
    break;
  }
  CHECK(Clock::now() - t0 < 2s);
  CHECK(stopped == 10);
}

TEST_CASE("destroying a stream requests stop, waits for its tasks, and discards unconsumed values") {
  std::atomic<int> finished{0};
  {
    fu::OrderedYielder<Counted> y;
    for (int i = 0; i < 50; ++i) y.put(Counted(i));
    for (int i = 0; i < 5; ++i)
      y.spawn([&finished] {
        try {
          fu::this_task::sleep_for(1h);
        } catch (const fu::cancelled&) {
          ++finished;
          throw;
        }
        return Counted(-1);
      });
    auto it = y.begin();
    CHECK((*it).v == 0);
    CHECK(Counted::live > 1);
  }
  CHECK(finished == 5);
  CHECK(Counted::live == 0);
}

TEST_CASE("spawn, put and cancel from other threads") {
  fu::Yielder<int> y;
  y.spawn([] {
    fu::this_task::sleep_for(50ms);
    return 0;
  });
  std::thread producer([&] {
    for (int i = 1; i <= 100; ++i) y.put(i);
    fu::Group g;  // a task spawned from this thread runs on this thread
    y.spawn([] { return 1000; });
    fu::this_task::sleep_for(10ms);
  });
  producer.join();
  long sum = 0;
  for (int v : y) sum += v;
  CHECK(sum == 5050 + 1000);

  fu::Yielder<int> endless;
  endless.spawn([] {
    fu::this_task::sleep_for(1h);
    return 1;
  });
  std::thread canceller([&] {
    std::this_thread::sleep_for(20ms);  // the consumer below is waiting by then, or not: both end
    endless.cancel();
  });
  const auto t0 = Clock::now();
  for (int v : endless) (void)v;
  CHECK(Clock::now() - t0 < 5s);
  canceller.join();
}

TEST_CASE("5 threads loop streams and groups for a while") {
  std::atomic<long> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 5; ++t)
    threads.emplace_back([&] {
      const auto until = Clock::now() + 300ms;
      long rounds = 0;
      while (Clock::now() < until || rounds < 10) {
        fu::Yielder<int> y(4);
        fu::OrderedYielder<int> o;
        fu::Group g;
        for (int i = 0; i < 20; ++i) {
          y.spawn([](int i) {
            fu::this_task::yield();
            return i;
          }, i);
          o.spawn([](int i) { return i; }, i);
          g.spawn([&y] { y.put(100); });
        }
        g.join();
        long sum = 0;
        for (int v : y) sum += v;
        int expected = 0;
        for (int v : o) CHECK(v == expected++);
        CHECK(sum == 190 + 2000);
        total += sum;
        ++rounds;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(total > 0);
}

// SPDX-License-Identifier: Apache-2.0
//
// What Yielder and OrderedYielder share, each case run over both: destroying a stream, or leaving
// it at scope exit, with tasks still running. Early exits and cross-thread use of one kind of
// stream are in yielder_test and ordered_yielder_test.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Counted;
using test_support::sleep_an_hour_unless_cancelled;

TEST_CASE_TEMPLATE("destroying a stream requests stop, waits for its tasks, and discards unconsumed values",
                   Stream, fu::Yielder<Counted>, fu::OrderedYielder<Counted>) {
  std::atomic<int> finished{0};
  Clock::time_point destroying;
  {
    Stream y;
    for (int i = 0; i < 2000; ++i) y.put(Counted(i));  // beyond the channel: overflow too
    for (int i = 0; i < 5; ++i)
      y.spawn([sleep = sleep_an_hour_unless_cancelled(finished)] {
        sleep();
        return Counted(-1);
      });
    for (int i = 0; i < 20; ++i) y.spawn([](int i) { return Counted(i); }, i);
    auto it = y.begin();
    CHECK((*it).v == 0);
    CHECK(Counted::live > 1000);
    destroying = Clock::now();
  }
  CHECK(Clock::now() - destroying < 2s);
  CHECK(finished == 5);
  CHECK(Counted::live == 0);
}

TEST_CASE_TEMPLATE("a stream left at scope exit without iterating stops its sleeping tasks promptly",
                   Stream, fu::Yielder<int>, fu::OrderedYielder<int>) {
  std::atomic<int> stopped{0}, asleep{0};
  const auto t0 = Clock::now();
  {
    Stream y(2);
    for (int i = 0; i < 10; ++i)
      y.spawn([sleep = sleep_an_hour_unless_cancelled(stopped, &asleep)] {
        sleep();
        return 1;
      });
    while (asleep < 2) fu::this_task::yield();  // two tasks asleep; eight wait for a slot
  }
  CHECK(Clock::now() - t0 < 2s);
  CHECK(stopped == 10);  // queued tasks too start, meet their stop at once, and end
}

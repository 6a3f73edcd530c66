// SPDX-License-Identifier: Apache-2.0
//
// fu::this_task: sleeps and yield as cancellation points inside tasks, and harmless outside.
#include <doctest/doctest.h>

#include <chrono>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("outside a task the token never stops and sleep and yield do not throw") {
  CHECK_FALSE(fu::this_task::stop_requested());
  CHECK_FALSE(fu::this_task::stop_token().stop_possible());
  const auto t0 = Clock::now();
  fu::this_task::sleep_for(5ms);
  fu::this_task::sleep_until(Clock::now() + 5ms);
  fu::this_task::yield();
  CHECK(Clock::now() - t0 >= 10ms);
}

TEST_CASE("sleep_for, sleep_until and yield throw fu::cancelled once the task's stop is requested") {
  fu::Group g;
  int cancelled = 0;
  for (int which = 0; which < 3; ++which)
    g.spawn([&](int which) {
      try {
        for (;;) {
          if (which == 0) fu::this_task::sleep_for(1h);
          else if (which == 1) fu::this_task::sleep_until(Clock::now() + 1h);
          else fu::this_task::yield();
        }
      } catch (const fu::cancelled&) {
        ++cancelled;
      }
    }, which);
  CHECK_FALSE(g.join_for(5ms));
  g.cancel();
  g.join();
  CHECK(cancelled == 3);
}

TEST_CASE("fu::cancelled is not a std::exception") {
  static_assert(!std::is_base_of_v<std::exception, fu::cancelled>);
  fu::Group g;
  bool caught_as_std = false;
  g.spawn([&] {
    try {
      fu::this_task::sleep_for(1h);
    } catch (const std::exception&) {
      caught_as_std = true;
    }
  });
  g.cancel();
  g.join();
  CHECK_FALSE(caught_as_std);
}

TEST_CASE("sleep_for sleeps about as long as asked, suspending only the task") {
  fu::Group g;
  long others = 0, others_while_asleep = -1;
  bool woke = false;
  Clock::duration slept{};
  g.spawn([&] {
    const auto t0 = Clock::now();
    const long before = others;
    fu::this_task::sleep_for(30ms);
    // Had the sleep blocked the thread, the other task could not have run meanwhile.
    others_while_asleep = others - before;
    slept = Clock::now() - t0;
    woke = true;
  });
  g.spawn([&] {
    while (!woke) {
      ++others;
      fu::this_task::yield();
    }
  });
  g.join();
  CHECK(slept >= 30ms);
  CHECK(slept < 5s);
  CHECK(others_while_asleep > 0);
}

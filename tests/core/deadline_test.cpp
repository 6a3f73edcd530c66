// SPDX-License-Identifier: Apache-2.0
// fu::move_on_after / move_on_at / fail_after / fail_at: deadline scopes. A deadline here stands
// for elapsed time (what the feature is about); what it interrupts waits an hour, so a stalled
// machine can only make a test slower, never wrong.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
// A bound that only a wait that was not interrupted could exceed.
constexpr auto kPrompt = 30s;

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 10, '\n');
  }
  return 0;
}
}  // namespace

TEST_CASE("move_on_after returns f's value when f finishes first") {
  std::optional<int> r = fu::move_on_after(1h, [] {
    fu::this_task::sleep_for(1ms);
    return 42;
  });
  CHECK(r == 42);
  CHECK(fu::move_on_after(1h, [] {}) == true);
}

TEST_CASE("move_on_after returns nullopt when the deadline interrupts a sleep, in plain code and in a task") {
  const auto t0 = Clock::now();
  std::optional<int> r = fu::move_on_after(20ms, [] {
    fu::this_task::sleep_for(1h);
    return 1;
  });
  CHECK_FALSE(r.has_value());
  CHECK(Clock::now() - t0 >= 20ms);
  CHECK(Clock::now() - t0 < kPrompt);

  fu::Group g;
  bool in_task = true;
  g.spawn([&] { in_task = fu::move_on_after(20ms, [] { fu::this_task::sleep_for(1h); }); });
  g.join();
  CHECK_FALSE(in_task);
}

TEST_CASE("fail_after throws fu::timed_out naming the duration") {
  std::string what;
  try {
    fu::fail_after(15ms, [] { fu::this_task::sleep_for(1h); });
  } catch (const fu::timed_out& e) {
    what = e.what();
  }
  CHECK(what.find("15.000 ms") != std::string::npos);
  CHECK(fu::fail_after(1h, [] { return std::string("in time"); }) == "in time");
  CHECK_THROWS_AS(fu::fail_at(Clock::now() + 10ms, [] { fu::this_task::sleep_for(1h); }),
                  fu::timed_out);
  CHECK(std::is_base_of_v<std::runtime_error, fu::timed_out>);
}

TEST_CASE("every library wait is a cancellation point of a scope") {
  auto expires = [](auto&& f) { return !fu::move_on_after(10ms, f); };
  fu::Semaphore never(0);
  fu::Group sleeper;
  fu::Semaphore asleep(0);
  sleeper.spawn([&] {
    asleep.release();
    fu::this_task::sleep_for(1h);
  });
  asleep.acquire();
  fu::Pool full(1);
  fu::Semaphore hold(0);
  full.spawn([&] { hold.acquire(); });

  CHECK(expires([&] { fu::this_task::sleep_for(1h); }));
  CHECK(expires([&] { fu::this_task::sleep_until(Clock::now() + 1h); }));
  CHECK(expires([&] { never.acquire(); }));
  CHECK(expires([&] { (void)never.try_acquire_for(1h); }));
  CHECK(expires([&] { sleeper.join(); }));
  CHECK(expires([&] { (void)sleeper.join_for(1h); }));
  CHECK(expires([&] { full.wait_available(); }));
  CHECK(expires([&] {
    fu::Yielder<int> y;
    y.spawn([] {
      fu::this_task::sleep_for(1h);
      return 1;
    });
    for (int v : y) (void)v;
  }));
  CHECK(expires([&] {
    for (;;) fu::this_task::yield();
  }));
  CHECK(expires([&] {
    fu::Yielder<int> y;
    for (;;) {
      y.put(1);
      fu::this_task::sleep_for(1ms);
    }
  }));
  CHECK(expires([&] { fu::run_blocking([] { std::this_thread::sleep_for(50ms); }); }));
  sleeper.cancel();
  sleeper.join();
  hold.release();
  full.join();
}

TEST_CASE("a deadline that already passed interrupts the first cancellation point, not code without one") {
  CHECK_FALSE(fu::move_on_at(Clock::now() - 1s, [] { fu::this_task::sleep_for(1h); }));
  std::optional<int> r = fu::move_on_at(Clock::now() - 1s, [] { return 7; });
  CHECK(r == 7);  // no cancellation point: f's value
}

TEST_CASE("nested scopes: the earliest deadline wins and only its scope catches") {
  // Inner earlier: the inner scope catches, the outer goes on.
  bool outer_went_on = false;
  auto outer = fu::move_on_after(1h, [&] {
    auto inner = fu::move_on_after(10ms, [] { fu::this_task::sleep_for(1h); });
    CHECK_FALSE(inner);
    outer_went_on = true;
  });
  CHECK(outer == true);
  CHECK(outer_went_on);

  // Outer earlier: the inner scope lets it through, the outer catches.
  bool inner_returned = false;
  auto outer2 = fu::move_on_after(10ms, [&] {
    (void)fu::move_on_after(1h, [] { fu::this_task::sleep_for(1h); });
    inner_returned = true;
  });
  CHECK_FALSE(outer2);
  CHECK_FALSE(inner_returned);
}

TEST_CASE("a group's cancel inside a scope propagates as fu::cancelled, never as nullopt") {
  fu::Group g;
  std::atomic<int> propagated{0};
  fu::Semaphore inside(0);
  g.spawn([&] {
    try {
      (void)fu::move_on_after(1h, [&] {
        (void)fu::move_on_after(1h, [&] {
          inside.release();
          fu::this_task::sleep_for(1h);
        });
      });
    } catch (const fu::cancelled&) {
      ++propagated;
      throw;
    }
  });
  inside.acquire();
  g.cancel();
  g.join();
  CHECK(propagated == 1);
}

TEST_CASE("a scope in plain code around join stops the group's tasks through the group's destructor") {
  std::atomic<int> stopped{0};
  const auto t0 = Clock::now();
  auto r = fu::move_on_after(20ms, [&] {
    fu::Group g;
    for (int i = 0; i < 10; ++i)
      g.spawn([&] {
        try {
          fu::this_task::sleep_for(1h);
        } catch (const fu::cancelled&) {
          ++stopped;
          throw;
        }
      });
    g.join();  // interrupted by the deadline; ~Group cancels and waits
  });
  CHECK_FALSE(r);
  CHECK(stopped == 10);
  CHECK(Clock::now() - t0 < kPrompt);
}

TEST_CASE("a CPU loop polling this_task::stop_requested or its scope's token stops at the deadline") {
  long rounds = 0;
  auto r = fu::move_on_after(20ms, [&] {
    while (!fu::this_task::stop_requested()) ++rounds;
    return rounds;
  });
  CHECK(r.has_value());  // the loop returned normally: f's value
  CHECK(rounds > 0);

  bool stopped_by_token = false;
  fu::Group g;
  g.spawn([&] {
    (void)fu::move_on_after(20ms, [&] {
      std::stop_token token = fu::this_task::stop_token();  // the scope's: the timer stops it
      while (!token.stop_requested()) {
      }
      stopped_by_token = true;
    });
  });
  g.join();
  CHECK(stopped_by_token);
}

TEST_CASE("a token obtained before the scope is not the scope's") {
  fu::Group g;
  bool outer_token_stopped = true;
  g.spawn([&] {
    std::stop_token before = fu::this_task::stop_token();
    (void)fu::move_on_after(1ms, [] { fu::this_task::sleep_for(1h); });
    outer_token_stopped = before.stop_requested();
  });
  g.join();
  CHECK_FALSE(outer_token_stopped);
}

TEST_CASE("10,000 tasks each with their own scope leave no timers behind over repeated rounds") {
  const int n = static_cast<int>(test_support::scaled(10000)) / 2 * 2;
  long settled = 0;
  for (int round = 0; round < 6; ++round) {
    fu::Group g;
    std::atomic<int> expired{0};
    for (int i = 0; i < n; ++i)
      g.spawn([&, i] {
        auto r = fu::move_on_after(i % 2 ? 1h : 1ms, [&] {
          (void)fu::this_task::stop_token();  // registers with the timer thread
          fu::this_task::sleep_for(5ms);
        });
        if (!r) ++expired;
      });
    g.join();
    CHECK(expired == n / 2);
    if (round == 1) settled = rss_kib();  // after the first rounds have warmed stacks and pools
  }
  CHECK(rss_kib() - settled < 16 * 1024);  // flat: no per-scope residue
}

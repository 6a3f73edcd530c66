// SPDX-License-Identifier: Apache-2.0
//
// fu::Semaphore: counting, timed and non-blocking acquisition, cross-thread wake-ups that block
// only the waiting fiber, cancellation, bad input.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

static_assert(!std::is_copy_constructible_v<fu::Semaphore> &&
              !std::is_move_constructible_v<fu::Semaphore>);

TEST_CASE("acquire takes permits and try_acquire fails when none is left") {
  fu::Semaphore s(2);
  s.acquire();
  CHECK(s.try_acquire());
  CHECK(s.count() == 0);
  CHECK_FALSE(s.try_acquire());
  s.release(2);
  CHECK(s.count() == 2);
}

TEST_CASE("release(n) wakes n waiting fibers") {
  fu::Semaphore s(0);
  fu::Group g;
  std::atomic<int> through{0};
  for (int i = 0; i < 5; ++i)
    g.spawn([&] {
      s.acquire();
      ++through;
    });
  CHECK_FALSE(g.join_for(5ms));
  CHECK(through == 0);
  s.release(3);
  CHECK_FALSE(g.join_for(5ms));
  CHECK(through == 3);
  s.release(2);
  g.join();
  CHECK(through == 5);
}

TEST_CASE("try_acquire_for and try_acquire_until time out, and succeed when a permit comes") {
  fu::Semaphore s(0);
  auto t0 = Clock::now();
  CHECK_FALSE(s.try_acquire_for(20ms));
  CHECK(Clock::now() - t0 >= 20ms);
  CHECK_FALSE(s.try_acquire_until(Clock::now() + 10ms));
  fu::Group g;
  g.spawn([&] {
    fu::this_task::sleep_for(10ms);
    s.release();
  });
  CHECK(s.try_acquire_for(10s));
  g.join();
}

TEST_CASE("a release from another thread wakes a waiting fiber while other fibers keep running") {
  fu::Semaphore s(0);
  fu::Group g;
  std::atomic<bool> acquired{false};
  std::atomic<long> other_fiber_rounds{0};
  g.spawn([&] {
    s.acquire();
    acquired = true;
  });
  g.spawn([&] {
    while (!acquired) {
      ++other_fiber_rounds;
      fu::this_task::sleep_for(1ms);
    }
  });
  std::thread releaser([&] {
    while (other_fiber_rounds < 5) std::this_thread::yield();  // the thread is not blocked
    s.release();
  });
  CHECK(g.join_for(20s));
  releaser.join();
  CHECK(acquired);
  CHECK(other_fiber_rounds >= 5);
}

TEST_CASE("a task blocked in acquire is woken by cancel with fu::cancelled") {
  fu::Semaphore s(0);
  fu::Group g;
  int cancelled = 0;
  for (int i = 0; i < 3; ++i)
    g.spawn([&](int which) {
      try {
        if (which == 0) s.acquire();
        else if (which == 1) (void)s.try_acquire_for(1h);
        else (void)s.try_acquire_until(Clock::now() + 1h);
      } catch (const fu::cancelled&) {
        ++cancelled;
      }
    }, i);
  CHECK_FALSE(g.join_for(5ms));
  const auto t0 = Clock::now();
  g.cancel();
  g.join();
  CHECK(Clock::now() - t0 < 2s);
  CHECK(cancelled == 3);
  CHECK(s.count() == 0);
}

TEST_CASE("Semaphore(-1) throws std::invalid_argument, release past max() std::overflow_error") {
  CHECK_THROWS_AS(fu::Semaphore(-1), std::invalid_argument);
  fu::Semaphore s(fu::Semaphore::max());
  CHECK_THROWS_AS(s.release(), std::overflow_error);
  CHECK_THROWS_AS(s.release(-1), std::invalid_argument);
}

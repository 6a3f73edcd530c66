// SPDX-License-Identifier: Apache-2.0
//
// fu::Pool: the limit, FIFO start order, nested spawning into a full pool, backpressure, queued
// tasks holding no stack, and queued tasks meeting a cancel.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible_v<fu::Pool> && !std::is_move_constructible_v<fu::Pool>);

using test_support::HighWater;
using test_support::scaled;

TEST_CASE("a Pool never runs more task bodies than its limit, and reaches it") {
  fu::Pool p(3);
  CHECK(p.limit() == 3);
  HighWater running;
  for (int i = 0; i < 50; ++i)
    p.spawn([&] {
      running.enter();
      fu::this_task::sleep_for(1ms);
      running.leave();
    });
  p.join();
  CHECK(running.most == 3);
  CHECK(p.free_count() == 3);
}

TEST_CASE("a Pool starts its tasks in FIFO order") {
  fu::Pool p(2);
  std::vector<int> started;
  for (int i = 0; i < 20; ++i)
    p.spawn([&](int i) {
      started.push_back(i);
      fu::this_task::sleep_for(std::chrono::milliseconds(i % 3));
    }, i);
  p.join();
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[i] = i;
  CHECK(started == expected);
}

TEST_CASE("a chain of 50 nested spawns into a full Pool(1) completes") {
  fu::Pool p(1);
  int depth = 0;
  std::function<void(int)> link = [&](int n) {
    depth = n;
    if (n < 50) p.spawn(link, n + 1);  // the pool is full: this task holds its only slot
  };
  p.spawn(link, 1);
  CHECK(p.join_for(10s));
  CHECK(depth == 50);
}

TEST_CASE("wait_available suspends a producer until a slot is free") {
  fu::Pool p(2);
  HighWater queued_or_running;
  int produced = 0;
  fu::Group producer;
  producer.spawn([&] {
    for (int i = 0; i < 20; ++i) {
      p.wait_available();
      CHECK(p.free_count() >= 1);
      queued_or_running.enter();
      ++produced;
      p.spawn([&] {
        fu::this_task::sleep_for(1ms);
        queued_or_running.leave();
      });
    }
  });
  producer.join();
  p.join();
  CHECK(produced == 20);
  CHECK(queued_or_running.most <= 2);
}

TEST_CASE("wait_available is a cancellation point") {
  fu::Semaphore gate(0);  // holds the only slot until the cancel below
  fu::Pool p(1);
  p.spawn([&gate] { gate.acquire(); });
  fu::Group g;
  bool cancelled = false;
  g.spawn([&] {
    try {
      p.wait_available();
    } catch (const fu::cancelled&) {
      cancelled = true;
    }
  });
  CHECK_FALSE(g.join_for(10ms));
  g.cancel();
  g.join();
  CHECK(cancelled);
  p.cancel();
  p.join();
}

TEST_CASE("1,000,000 tasks through Pool(8) keep only a handful of stacks alive") {
  const long n = scaled(1'000'000);
  fu::reset_stack_peak();
  const std::size_t live_before = fu::stack_stats().live;
  fu::Pool p(8);
  long sum = 0;
  for (long i = 0; i < n; ++i)
    p.spawn([&sum](long i) {
      fu::this_task::yield();
      sum += i;
    }, i);
  CHECK(p.size() == static_cast<std::size_t>(n));
  p.join();
  CHECK(sum == n * (n - 1) / 2);
  // 8 running tasks plus a spare runner or two: queued tasks hold no stack.
  CHECK(fu::stack_stats().peak_live - live_before <= 16);
}

TEST_CASE("Pool(0) and Pool(-1) throw std::invalid_argument") {
  CHECK_THROWS_AS(fu::Pool(0), std::invalid_argument);
  CHECK_THROWS_AS(fu::Pool(-1), std::invalid_argument);
}

TEST_CASE("a Pool's exception is rethrown by join and its slot is given back") {
  fu::Pool p(1);
  p.spawn([] { throw std::runtime_error("in a pool"); });
  CHECK_THROWS_AS(p.join(), std::runtime_error);
  CHECK(p.free_count() == 1);
  int ran = 0;
  p.spawn([&] { ++ran; });
  p.join();
  CHECK(ran == 1);
}

TEST_CASE("tasks spawned before cancel still run their bodies and see the stop" *
          doctest::timeout(30)) {
  fu::Pool p(1);
  fu::Semaphore gate(0);
  int bodies = 0, saw_stop = 0;
  p.spawn([&] { gate.acquire(); });  // holds the only slot until the gate opens
  for (int i = 0; i < 10; ++i)
    p.spawn([&] {
      ++bodies;
      if (fu::this_task::stop_requested()) ++saw_stop;
    });
  p.cancel();  // wakes the gated task (acquire is a cancellation point)
  p.join();
  CHECK(bodies == 10);
  CHECK(saw_stop == 10);
}

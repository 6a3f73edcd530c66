// SPDX-License-Identifier: Apache-2.0
//
// fu::OrderedYielder and fu::ordered_yielding(): values in the order of the spawn()/put() calls.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using test_support::HighWater;

static_assert(std::ranges::input_range<fu::OrderedYielder<int>>);
static_assert(std::ranges::common_range<fu::OrderedYielder<int>>);
static_assert(!std::is_copy_constructible_v<fu::OrderedYielder<int>> &&
              !std::is_move_constructible_v<fu::OrderedYielder<int>>);

TEST_CASE("order is kept with a put between spawns") {
  fu::OrderedYielder<int> y;
  y.spawn([] {
    fu::this_task::sleep_for(20ms);
    return 1;
  });
  y.put(2);
  y.spawn([] { return 3; });
  std::vector<int> got(y.begin(), y.end());
  CHECK(got == std::vector<int>{1, 2, 3});
}

TEST_CASE("nested ordered spawning keeps the global order of spawn() calls") {
  fu::OrderedYielder<std::string> y;
  // "a" spawns its children after 20 ms, "b" at once: b's children are spawned first, so they
  // come first, while each parent comes before its own children.
  for (std::string name : {"a", "b"})
    y.spawn([&y](std::string name, std::chrono::milliseconds wait) {
      fu::this_task::sleep_for(wait);
      for (int i = 0; i < 2; ++i)
        y.spawn([](std::string child) {
          fu::this_task::sleep_for(1ms);
          return child;
        }, name + std::to_string(i));
      return name;
    }, name, name == "a" ? 20ms : 0ms);
  std::vector<std::string> got(y.begin(), y.end());
  CHECK(got == std::vector<std::string>{"a", "b", "b0", "b1", "a0", "a1"});
}

TEST_CASE("a task that yields nothing holds its place until it finishes, then is skipped") {
  fu::OrderedYielder<int> y;
  y.spawn([]() -> std::optional<int> {
    fu::this_task::sleep_for(20ms);
    return std::nullopt;
  });
  y.spawn([] { return 2; });
  y.spawn([] { fu::this_task::yield(); });  // void: nothing
  y.spawn([] { return 4; });
  std::vector<int> got(y.begin(), y.end());
  CHECK(got == std::vector<int>{2, 4});
}

TEST_CASE("OrderedYielder(16) over 500 tasks of random durations yields in spawn order") {
  const unsigned seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937 rng(seed);
  HighWater running;
  fu::OrderedYielder<int> y(16);
  for (int i = 0; i < 500; ++i)
    y.spawn([&running](int i, int us) {
      running.enter();
      fu::this_task::sleep_for(std::chrono::microseconds(us));
      running.leave();
      return i;
    }, i, static_cast<int>(rng() % 3000));
  int expected = 0;
  for (int v : y) {
    REQUIRE(v == expected);
    ++expected;
  }
  CHECK(expected == 500);
  CHECK(running.most <= 16);
}

TEST_CASE("ordered_yielding with a limit: the body does not hold a slot") {
  HighWater running;
  auto s = fu::ordered_yielding<int>(1, [&](fu::OrderedYielder<int>& y) {
    for (int i = 0; i < 10; ++i)
      y.spawn([&](int i) {
        running.enter();
        fu::this_task::sleep_for(1ms);
        running.leave();
        return i;
      }, i);
    fu::this_task::sleep_for(3ms);  // the body is still running while a task holds the slot
  });
  std::vector<int> got(s.begin(), s.end());
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(running.most == 1);
}

TEST_CASE("an OrderedYielder rethrows a task's exception after every value") {
  fu::OrderedYielder<int> y;
  y.spawn([] { return 1; });
  y.spawn([]() -> int { throw std::runtime_error("middle"); });
  y.spawn([] { return 3; });
  std::vector<int> got;
  CHECK_THROWS_WITH_AS(
      [&] {
        for (int v : y) got.push_back(v);
      }(),
      "middle", std::runtime_error);
  CHECK(got == std::vector<int>{1, 3});
}

TEST_CASE("1,000,000 results through OrderedYielder(64) come in order") {
  const long n = test_support::scaled(1'000'000);
  fu::OrderedYielder<long> y(64);
  for (long i = 0; i < n; ++i) y.spawn([](long i) { return i; }, i);
  long expected = 0;
  bool in_order = true;
  for (long v : y) in_order = in_order && v == expected++;
  CHECK(in_order);
  CHECK(expected == n);
}

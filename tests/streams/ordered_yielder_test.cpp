// SPDX-License-Identifier: Apache-2.0
//
// fu::OrderedYielder and fu::ordered_yielding(): values in the order of the spawn()/put() calls,
// the legacy iterator protocol, and leaving a loop early with values held back.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
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
using test_support::Counted;
using test_support::HighWater;
using test_support::sleep_an_hour_unless_cancelled;
using Clock = std::chrono::steady_clock;

static_assert(std::ranges::input_range<fu::OrderedYielder<int>>);
static_assert(std::ranges::common_range<fu::OrderedYielder<int>>);
// size() is the task count, so a stream must not pass for a sized range.
static_assert(!std::ranges::sized_range<fu::OrderedYielder<int>>);
static_assert(std::is_same_v<std::ranges::range_value_t<fu::OrderedYielder<int>>, int>);
using OI = std::ranges::iterator_t<fu::OrderedYielder<int>>;
static_assert(std::is_same_v<std::iterator_traits<OI>::iterator_category, std::input_iterator_tag>);
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
  fu::Semaphore b_spawned(0);
  // "a" spawns its children only after "b" has spawned its own: b's children take their places
  // first, so they come first, while each parent comes before its own children.
  for (char name : {'a', 'b'})
    y.spawn([&](char name) {
      if (name == 'a') b_spawned.acquire();
      for (char i : {'0', '1'})
        y.spawn([](std::string child) {
          fu::this_task::sleep_for(1ms);
          return child;
        }, std::string{name, i});
      if (name == 'b') b_spawned.release();
      return std::string(1, name);
    }, name);
  std::vector<std::string> got(y.begin(), y.end());
  CHECK(got == std::vector<std::string>{"a", "b", "b0", "b1", "a0", "a1"});
}

namespace {
// The seed of a randomised test: FIBERUTILS_SEED when set (to replay a failure), else a fresh one;
// printed either way, and CAPTUREd by the test so a failure shows it too.
unsigned test_seed(const char* test) {
  const char* env = std::getenv("FIBERUTILS_SEED");
  const unsigned seed = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 0))
                            : std::random_device{}();
  std::printf("%s: seed %u\n", test, seed);
  return seed;
}

// A tree of tasks three levels deep that sleep at random and spawn their children into the same
// stream, with puts in between; `spawned` records every spawn() and put() call as it happens.
void tree_node(fu::OrderedYielder<std::string>& y, std::vector<std::string>& spawned,
               std::mt19937& rng, const std::string& name);

void spawn_node(fu::OrderedYielder<std::string>& y, std::vector<std::string>& spawned,
                std::mt19937& rng, std::string name) {
  spawned.push_back(name);
  y.spawn([&y, &spawned, &rng](std::string name) {
    tree_node(y, spawned, rng, name);
    return name;
  }, std::move(name));
}

void tree_node(fu::OrderedYielder<std::string>& y, std::vector<std::string>& spawned,
               std::mt19937& rng, const std::string& name) {
  fu::this_task::sleep_for(std::chrono::microseconds(rng() % 2000));
  if (name.size() >= 3) return;
  for (char c : std::string("xyz")) {
    spawn_node(y, spawned, rng, name + c);
    if (c == 'y') {
      spawned.push_back(name + "!");
      y.put(name + "!");
    }
  }
}
}  // namespace

TEST_CASE("a three-level tree of tasks with puts yields in the order of the spawn() and put() calls") {
  const unsigned seed = test_seed("three-level ordered tree");
  CAPTURE(seed);
  std::mt19937 rng(seed);  // one thread: the tasks share it without a lock
  fu::OrderedYielder<std::string> y(4);
  std::vector<std::string> spawned;
  for (char c : std::string("abc")) spawn_node(y, spawned, rng, std::string(1, c));
  std::vector<std::string> got(y.begin(), y.end());
  CHECK(got.size() == 3 + 9 + 27 + 3 + 9);  // nodes of three levels, puts of two
  CHECK(got == spawned);
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
  const unsigned seed = test_seed("OrderedYielder(16) over 500 random tasks");
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
  fu::Semaphore started(0);
  bool body_saw_task = false;
  auto s = fu::ordered_yielding<int>(1, [&](fu::OrderedYielder<int>& y) {
    for (int i = 0; i < 10; ++i)
      y.spawn([&](int i) {
        running.enter();
        started.release();
        fu::this_task::sleep_for(1ms);
        running.leave();
        return i;
      }, i);
    // Had the body taken the only slot, no task could start while it waits here.
    body_saw_task = started.try_acquire_for(10s);
  });
  std::vector<int> got(s.begin(), s.end());
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(body_saw_task);
  CHECK(running.most == 1);
}

TEST_CASE("10,000 owner puts between spawns before iterating never block and keep their places") {
  fu::OrderedYielder<int> y(2);
  for (int i = 0; i < 10'000; ++i) {
    if (i % 2)
      y.put(i);
    else
      y.spawn([](int i) { return i; }, i);
  }
  int expected = 0;
  bool in_order = true;
  for (int v : y) in_order = in_order && v == expected++;
  CHECK(in_order);
  CHECK(expected == 10'000);
}

TEST_CASE("an ordered stream returned from a function as the prvalue of ordered_yielding()") {
  auto letters = [] {
    return fu::ordered_yielding<char>(2, [](fu::OrderedYielder<char>& y) {
      for (char c : std::string("abcdefg"))
        y.spawn([](char c) {
          fu::this_task::sleep_for(std::chrono::milliseconds((c * 7) % 10));
          return c;
        }, c);
      y.put('!');
    });
  };
  std::string got;
  for (char c : letters()) got += c;
  CHECK(got == "abcdefg!");
}

TEST_CASE("move-only values stream through an OrderedYielder in order") {
  fu::OrderedYielder<std::unique_ptr<int>> y;
  for (int i = 0; i < 5; ++i)
    y.spawn([](int i) {
      fu::this_task::sleep_for(std::chrono::milliseconds(5 - i));
      return std::make_unique<int>(i);
    }, i);
  y.put(std::make_unique<int>(5));
  std::vector<int> got;
  for (std::unique_ptr<int>& p : y) got.push_back(*p);
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5});
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
  const unsigned seed = test_seed("1,000,000 through OrderedYielder(64)");
  CAPTURE(seed);
  std::mt19937 rng(seed);
  const long n = test_support::scaled(1'000'000);
  fu::OrderedYielder<long> y(64);
  // Each task yields 0-3 times, so the tasks finish out of spawn order and the order check
  // means something (tasks that never suspend finish in spawn order even in a plain Yielder).
  for (long i = 0; i < n; ++i)
    y.spawn([](long i, int yields) {
      for (int k = 0; k < yields; ++k) fu::this_task::yield();
      return i;
    }, i, static_cast<int>(rng() % 4));
  long expected = 0, sum = 0;
  bool in_order = true;
  for (long v : y) {
    in_order = in_order && v == expected++;
    sum += v;
  }
  CHECK(in_order);
  CHECK(expected == n);
  CHECK(sum == n * (n - 1) / 2);
}

TEST_CASE("break out of a loop over a returned ordered stream stops its tasks and frees held values") {
  std::atomic<int> stopped{0};
  const auto make_stream = [&stopped] {
    return fu::ordered_yielding<Counted>(4, [&stopped](fu::OrderedYielder<Counted>& y) {
      y.put(Counted(1));
      // Holds its place for an hour: everything after it waits.
      y.spawn([sleep = sleep_an_hour_unless_cancelled(stopped)] {
        sleep();
        return Counted(2);
      });
      for (int i = 0; i < 100; ++i) y.spawn([](int i) { return Counted(i); }, i);
    });
  };
  const auto t0 = Clock::now();
  for (const Counted& v : make_stream()) {
    CHECK(v.v == 1);
    break;
  }
  CHECK(Clock::now() - t0 < 2s);
  CHECK(stopped == 1);
  CHECK(Counted::live == 0);
}

TEST_CASE("cancel() inside the loop with a full buffer and held-back tasks ends it; destruction is prompt") {
  std::atomic<int> ran{0};
  long consumed = 0;
  const auto t0 = Clock::now();
  {
    fu::OrderedYielder<Counted> y(2);
    for (int i = 0; i < 1100; ++i) y.put(Counted(i));
    for (int i = 0; i < 10; ++i)
      y.spawn([&ran] {
        ++ran;
        fu::this_task::sleep_for(1h);
        return Counted(-1);
      });
    for (const Counted& v : y) {
      consumed += v.v >= 0;
      y.cancel();
    }
  }
  CHECK(Clock::now() - t0 < 2s);
  CHECK(consumed == 1);
  CHECK(ran == 10);
  CHECK(Counted::live == 0);
}

TEST_CASE("the legacy *it++ hands out each value once") {
  fu::OrderedYielder<std::unique_ptr<int>> y;
  for (int i = 0; i < 3; ++i) y.spawn([](int i) { return std::make_unique<int>(i); }, i);
  std::vector<int> got;
  for (auto it = y.begin(); it != y.end();) got.push_back(**it++);
  CHECK(got == std::vector<int>{0, 1, 2});
}

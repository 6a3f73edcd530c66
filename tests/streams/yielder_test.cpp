// SPDX-License-Identifier: Apache-2.0
//
// fu::Yielder and fu::yielding(): what is yielded, nesting, limits, ranges, errors, backpressure,
// leaving a loop early, and spawn, put and cancel from other threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Counted;
using test_support::HighWater;
using test_support::sleep_an_hour_unless_cancelled;

using YI = decltype(std::declval<fu::Yielder<int>&>().begin());
static_assert(std::ranges::input_range<fu::Yielder<int>>);
static_assert(std::ranges::common_range<fu::Yielder<int>>);
// size() is the task count, so a stream must not pass for a sized range.
static_assert(!std::ranges::sized_range<fu::Yielder<int>>);
static_assert(std::is_same_v<std::ranges::range_value_t<fu::Yielder<int>>, int>);
static_assert(std::is_same_v<std::iterator_traits<YI>::iterator_category, std::input_iterator_tag>);
static_assert(std::input_iterator<YI> && std::sentinel_for<YI, YI>);
static_assert(!std::is_copy_constructible_v<fu::Yielder<int>> &&
              !std::is_move_constructible_v<fu::Yielder<int>>);

TEST_CASE("two levels of nested spawns plus a put are all yielded in about two sleep levels") {
  fu::Yielder<int> y;
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i)
    y.spawn([&y](int i) {
      fu::this_task::sleep_for(100ms);
      for (int j = 0; j < 5; ++j)
        y.spawn([](int v) {
          fu::this_task::sleep_for(100ms);
          return v;
        }, i * 10 + j);
      return 1000 + i;
    }, i);
  y.put(-1);
  std::multiset<int> got;
  for (int v : y) got.insert(v);
  const auto took = Clock::now() - t0;
  CHECK(got.size() == 31);
  CHECK(got.count(-1) == 1);
  CHECK(got.count(1004) == 1);
  CHECK(got.count(44) == 1);
  CHECK(took >= 200ms);
  CHECK(took < 2s);  // 0.2 s of sleeps: concurrent, not 5 s in sequence
}

TEST_CASE("tasks returning void yield nothing: an empty stream ends") {
  fu::Yielder<int> y;
  int ran = 0;
  for (int i = 0; i < 10; ++i) y.spawn([&] { ++ran; });
  CHECK(std::ranges::distance(y) == 0);
  CHECK(ran == 10);
}

TEST_CASE("std::optional results yield the engaged ones only") {
  fu::Yielder<int> y;
  for (int i = 0; i < 10; ++i)
    y.spawn([](int i) -> std::optional<int> {
      if (i % 2) return std::nullopt;
      return i;
    }, i);
  std::vector<int> got(y.begin(), y.end());
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{0, 2, 4, 6, 8});
}

TEST_CASE("a Yielder's limit is honoured: at most n task bodies run at once") {
  HighWater running;
  fu::Yielder<int> y(3);
  for (int i = 0; i < 30; ++i)
    y.spawn([&running](int i) {
      running.enter();
      fu::this_task::sleep_for(20ms);  // long enough that three always overlap, even under valgrind
      running.leave();
      return i;
    }, i);
  CHECK(std::ranges::distance(y) == 30);
  CHECK(running.most == 3);
}

TEST_CASE("the yielding() body does not count against the limit") {
  HighWater running;
  fu::Semaphore started(0);
  int seen_by_body = 0;
  auto s = fu::yielding<int>(2, [&](fu::Yielder<int>& y) {
    for (int i = 0; i < 10; ++i)
      y.spawn([&](int i) {
        running.enter();
        started.release();
        fu::this_task::sleep_for(10ms);
        running.leave();
        return i;
      }, i);
    // Had the body taken one of the two slots, only one task could start while it waits here.
    for (int i = 0; i < 2; ++i) seen_by_body += started.try_acquire_for(10s);
  });
  CHECK(std::ranges::distance(s) == 10);
  CHECK(seen_by_body == 2);
  CHECK(running.most == 2);
}

TEST_CASE("views::take(3) does not wait for a fourth value") {
  fu::Yielder<int> y;
  for (int i = 0; i < 3; ++i) y.spawn([](int i) { return i; }, i);
  y.spawn([] {
    fu::this_task::sleep_for(1h);
    return 99;
  });
  const auto t0 = Clock::now();
  std::vector<int> got;
  for (int v : y | std::views::take(3)) got.push_back(v);
  CHECK(got.size() == 3);
  CHECK(Clock::now() - t0 < 2s);
  y.cancel();
}

TEST_CASE("a stream works with legacy iterator algorithms and a vector constructor") {
  fu::Yielder<int> y;
  for (int i = 1; i <= 4; ++i) y.spawn([](int i) { return i; }, i);
  std::vector<int> v(y.begin(), y.end());
  CHECK(std::accumulate(v.begin(), v.end(), 0) == 10);
}

TEST_CASE("a task's exception is rethrown after every value was delivered") {
  fu::Yielder<int> y;
  y.spawn([]() -> int { throw std::runtime_error("task failed"); });
  for (int i = 0; i < 5; ++i)
    y.spawn([](int i) {
      fu::this_task::sleep_for(std::chrono::milliseconds(i));
      return i;
    }, i);
  int got = 0;
  CHECK_THROWS_WITH_AS(
      [&] {
        for (int v : y) got += v >= 0;
      }(),
      "task failed", std::runtime_error);
  CHECK(got == 5);
}

TEST_CASE("fu::cancelled in a task is not an error: the stream ends normally") {
  fu::Yielder<int> y;
  y.spawn([]() -> int { throw fu::cancelled{}; });
  y.spawn([] { return 1; });
  CHECK(std::ranges::distance(y) == 1);
}

TEST_CASE("cancel() ends the stream early without an error") {
  fu::Yielder<int> y;
  y.spawn([] { return 1; });
  for (int i = 0; i < 5; ++i)
    y.spawn([] {
      fu::this_task::sleep_for(1h);
      return 2;
    });
  const auto t0 = Clock::now();
  int sum = 0;
  for (int v : y) {
    sum += v;
    y.cancel();
  }
  CHECK(sum == 1);
  CHECK(Clock::now() - t0 < 2s);
}

TEST_CASE("iteration and put() inside a task are cancellation points") {
  fu::Group g;
  fu::Yielder<int> inner;
  inner.spawn([] {
    fu::this_task::sleep_for(1h);
    return 1;
  });
  int cancelled = 0;
  g.spawn([&] {
    try {
      for (int v : inner) (void)v;
    } catch (const fu::cancelled&) {
      ++cancelled;
    }
  });
  fu::Yielder<int> target;
  g.spawn([&] {
    try {
      fu::this_task::sleep_for(1h);
    } catch (const fu::cancelled&) {
    }
    try {
      target.put(1);  // the stop has been requested: put throws
    } catch (const fu::cancelled&) {
      ++cancelled;
    }
  });
  CHECK_FALSE(g.join_for(5ms));
  g.cancel();
  g.join();
  CHECK(cancelled == 2);
  inner.cancel();
}

TEST_CASE("100,000 tasks spawned into Yielder(8) before iterating hold no stacks until they run") {
  const long n = test_support::scaled(100'000);
  fu::reset_stack_peak();
  const std::size_t live_before = fu::stack_stats().live;
  fu::Yielder<long> y(8);
  for (long i = 0; i < n; ++i)
    y.spawn([](long i) {
      fu::this_task::yield();
      return i;
    }, i);
  long sum = 0;
  for (long v : y) sum += v;
  CHECK(sum == n * (n - 1) / 2);
  CHECK(fu::stack_stats().peak_live - live_before <= 16);
}

TEST_CASE("10,000 owner puts before iterating never block and are all yielded") {
  fu::Yielder<int> y;
  for (int i = 0; i < 10'000; ++i) y.put(i);  // far beyond the buffer: put never blocks
  long sum = 0;
  for (int v : y) sum += v;
  CHECK(sum == 10'000L * 9'999 / 2);
}

TEST_CASE("owner puts and spawns beyond the buffer before iterating, with a limit, do not deadlock") {
  fu::Yielder<int> y(2);
  for (int i = 0; i < 3000; ++i) {
    y.put(1);
    y.spawn([] { return 2; });
  }
  long sum = 0;
  for (int v : y) sum += v;
  CHECK(sum == 3000L * 3);
}

namespace {
// Lets the tasks of this thread run (the calling fiber sleeps) until done() or 10 s have passed.
template <class Done>
bool run_tasks_until(Done done) {
  const auto deadline = Clock::now() + 10s;
  while (!done() && Clock::now() < deadline) fu::this_task::sleep_for(1ms);
  return done();
}
}  // namespace

TEST_CASE("while 1024 values wait unconsumed, tasks spawned into the stream are not started") {
  fu::Yielder<int> y;
  std::atomic<int> started{0};
  auto task = [&](int i) {
    ++started;
    return i;
  };
  for (int i = 0; i < 1100; ++i) y.spawn(task, i);
  // The main fiber waits without consuming: the tasks run and fill the buffer past 1024 values.
  REQUIRE(run_tasks_until([&] { return started == 1100; }));
  for (int i = 0; i < 100; ++i) y.spawn(task, i);
  fu::this_task::sleep_for(50ms);  // the chance to start them, which they must not take
  CHECK(started == 1100);          // held back: queued callables, no stacks
  CHECK(y.size() == 100);
  long count = 0;
  for (int v : y) count += v >= 0;
  CHECK(count == 1200);
  CHECK(started == 1200);
}

TEST_CASE("with a limit too, tasks stop being started once 1024 values wait unconsumed") {
  fu::Yielder<int> y(4);
  std::atomic<int> started{0};
  for (int i = 0; i < 2000; ++i)
    y.spawn([&](int i) {
      ++started;
      return i;
    }, i);
  REQUIRE(run_tasks_until([&] { return started >= 1024; }));
  fu::this_task::sleep_for(50ms);  // the chance to start more, which they must not take
  CHECK(started <= 1024 + 4);     // at most the four running when the buffer filled up
  long count = 0;
  for (int v : y) count += v >= 0;
  CHECK(count == 2000);
  CHECK(started == 2000);
}

TEST_CASE("a stream returned from a function as the prvalue of yielding() is drained by a loop") {
  auto letters = [] {
    return fu::yielding<char>([](fu::Yielder<char>& y) {
      for (char c : std::string("abc")) y.spawn([](char c) { return c; }, c);
    });
  };
  std::string got;
  for (char c : letters()) got += c;
  std::sort(got.begin(), got.end());
  CHECK(got == "abc");
}

TEST_CASE("move-only values stream through a Yielder") {
  fu::Yielder<std::unique_ptr<int>> y;
  for (int i = 0; i < 5; ++i) y.spawn([](int i) { return std::make_unique<int>(i); }, i);
  y.put(std::make_unique<int>(10));
  int sum = 0;
  for (std::unique_ptr<int>& p : y) sum += *p;
  CHECK(sum == 20);
}

TEST_CASE("1,000,000 results through Yielder(64) add up") {
  const long n = test_support::scaled(1'000'000);
  fu::Yielder<long> y(64);
  for (long i = 0; i < n; ++i) y.spawn([](long i) { return i; }, i);
  long sum = 0;
  for (long v : y) sum += v;
  CHECK(sum == n * (n - 1) / 2);
}

TEST_CASE_TEMPLATE("a second fiber iterating a stream while the first waits gets std::logic_error",
                   Stream, fu::Yielder<int>, fu::OrderedYielder<int>) {
  fu::Semaphore produce(0), first_waits(0);
  Stream s;
  s.spawn([&] {
    first_waits.release();  // runs once the consumer below is parked: its loop started first
    produce.acquire();
    return 7;
  });
  fu::Group consumers;
  std::vector<int> got;
  consumers.spawn([&] {
    for (int v : s) got.push_back(v);
  });
  first_waits.acquire();  // the consumer task waits in its loop now
  std::string message;
  try {
    for (int v : s) got.push_back(v * 1000);
  } catch (const std::logic_error& e) {
    message = e.what();
  }
  CHECK(message.find("one consumer at a time") != std::string::npos);
  produce.release();
  consumers.join();
  CHECK(got == std::vector<int>{7});  // the first consumer still gets every value
}

TEST_CASE_TEMPLATE("a stream counts the task exceptions it does not rethrow", Stream,
                   fu::Yielder<int>, fu::OrderedYielder<int>) {
  Stream s;
  for (int i = 0; i < 4; ++i) s.spawn([]() -> int { throw std::runtime_error("bad"); });
  CHECK_THROWS_AS(for (int v : s) (void)v, std::runtime_error);
  CHECK(s.dropped_exceptions() == 3);
}

namespace {
fu::Yielder<int> sleepy_stream(std::atomic<int>& stopped) {
  return fu::yielding<int>([&stopped](fu::Yielder<int>& y) {
    y.put(1);
    for (int i = 0; i < 10; ++i)
      y.spawn([sleep = sleep_an_hour_unless_cancelled(stopped)] {
        sleep();
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

TEST_CASE("views::take(3) on Counted values leaves no value behind") {
  {
    fu::Yielder<Counted> y;
    for (int i = 0; i < 10; ++i) y.spawn([](int i) { return Counted(i); }, i);
    long sum = 0;
    for (const Counted& v : y | std::views::take(3)) sum += v.v >= 0;
    CHECK(sum == 3);
  }
  CHECK(Counted::live == 0);
}

TEST_CASE("spawn and put from another thread while the owner iterates") {
  fu::Yielder<int> y;
  fu::Semaphore producer_done(0);
  y.spawn([&producer_done] {  // keeps the stream open until the other thread is done
    producer_done.acquire();
    return 0;
  });
  std::thread producer([&] {
    for (int i = 1; i <= 100; ++i) y.put(i);
    y.spawn([] { return 1000; });  // runs on this thread, before it exits
    producer_done.release();
  });
  long sum = 0;
  for (int v : y) sum += v;
  producer.join();
  CHECK(sum == 5050 + 1000);
}

TEST_CASE("cancel from another thread ends an iteration that waits") {
  fu::Yielder<int> endless;
  fu::Semaphore waiting(0);
  endless.spawn([&waiting] {
    waiting.release();  // the consumer is iterating: the task runs only once it waits
    fu::this_task::sleep_for(1h);
    return 1;
  });
  std::thread canceller([&] {
    waiting.acquire();
    endless.cancel();
  });
  const auto t0 = Clock::now();
  int got = 0;
  for (int v : endless) got += v;
  CHECK(got == 0);
  CHECK(Clock::now() - t0 < 5s);
  canceller.join();
}

TEST_CASE("cancel() from a thread that runs no fibers leaves held-back tasks to the owner's thread") {
  std::atomic<int> ran{0};
  std::promise<void> destroyed;
  std::thread canceller;
  {
    fu::Yielder<int> y;
    for (int i = 0; i < 1100; ++i) y.put(i);  // the buffer is full: spawned tasks are held back
    for (int i = 0; i < 10; ++i)
      y.spawn([&ran] {
        ++ran;
        return 1;
      });
    fu::Semaphore cancel_called(0);
    canceller = std::thread([&, done = destroyed.get_future()] {
      y.cancel();
      cancel_called.release();
      done.wait();  // blocks this thread: a task queued here could not run until the end
    });
    cancel_called.acquire();
  }  // the destructor starts the held-back tasks here, where they can run, and waits for them
  destroyed.set_value();
  canceller.join();
  CHECK(ran == 10);
}

TEST_CASE_TEMPLATE("a fail_fast stream's loop rethrows the first exception at its next step",
                   Stream, fu::Yielder<int>, fu::OrderedYielder<int>) {
  Stream s(4, fu::fail_fast);
  std::atomic<int> started{0};
  fu::Semaphore first_taken(0);
  s.spawn([&] { return 1; });
  s.spawn([&]() -> int {
    first_taken.acquire();
    throw std::runtime_error("stream failure");
  });
  for (int i = 0; i < 100; ++i)
    s.spawn([&] {
      ++started;
      fu::this_task::sleep_for(1h);
      return 2;
    });
  std::vector<int> got;
  CHECK_THROWS_WITH_AS(
      [&] {
        for (int v : s) {
          got.push_back(v);
          first_taken.release();
        }
      }(),
      "stream failure", std::runtime_error);
  CHECK(got == std::vector<int>{1});
  CHECK(started <= 2);  // the limit's other slots; the queued ones never start
}

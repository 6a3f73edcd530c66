// SPDX-License-Identifier: Apache-2.0
//
// fu::Group: spawning (also nested and with arguments), join and its timed forms, exceptions,
// cancellation, the destructor, several joiners. Groups across threads: threads_test; the runners
// behind every group: executor_test; a group's stack size: stack_test.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>

#include <boost/fiber/operations.hpp>
#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

static_assert(!std::is_copy_constructible_v<fu::Group> && !std::is_move_constructible_v<fu::Group>);
static_assert(!std::is_copy_assignable_v<fu::Group> && !std::is_move_assignable_v<fu::Group>);

TEST_CASE("join waits for nested spawns, including tasks spawned while it waits") {
  fu::Group g;
  std::atomic<int> leaves{0};
  for (int i = 0; i < 5; ++i)
    g.spawn([&] {
      fu::this_task::sleep_for(5ms);
      for (int j = 0; j < 5; ++j)
        g.spawn([&] {
          fu::this_task::yield();
          for (int k = 0; k < 4; ++k) g.spawn([&] { ++leaves; });
        });
    });
  g.join();
  CHECK(leaves == 100);
  CHECK(g.size() == 0);
}

TEST_CASE("spawn returns at once and the task runs only when the caller suspends") {
  fu::Group g;
  bool ran = false;
  g.spawn([&] { ran = true; });
  CHECK_FALSE(ran);
  CHECK(g.size() == 1);
  g.join();
  CHECK(ran);
}

TEST_CASE("the first exception is rethrown once, later ones dropped, and the group is reusable") {
  fu::Group g;
  g.spawn([] { throw std::runtime_error("first"); });
  g.spawn([] {
    fu::this_task::yield();
    throw std::runtime_error("second");
  });
  CHECK_THROWS_WITH_AS(g.join(), "first", std::runtime_error);
  CHECK_NOTHROW(g.join());  // forgotten once rethrown
  int ran = 0;
  g.spawn([&] { ++ran; });
  g.join();
  CHECK(ran == 1);
}

TEST_CASE("a non-std::exception thrown by a task is rethrown by join") {
  fu::Group g;
  g.spawn([] { throw std::string("not an exception class"); });
  CHECK_THROWS_AS(g.join(), std::string);
}

TEST_CASE("join_for and join_until return false when time runs out, and the tasks go on") {
  fu::Group g;
  fu::Semaphore gate(0);  // the task cannot finish before the timed joins are done, however slow
  bool finished = false;
  g.spawn([&] {
    gate.acquire();
    finished = true;
  });
  const auto t0 = Clock::now();
  CHECK_FALSE(g.join_for(20ms));
  CHECK(Clock::now() - t0 >= 20ms);
  CHECK_FALSE(finished);
  CHECK(g.size() == 1);
  CHECK_FALSE(g.join_until(Clock::now() + 20ms));
  CHECK_FALSE(g.join_until(std::chrono::system_clock::now() + 10ms));
  CHECK_FALSE(finished);
  gate.release();
  CHECK(g.join_for(10s));
  CHECK(finished);
}

TEST_CASE("join_for rethrows a task's exception like join") {
  fu::Group g;
  g.spawn([] { throw std::logic_error("boom"); });
  CHECK_THROWS_AS(g.join_for(10s), std::logic_error);
}

TEST_CASE("cancel wakes 100 sleepers at once and join does not rethrow fu::cancelled") {
  fu::Group g;
  std::atomic<int> woken_by_cancel{0}, asleep{0};
  for (int i = 0; i < 100; ++i)
    g.spawn(test_support::sleep_an_hour_unless_cancelled(woken_by_cancel, &asleep));
  while (asleep < 100) fu::this_task::yield();
  CHECK(g.size() == 100);  // all asleep now
  const auto t0 = Clock::now();
  g.cancel();
  CHECK_NOTHROW(g.join());
  CHECK(Clock::now() - t0 < 2s);  // at once, not after an hour (generous for a busy machine)
  CHECK(woken_by_cancel == 100);
}

TEST_CASE("a task taking a std::stop_token first gets its task's token") {
  fu::Group g;
  int polls = 0;
  bool saw_stop = false, same_token = false;
  g.spawn([&](std::stop_token stop, int limit) {
    same_token = stop == fu::this_task::stop_token();
    while (!stop.stop_requested() && polls < limit) {
      ++polls;
      boost::this_fiber::yield();  // suspends without being a cancellation point
    }
    saw_stop = stop.stop_requested();
  }, 1'000'000);
  CHECK_FALSE(g.join_for(5ms));
  g.cancel();
  g.join();
  CHECK(same_token);
  CHECK(saw_stop);
  CHECK(polls < 1'000'000);
}

TEST_CASE("tasks spawned after cancel see the stop until join returns, then new tasks do not") {
  fu::Group g;
  g.cancel();
  bool stopped_before_join = false;
  g.spawn([&] { stopped_before_join = fu::this_task::stop_requested(); });
  g.join();
  CHECK(stopped_before_join);
  bool stopped_after_join = true;
  g.spawn([&] { stopped_after_join = fu::this_task::stop_requested(); });
  g.join();
  CHECK_FALSE(stopped_after_join);
}

TEST_CASE("code without cancellation points runs to its end after a cancel") {
  fu::Group g;
  long work = 0;
  g.spawn([&] {
    for (long i = 0; i < 1000; ++i) work += i;  // never suspends
  });
  g.cancel();
  g.join();
  CHECK(work == 999 * 1000 / 2);
}

TEST_CASE("join inside a task is a cancellation point") {
  fu::Group outer;
  fu::Group inner;
  fu::Semaphore gate(0);  // the inner task cannot finish while the outer one joins it
  bool cancelled = false;
  inner.spawn([&gate] { gate.acquire(); });
  outer.spawn([&] {
    try {
      inner.join();
    } catch (const fu::cancelled&) {
      cancelled = true;
    }
  });
  CHECK_FALSE(outer.join_for(10ms));
  outer.cancel();
  outer.join();
  CHECK(cancelled);
  gate.release();
  inner.join();
}

TEST_CASE("arguments are decay-copied and std::ref passes a reference") {
  fu::Group g;
  std::string text = "original";
  int counter = 0;
  g.spawn([](std::string s, int& c) {
    s += " changed";
    c += 1;
  }, text, std::ref(counter));
  text = "changed by the caller before the task ran";
  g.join();
  CHECK(counter == 1);

  std::string seen;
  std::string source = "copied at spawn";
  g.spawn([&seen](const std::string& s) { seen = s; }, source);
  source = "changed after spawn";
  g.join();
  CHECK(seen == "copied at spawn");

  auto only_moves = std::make_unique<int>(7);
  int got = 0;
  g.spawn([&got](std::unique_ptr<int> p) { got = *p; }, std::move(only_moves));
  g.join();
  CHECK(got == 7);
}

TEST_CASE("the destructor requests stop on unfinished tasks and waits for them") {
  bool finished_cleanly = false;
  bool was_cancelled = false;
  {
    fu::Group g;
    g.spawn([&] {
      try {
        fu::this_task::sleep_for(1h);
      } catch (const fu::cancelled&) {
        was_cancelled = true;
        finished_cleanly = true;
        throw;
      }
    });
    CHECK_FALSE(g.join_for(5ms));
  }
  CHECK(was_cancelled);
  CHECK(finished_cleanly);
}

TEST_CASE("an exception no join observed does not terminate and is written to stderr") {
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(::fileno(capture), 2);
  {
    fu::Group g;
    g.spawn([] { throw std::runtime_error("nobody joined me"); });
    while (g.size() != 0) fu::this_task::yield();  // the task has run and thrown; nobody joins
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::rewind(capture);
  char buf[512] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, capture);
  std::fclose(capture);
  CHECK(std::string(buf, n).find("nobody joined me") != std::string::npos);
}

TEST_CASE("several fibers join one group at once and all return when it is done") {
  fu::Semaphore gate(0);
  fu::Group work;
  fu::Group joiners;
  std::atomic<int> joining{0}, returned{0};
  work.spawn([&gate] { gate.acquire(); });
  for (int i = 0; i < 3; ++i)
    joiners.spawn([&] {
      ++joining;
      work.join();  // nothing suspends between the count and the join
      ++returned;
    });
  while (joining < 3) fu::this_task::yield();
  CHECK(returned == 0);  // all three wait in join
  gate.release();
  joiners.join();
  CHECK(returned == 3);
  CHECK(work.size() == 0);
}

TEST_CASE("exceptions after the first are counted by dropped_exceptions, not lost silently") {
  fu::Group g;
  for (int i = 0; i < 3; ++i) g.spawn([i] { throw std::runtime_error("task " + std::to_string(i)); });
  CHECK(g.dropped_exceptions() == 0);
  CHECK_THROWS_AS(g.join(), std::runtime_error);
  CHECK(g.dropped_exceptions() == 2);
  g.spawn([] { throw std::runtime_error("once more"); });
  CHECK_THROWS_AS(g.join(), std::runtime_error);
  CHECK(g.dropped_exceptions() == 2);  // a lone exception is rethrown, not dropped
}

TEST_CASE("in a fail_fast group the first exception stops 1,000 sleepers and join rethrows it") {
  fu::Group g(fu::fail_fast);
  std::atomic<int> asleep{0}, cancelled{0};
  fu::Semaphore all_asleep(0);
  for (int i = 0; i < 1000; ++i)
    g.spawn([&] {
      if (++asleep == 1000) all_asleep.release();
      try {
        fu::this_task::sleep_for(1h);
      } catch (const fu::cancelled&) {
        ++cancelled;
        throw;
      }
    });
  g.spawn([&] {
    all_asleep.acquire();
    throw std::runtime_error("first failure");
  });
  const auto t0 = Clock::now();
  CHECK_THROWS_WITH_AS(g.join(), "first failure", std::runtime_error);
  CHECK(Clock::now() - t0 < 10s);  // not the hour: the failure stopped them
  CHECK(cancelled == 1000);
  // The group is usable again, and fails fast again.
  g.spawn([] { throw std::logic_error("second round"); });
  CHECK_THROWS_AS(g.join(), std::logic_error);
}

TEST_CASE("a fail_fast pool's queued tasks never start their bodies after the first exception") {
  fu::Pool p(2, fu::fail_fast);
  std::atomic<int> bodies{0};
  fu::Semaphore gate(0);
  p.spawn([&] {
    gate.acquire();
    throw std::runtime_error("boom");
  });
  p.spawn([&] { fu::this_task::sleep_for(1h); });
  for (int i = 0; i < 100; ++i) p.spawn([&] { ++bodies; });  // queued: both slots are taken
  gate.release();
  CHECK_THROWS_AS(p.join(), std::runtime_error);
  CHECK(bodies == 0);
  p.spawn([&] { ++bodies; });  // a new generation runs again
  p.join();
  CHECK(bodies == 1);
}

TEST_CASE("a fail_fast group's failure stops groups nested in its tasks") {
  fu::Group g(fu::fail_fast);
  std::atomic<int> inner_cancelled{0};
  fu::Semaphore inner_asleep(0);
  g.spawn([&] {
    fu::Group inner;
    for (int i = 0; i < 10; ++i)
      inner.spawn([&] {
        inner_asleep.release();
        try {
          fu::this_task::sleep_for(1h);
        } catch (const fu::cancelled&) {
          ++inner_cancelled;
          throw;
        }
      });
    inner.join();  // a cancellation point: the outer failure ends it, and ~Group stops the rest
  });
  g.spawn([&] {
    for (int i = 0; i < 10; ++i) inner_asleep.acquire();
    throw std::runtime_error("outer failure");
  });
  CHECK_THROWS_AS(g.join(), std::runtime_error);
  CHECK(inner_cancelled == 10);
}

TEST_CASE("without fail_fast a failure does not stop the other tasks") {
  fu::Group g;
  std::atomic<int> finished{0};
  fu::Semaphore failed(0);
  g.spawn([&] {
    failed.release();
    throw std::runtime_error("boom");
  });
  g.spawn([&] {
    failed.acquire();
    fu::this_task::yield();  // a cancellation point after the failure: no stop came
    ++finished;
  });
  CHECK_THROWS_AS(g.join(), std::runtime_error);
  CHECK(finished == 1);
}

// SPDX-License-Identifier: Apache-2.0
//
// Leaving a stream early, destroying it with tasks running, and streams across threads.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <ranges>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Counted;
using test_support::sleep_an_hour_unless_cancelled;

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

TEST_CASE("5 threads loop streams and groups for a while") {
  std::atomic<long> total{0};
  test_support::on_threads_for_a_while(5, 300ms, 10, [&] {
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
  });
  CHECK(total > 0);
}

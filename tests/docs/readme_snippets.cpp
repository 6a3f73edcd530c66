// SPDX-License-Identifier: Apache-2.0
//
// The README's examples that are not samples, compiled and run: check_readme_snippets.py makes sure
// each README block tagged `<!-- snippet: FILE#NAME -->` is, line for line, the region between the
// `// [NAME]` markers of FILE, so what the README shows is what this test builds and checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
std::string fetch(const std::string& url) {
  fu::this_task::sleep_for(1ms);  // stands in for I/O
  return "<page " + url + ">";
}
int parse(const std::string& page) { return static_cast<int>(page.size()); }
}  // namespace

TEST_CASE("README: a Pool producer with wait_available backpressure never queues past the limit") {
  std::vector<std::string> urls(40, "https://example.org/");
  std::atomic<int> running{0}, high_water{0}, done{0};
  // [pool]
  fu::Pool pool(4);  // at most 4 fetches at once
  for (const std::string& url : urls) {
    pool.wait_available();  // a producer that would rather wait than queue thousands of tasks
    pool.spawn([&](const std::string& u) {
      int now = ++running;
      int seen = high_water.load();
      while (now > seen && !high_water.compare_exchange_weak(seen, now)) {}
      fetch(u);
      --running;
      ++done;
    }, url);
  }
  pool.join();
  // [pool]
  CHECK(done == 40);
  CHECK(high_water <= 4);
}

TEST_CASE("README: a Semaphore bounds a section across tasks") {
  int inside = 0, most_inside = 0;
  // [semaphore]
  fu::Semaphore connections(2);  // at most 2 tasks in the section at once
  fu::Group g;
  for (int i = 0; i < 10; ++i) {
    g.spawn([&] {
      connections.acquire();  // suspends this fiber only; a cancellation point
      most_inside = std::max(most_inside, ++inside);
      fu::this_task::sleep_for(1ms);
      --inside;
      connections.release();
    });
  }
  g.join();
  // [semaphore]
  CHECK(most_inside == 2);
}

namespace {
// [yielding]
fu::Yielder<int> page_sizes(std::vector<std::string> urls) {
  return fu::yielding<int>(8, [urls = std::move(urls)](fu::Yielder<int>& y) {
    for (const std::string& url : urls)
      y.spawn([](const std::string& u) { return parse(fetch(u)); }, url);
  });
}
// [yielding]
}  // namespace

TEST_CASE("README: yielding() returns a stream that a function hands back and a loop drains") {
  std::vector<std::string> urls{"a", "bb", "ccc"};
  std::vector<int> got;
  // [yielding-use]
  for (int size : page_sizes(urls)) got.push_back(size);  // in completion order
  // [yielding-use]
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{8, 9, 10});
}

TEST_CASE("README: OrderedYielder yields in spawn order, optional results may yield nothing") {
  std::vector<int> got;
  // [ordered]
  fu::OrderedYielder<int> squares(4);
  for (int i = 0; i < 10; ++i) {
    squares.spawn([](int i) -> std::optional<int> {
      fu::this_task::sleep_for(std::chrono::milliseconds(10 - i));  // later spawns finish first
      if (i % 3 == 0) return std::nullopt;  // yields nothing; its place is skipped
      return i * i;
    }, i);
  }
  for (int v : squares) got.push_back(v);  // 1 4 16 25 49 64: spawn order
  // [ordered]
  CHECK(got == std::vector<int>{1, 4, 16, 25, 49, 64});
}

TEST_CASE("README: a Group with its own stack size runs a task that needs a big stack") {
  std::size_t used = 0;
  // [stack]
  fu::Group deep(fu::StackSize{1024 * 1024});  // 1 MiB stacks for this group's tasks
  deep.spawn([&] {
    std::array<char, 512 * 1024> buffer{};  // on the stack: more than the 128 KiB default
    used = buffer.size();
  });
  deep.join();
  // [stack]
  CHECK(used == 512 * 1024);
}

TEST_CASE("README: a Group destroyed without join() cancels its tasks") {
  int done = 0;
  // [no-join]
  {
    fu::Group g;
    for (int i = 0; i < 5; ++i) {
      g.spawn([&] {
        fu::this_task::sleep_for(1ms);
        ++done;
      });
    }
  }  // no join(): ~Group cancels, so each sleep throws fu::cancelled and done stays 0
  // [no-join]
  CHECK(done == 0);
}

TEST_CASE("README: a call that blocks the thread stalls every task of that thread") {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Clock::duration woke_after{};
  // [blocking]
  fu::Group g;
  g.spawn([&] {
    fu::this_task::sleep_for(10ms);  // due after 10 ms...
    woke_after = Clock::now() - start;
  });
  g.spawn([] {
    std::this_thread::sleep_for(300ms);  // ...but this blocks the thread: nothing runs for 300 ms
  });
  g.join();  // woke_after >= 300 ms
  // [blocking]
  CHECK(woke_after >= 300ms);

  // The fiber sleep in the second task leaves the thread to the first.
  const auto again = Clock::now();
  g.spawn([&] {
    fu::this_task::sleep_for(10ms);
    woke_after = Clock::now() - again;
  });
  g.spawn([] { fu::this_task::sleep_for(300ms); });
  g.join();
  CHECK(woke_after < 300ms);
}

TEST_CASE("README: a task spawned from a std::thread starts when that thread suspends or exits") {
  fu::Group g;
  std::atomic<bool> started{false};
  bool started_while_blocked = true;
  std::thread t([&] {
    g.spawn([&] { started = true; });
    std::this_thread::sleep_for(50ms);  // blocks the thread: the task cannot start
    started_while_blocked = started;
  });  // the thread's queued task runs before it exits
  t.join();
  g.join();
  CHECK_FALSE(started_while_blocked);
  CHECK(started);
}

namespace {
// A connection attempt to a server that is down: it waits (a cancellation point), then fails.
// Calls made after the task's stop was requested are counted; a retry loop that swallowed
// fu::cancelled would call it forever, so past 1000 such calls the test stops with a message
// rather than hang.
int attempts_after_stop = 0;
void connect() {
  if (fu::this_task::stop_requested() && ++attempts_after_stop > 1000) {
    std::fprintf(stderr, "FAILED: a retry loop went on after cancel()\n");
    std::abort();
  }
  fu::this_task::sleep_for(1ms);
  throw std::runtime_error("connection refused");
}
}  // namespace

TEST_CASE("README: retry loops that catch std::exception, or rethrow fu::cancelled, end on cancel()") {
  attempts_after_stop = 0;
  int failures = 0;
  fu::Group g;
  // [retry]
  g.spawn([&] {
    for (;;) {  // retry until connected
      try {
        connect();  // suspends inside: a cancellation point
        return;
      } catch (const std::exception&) {  // not catch (...): it would swallow fu::cancelled
        ++failures;
      }
    }
  });
  g.spawn([&] {
    for (;;) {
      try {
        connect();
        return;
      } catch (const fu::cancelled&) {
        throw;  // the task's stop was requested: let fu::cancelled end the task
      } catch (...) {  // everything else, std::exception or not
        ++failures;
      }
    }
  });
  // [retry]
  CHECK_FALSE(g.join_for(20ms));  // both keep retrying
  CHECK(failures > 0);
  g.cancel();
  g.join();  // returns: each loop ended at its first cancellation point after cancel()
  CHECK(attempts_after_stop == 0);
}

TEST_CASE("catch (...) around a cancellation point swallows fu::cancelled: the retry loop goes on") {
  attempts_after_stop = 0;
  int attempts = 0;
  fu::Group g;
  g.spawn([&] {
    for (; attempts < 100; ++attempts) {  // bounded, so that this test ends
      try {
        connect();
        return;
      } catch (...) {  // also catches the fu::cancelled thrown by connect()'s sleep
      }
    }
  });
  CHECK_FALSE(g.join_for(10ms));
  const int before_cancel = attempts;
  g.cancel();
  g.join();
  // Every attempt left ran after the cancel (the one under way when it came was woken by it, the
  // rest threw at once without suspending), instead of the loop ending at the first of them.
  CHECK(attempts == 100);
  CHECK(attempts_after_stop == 100 - before_cancel - 1);
}

TEST_CASE("README: a loop that never suspends holds off join_for's deadline until it ends") {
  using Clock = std::chrono::steady_clock;
  fu::Group g;
  g.spawn([] {
    const auto end = Clock::now() + 100ms;
    while (!fu::this_task::stop_requested() && Clock::now() < end) {
      // polls its token, but never suspends: nothing else runs on this thread meanwhile
    }
  });
  const auto start = Clock::now();
  g.join_for(1ms);  // the deadline cannot fire (nor a cancel() follow) while the loop runs
  CHECK(Clock::now() - start >= 100ms);
  g.join();
}

namespace {
std::string slow_fetch(const std::string& url) {
  fu::this_task::sleep_for(url == "slow" ? std::chrono::hours(1) : std::chrono::milliseconds(1));
  return "<html>" + url;
}
}  // namespace

TEST_CASE("README: deadline scopes give up on a slow fetch") {
  std::vector<std::string> got;
  int gave_up = 0;
  bool timed_out = false;
  // [deadline]
  for (std::string url : {"fast", "slow"}) {
    std::optional<std::string> page = fu::move_on_after(50ms, [&] { return slow_fetch(url); });
    if (page) got.push_back(*page); else ++gave_up;  // nullopt: the deadline came first
  }
  try {
    fu::fail_after(50ms, [] { return slow_fetch("slow"); });
  } catch (const fu::timed_out& e) {  // what(): "fiberutils: deadline of 50.000 ms passed"
    timed_out = true;
  }
  // [deadline]
  CHECK(got == std::vector<std::string>{"<html>fast"});
  CHECK(gave_up == 1);
  CHECK(timed_out);
}

TEST_CASE("README: a fail_fast group stops the other tasks at the first error") {
  std::atomic<int> stopped{0};
  std::string error;
  fu::Semaphore all_waiting(0);
  // [fail-fast]
  fu::Group g(fu::fail_fast);
  for (int i = 0; i < 3; ++i) {
    g.spawn([&] {
      all_waiting.release();
      try {
        fu::this_task::sleep_for(1h);  // a cancellation point: the first error stops it
      } catch (const fu::cancelled&) {
        ++stopped;
        throw;
      }
    });
  }
  g.spawn([&] {
    for (int i = 0; i < 3; ++i) all_waiting.acquire();  // every sleeper is asleep
    throw std::runtime_error("fetch failed");
  });
  try {
    g.join();  // returns as soon as the others have stopped, rethrowing the first error
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  // [fail-fast]
  CHECK(stopped == 3);
  CHECK(error == "fetch failed");
}

// SPDX-License-Identifier: Apache-2.0
//
// Across threads: threads looping their own groups, pools and streams, one group spawned into by
// one thread and joined by two, a group joined by a thread that did not spawn its tasks, a
// thread's queued tasks run before it exits. Cross-thread cases of one component (a Semaphore
// released from another thread, a stream cancelled from one) are in that component's test.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("5 threads each looping their own groups and pools for a while") {
  std::atomic<long> total{0};
  test_support::on_threads_for_a_while(5, 300ms, 10, [&] {
    fu::Group g;
    fu::Pool p(3);
    long local = 0;
    for (int i = 0; i < 20; ++i) {
      g.spawn([&] {
        fu::this_task::yield();
        g.spawn([&] { ++local; });
      });
      p.spawn([&] { ++local; });
    }
    g.join();
    p.join();
    CHECK(local == 40);
    total += local;
  });
  CHECK(total >= 5 * 10 * 40);
}

TEST_CASE("one group that one thread spawns into and two threads join") {
  fu::Group g;
  std::atomic<int> ran{0};
  std::atomic<bool> spawning_done{false};
  std::atomic<int> joined{0};
  std::thread spawner([&] {
    for (int i = 0; i < 200; ++i) {
      g.spawn([&] {
        fu::this_task::sleep_for(100us);
        ++ran;
      });
      if (i % 20 == 0) fu::this_task::sleep_for(1ms);  // lets this thread run its tasks
    }
    spawning_done = true;
    g.join();  // the tasks run on this thread: it must suspend for them
  });
  auto joiner = [&] {
    while (!spawning_done) std::this_thread::yield();
    g.join();
    CHECK(ran == 200);
    ++joined;
  };
  std::thread a(joiner), b(joiner);
  spawner.join();
  a.join();
  b.join();
  CHECK(joined == 2);
  CHECK(g.size() == 0);
}

TEST_CASE("tasks spawned from another thread run there and are counted by this thread's join") {
  fu::Group g;
  fu::Semaphore started(0), gate(0);
  std::atomic<bool> finished{false};
  std::thread::id ran_on, spawner_id;
  std::thread other([&] {
    spawner_id = std::this_thread::get_id();
    g.spawn([&] {
      ran_on = std::this_thread::get_id();
      started.release();
      gate.acquire();  // pending until this thread's join below has started
      finished = true;
    });
    g.join();
  });
  started.acquire();
  CHECK(g.size() == 1);
  CHECK_FALSE(finished);
  // The gate opens from a task of this thread, which runs only once this fiber suspends: in
  // g.join(). A join that did not count the other thread's task would return before it.
  fu::Group opener;
  opener.spawn([&] { gate.release(); });
  g.join();
  CHECK(finished);
  opener.join();
  other.join();
  CHECK(ran_on == spawner_id);
  CHECK(ran_on != std::this_thread::get_id());
  CHECK(g.size() == 0);
}

TEST_CASE("a thread's queued tasks run before the thread exits" * doctest::timeout(30)) {
  fu::Group g;
  std::atomic<int> ran{0};
  std::thread t([&] {
    // This thread never suspends: its tasks run when it exits.
    for (int i = 0; i < 100; ++i) g.spawn([&] { ++ran; });
  });
  t.join();
  CHECK(ran == 100);
  g.join();
  CHECK(g.size() == 0);
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
      o.spawn([](int i) {
        // 0-4 yields, (i * 7) % 5: the ordered stream's tasks finish out of spawn order
        // (task 3 before task 1), so its order check below can fail.
        for (int k = 0; k < (i * 7) % 5; ++k) fu::this_task::yield();
        return i;
      }, i);
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

// SPDX-License-Identifier: Apache-2.0
//
// fu::Workers: tasks shared between threads before they start, never after; everything in the
// library keeps its guarantees across the threads; the destructor's wait; misuse.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Thread ids seen by tasks, from any thread.
struct ThreadSet {
  std::mutex m;
  std::set<std::thread::id> ids;
  void add() {
    std::lock_guard<std::mutex> lk(m);
    ids.insert(std::this_thread::get_id());
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lk(m);
    return ids.size();
  }
};

// Spins (blocking its thread, on purpose) until `arrived` reaches `n` or 60 s pass; returns
// whether everybody arrived. A task that spins keeps every other task off its thread, so n
// tasks can only all arrive when they run on n different threads at once.
bool spin_until_all_arrived(std::atomic<int>& arrived, int n) {
  ++arrived;
  const auto give_up = Clock::now() + 60s;
  while (arrived.load() < n) {
    if (Clock::now() > give_up) return false;
    // Still blocks this thread's fibers; only lets the OS (or valgrind, which runs one thread at
    // a time) schedule the other threads sooner.
    std::this_thread::yield();
  }
  return true;
}

// n tasks that can only finish when they run on n threads at once; checks that they did.
void check_tasks_run_in_parallel(int n) {
  std::atomic<int> arrived{0}, all_arrived{0};
  ThreadSet threads;
  fu::Group g;
  for (int i = 0; i < n; ++i)
    g.spawn([&] {
      threads.add();
      if (spin_until_all_arrived(arrived, n)) ++all_arrived;
    });
  g.join();
  CHECK(all_arrived == n);
  CHECK(threads.size() == static_cast<std::size_t>(n));
}

}  // namespace

TEST_SUITE_BEGIN("workers");

TEST_CASE("tasks spawned under Workers(2) start on both threads at once") {
  fu::Workers workers(2);
  CHECK(workers.size() == 2);
  check_tasks_run_in_parallel(2);
}

TEST_CASE("a task queued while the helpers sleep wakes one of them, again and again") {
  fu::Workers workers(3);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    // Elapsed time only: the helpers have long gone idle and parked by the time the next round
    // spawns; nothing else depends on it.
    if (round % 5 == 0) std::this_thread::sleep_for(20ms);
    check_tasks_run_in_parallel(3);
  }
}

TEST_CASE("a started task never changes thread across waits, and its thread_locals stay put") {
  thread_local int marker = 0;
  fu::Workers workers(3);
  fu::Semaphore gate(0);
  std::atomic<long> checked{0}, moved{0};
  std::atomic<int> arrived{0};
  ThreadSet threads;
  fu::Group g;
  const int n = static_cast<int>(test_support::scaled(600));
  for (int i = 0; i < n; ++i)
    g.spawn([&, i] {
      const auto id = std::this_thread::get_id();
      int* const where = &marker;
      threads.add();
      if (i < 3) CHECK(spin_until_all_arrived(arrived, 3));  // one task on each thread, at least
      auto same = [&] {
        ++checked;
        if (std::this_thread::get_id() != id || &marker != where) ++moved;
      };
      for (int k = 0; k < 4; ++k) {
        switch ((i + k) % 4) {
          case 0: fu::this_task::yield(); break;
          case 1: fu::this_task::sleep_for(std::chrono::microseconds(50 + i % 200)); break;
          case 2: {  // a nested group, joined: its tasks may run anywhere
            fu::Group nested;
            nested.spawn([] { fu::this_task::yield(); });
            nested.spawn([] {});
            nested.join();
            break;
          }
          default:  // a semaphore that tasks of other threads release
            gate.release();
            gate.acquire();
        }
        same();
      }
    });
  g.join();
  CHECK(checked == 4L * n);
  CHECK(moved == 0);
  CHECK(threads.size() == 3);
}

TEST_CASE("a Pool's limit holds across threads and its queued tasks start in FIFO order") {
  fu::Workers workers(4);
  SUBCASE("the high-water mark of running task bodies stays within the limit") {
    for (int limit : {1, 3, 8}) {
      CAPTURE(limit);
      fu::Pool p(limit);
      test_support::HighWater hw;
      ThreadSet threads;
      std::atomic<int> arrived{0};
      const int together = std::min(limit, 4);  // tasks that must run at once, on as many threads
      const int n = static_cast<int>(test_support::scaled(3000));
      for (int i = 0; i < n; ++i)
        p.spawn([&, i] {
          hw.enter();
          threads.add();
          if (i < together) CHECK(spin_until_all_arrived(arrived, together));
          volatile unsigned x = 0;
          for (int k = 0; k < 200; ++k) x = x + static_cast<unsigned>(k);
          if (i % 3 == 0) fu::this_task::yield();
          hw.leave();
        });
      p.join();
      CHECK(hw.most.load() <= limit);
      CHECK(hw.most.load() >= together);
      CHECK(threads.size() >= static_cast<std::size_t>(together));
      CHECK(hw.now.load() == 0);
      MESSAGE("Pool(" << limit << "): high-water " << hw.most.load() << " on " << threads.size()
              << " thread(s)");
    }
  }
  SUBCASE("with limit 1, tasks start in the order they were spawned") {
    fu::Pool p(1);
    std::mutex m;
    std::vector<int> order;
    const int n = 500;
    for (int i = 0; i < n; ++i)
      p.spawn([&, i] {
        {
          std::lock_guard<std::mutex> lk(m);
          order.push_back(i);
        }
        if (i % 2 == 0) fu::this_task::yield();  // a slot freed on either thread
      });
    p.join();
    REQUIRE(order.size() == static_cast<std::size_t>(n));
    CHECK(std::is_sorted(order.begin(), order.end()));
  }
}

TEST_CASE("an OrderedYielder keeps spawn order with producers on every thread") {
  fu::Workers workers(3);
  ThreadSet threads;
  fu::OrderedYielder<long> y;
  const long n = test_support::scaled(5000);
  std::atomic<int> arrived{0};
  for (long i = 0; i < n; ++i)
    y.spawn([&, i] {
      threads.add();
      if (i < 3) CHECK(spin_until_all_arrived(arrived, 3));  // one task on each thread, at least
      if (i % 7 == 0) fu::this_task::sleep_for(std::chrono::microseconds(i % 100));
      return i;
    });
  long expected = 0;
  for (long v : y) {
    if (v != expected) {
      FAIL("value " << v << " arrived where " << expected << " was due");
    }
    ++expected;
  }
  CHECK(expected == n);
  CHECK(threads.size() == 3);
}

TEST_CASE("a Yielder delivers every value exactly once with producers and puts on every thread") {
  fu::Workers workers(3);
  ThreadSet threads;
  fu::Yielder<long> y;
  const long n = test_support::scaled(5000);
  std::atomic<int> arrived{0};
  for (long i = 0; i < n; ++i)
    y.spawn([&y, &threads, &arrived, i] {
      threads.add();
      if (i < 3) CHECK(spin_until_all_arrived(arrived, 3));  // one task on each thread, at least
      if (i % 5 == 0) fu::this_task::yield();
      y.put(-i - 1);  // from whichever thread runs the task
      return i;
    });
  std::vector<long> seen;
  for (long v : y) seen.push_back(v);
  std::sort(seen.begin(), seen.end());
  CHECK(seen.size() == static_cast<std::size_t>(2 * n));
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  CHECK(seen.front() == -n);
  CHECK(seen.back() == n - 1);
  CHECK(threads.size() == 3);
}

TEST_CASE("cancel reaches tasks asleep on every thread, and join returns") {
  fu::Workers workers(3);
  std::atomic<int> stopped{0}, asleep{0};
  ThreadSet threads;
  fu::Group g;
  fu::Semaphore all_asleep(0);
  const int n = 300;
  std::atomic<int> arrived{0};
  for (int i = 0; i < n; ++i)
    g.spawn([&, i] {
      threads.add();
      if (i < 3) CHECK(spin_until_all_arrived(arrived, 3));  // one task on each thread, at least
      if (++asleep == n) all_asleep.release();
      try {
        fu::this_task::sleep_for(1h);
      } catch (const fu::cancelled&) {
        ++stopped;
        throw;
      }
    });
  all_asleep.acquire();
  const auto t0 = Clock::now();
  g.cancel();
  g.join();
  CHECK(stopped == n);
  CHECK(Clock::now() - t0 < 5s);
  CHECK(threads.size() == 3);
}

TEST_CASE("~Workers waits for every task spawned under it, also in a group made before it") {
  fu::Group before;  // outlives the Workers
  std::atomic<int> finished{0};
  ThreadSet threads;
  const int n = 200;
  std::atomic<int> arrived{0};
  {
    fu::Workers workers(3);
    fu::Pool pool(4);
    for (int i = 0; i < n; ++i) {
      before.spawn([&, i] {
        threads.add();
        if (i < 3) CHECK(spin_until_all_arrived(arrived, 3));  // one task on each thread, at least
        fu::this_task::sleep_for(std::chrono::microseconds(100 + i % 500));
        ++finished;
      });
    }
    for (int i = 0; i < n; ++i)
      pool.spawn([&] {
        fu::this_task::yield();
        ++finished;
      });
    pool.join();
    // `before` is not joined: the destructor must wait for its tasks.
  }
  CHECK(finished == 2 * n);
  CHECK(before.size() == 0);
  CHECK(threads.size() == 3);
  before.join();
}

TEST_CASE("a million empty tasks under Workers(2) all run") {
  fu::Workers workers(2);
  std::atomic<long> ran{0};
  const long n = test_support::scaled(1'000'000);
  fu::Group g;
  for (long i = 0; i < n; ++i) g.spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
  g.join();
  CHECK(ran == n);
}

TEST_CASE("two Workers at once on two threads, and one after another on the same thread") {
  SUBCASE("at once") {
    std::atomic<int> ok{0};
    std::vector<std::thread> owners;
    for (int t = 0; t < 2; ++t)
      owners.emplace_back([&] {
        fu::Workers workers(2);
        std::atomic<int> arrived{0};
        ThreadSet threads;
        fu::Group g;
        int done = 0;
        std::mutex m;
        for (int i = 0; i < 2; ++i)
          g.spawn([&] {
            threads.add();
            if (spin_until_all_arrived(arrived, 2)) {
              std::lock_guard<std::mutex> lk(m);
              ++done;
            }
          });
        g.join();
        if (done == 2 && threads.size() == 2) ++ok;
      });
    for (auto& t : owners) t.join();
    CHECK(ok == 2);
  }
  SUBCASE("one after another") {
    for (int round = 0; round < 10; ++round) {
      CAPTURE(round);
      fu::Workers workers(2);
      check_tasks_run_in_parallel(2);
    }
    // And the thread is back to running its own tasks.
    fu::Group g;
    std::thread::id ran_on;
    g.spawn([&] { ran_on = std::this_thread::get_id(); });
    g.join();
    CHECK(ran_on == std::this_thread::get_id());
  }
}

TEST_CASE("misuse: zero threads, and a second Workers on a thread that belongs to one") {
  CHECK_THROWS_AS(fu::Workers(0), std::invalid_argument);
  fu::Workers workers(2);
  try {
    fu::Workers again(2);
    FAIL("a second Workers on the owner thread did not throw");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("already belongs to a Workers") != std::string::npos);
  }
  // From tasks on every thread of it (helpers included).
  std::atomic<int> threw{0};
  std::atomic<int> arrived{0};
  fu::Group g;
  for (int i = 0; i < 2; ++i)
    g.spawn([&] {
      (void)spin_until_all_arrived(arrived, 2);  // one task per thread
      try {
        fu::Workers nested(2);
      } catch (const std::logic_error&) {
        ++threw;
      }
    });
  g.join();
  CHECK(threw == 2);
}

TEST_CASE("Workers() uses hardware_concurrency threads") {
  fu::Workers workers;
  CHECK(workers.size() == std::max(1u, std::thread::hardware_concurrency()));
}

TEST_CASE("tasks spawned from a thread outside the Workers run on that thread") {
  fu::Workers workers(2);
  std::atomic<bool> same{false};
  std::thread outside([&] {
    fu::Group g;
    const auto me = std::this_thread::get_id();
    bool all_here = true;
    for (int i = 0; i < 50; ++i)
      g.spawn([&] {
        fu::this_task::yield();
        if (std::this_thread::get_id() != me) all_here = false;
      });
    g.join();
    same = all_here;
  });
  outside.join();
  CHECK(same);
}

TEST_SUITE_END();

TEST_CASE("run_blocking under Workers returns on the task's own thread and parks only that task") {
  fu::Workers workers(2);
  fu::Group g;
  std::atomic<int> same_thread{0}, sum{0};
  for (int i = 0; i < 40; ++i)
    g.spawn([&, i] {
      const auto before = std::this_thread::get_id();
      int r = fu::run_blocking([i] {
        std::this_thread::sleep_for(1ms);  // blocks a pool thread, not the task's
        return i;
      });
      sum += r;
      if (std::this_thread::get_id() == before) ++same_thread;
    });
  g.join();
  CHECK(sum == 40 * 39 / 2);
  CHECK(same_thread == 40);
}

TEST_CASE("deadline scopes and fail_fast work under Workers") {
  fu::Workers workers(2);
  fu::Group g(fu::fail_fast);
  std::atomic<int> expired{0};
  fu::Semaphore all_expired(0);
  for (int i = 0; i < 20; ++i)
    g.spawn([&] {
      if (!fu::move_on_after(5ms, [] { fu::this_task::sleep_for(1h); })) ++expired;
      all_expired.release();
      fu::this_task::sleep_for(1h);  // stopped by the failure below
    });
  g.spawn([&] {
    for (int i = 0; i < 20; ++i) all_expired.acquire();
    throw std::runtime_error("stop them");
  });
  CHECK_THROWS_AS(g.join(), std::runtime_error);
  CHECK(expired == 20);
}

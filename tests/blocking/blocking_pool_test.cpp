// SPDX-License-Identifier: Apache-2.0
//
// fu::run_blocking's pool with a maximum of 3 threads (set before the first call, as
// set_blocking_threads requires: the maximum is per process, hence this program of its own):
// the maximum holds, calls beyond it start in FIFO order, a queued call whose task is stopped
// never starts, idle threads end after 10 s.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <semaphore>
#include <set>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
constexpr int kMax = 3;
// Before main, so before any run_blocking of this program.
const bool configured = (fu::set_blocking_threads(kMax), true);

long threads_of_this_process() {
  long n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// Occupies every pool thread with a call blocked on `gate` (kMax releases end them all), and
// returns once all kMax calls have started. The calls are spawned into `g`.
void occupy_the_pool(fu::Group& g,
                     std::counting_semaphore<>& gate,
                     std::set<std::thread::id>* ids,
                     std::mutex* ids_m) {
  // Static: a pool thread may still be inside release() when acquire() has returned here.
  static fu::Semaphore started(0);
  for (int i = 0; i < kMax; ++i)
    g.spawn([&gate, ids, ids_m] {
      fu::run_blocking([&] {
        if (ids) {
          std::lock_guard<std::mutex> lk(*ids_m);
          ids->insert(std::this_thread::get_id());
        }
        started.release();
        REQUIRE(gate.try_acquire_for(30s));
      });
    });
  for (int i = 0; i < kMax; ++i)
    started.acquire();
}
}  // namespace

TEST_CASE("the pool never runs more calls at once than its maximum, on at most that many threads") {
  REQUIRE(configured);
  test_support::HighWater inside;
  std::mutex m;
  std::set<std::thread::id> ids;
  std::counting_semaphore<> gate(0);
  fu::Group g;
  occupy_the_pool(g, gate, &ids, &m);  // kMax calls inside at once: the pool is full
  for (int i = 0; i < 20; ++i)
    g.spawn([&] {
      fu::run_blocking([&] {
        inside.enter();
        {
          std::lock_guard<std::mutex> lk(m);
          ids.insert(std::this_thread::get_id());
        }
        inside.leave();
      });
    });
  g.spawn([&] { gate.release(kMax); });  // runs after the 20 have handed their calls over
  g.join();
  CHECK(inside.most.load() >= 1);
  CHECK(inside.most.load() <= kMax);
  CHECK(ids.size() == static_cast<std::size_t>(kMax));
}

TEST_CASE("calls beyond the maximum start in the order they were made") {
  std::counting_semaphore<> gate(0);
  std::mutex m;
  std::vector<int> started_order;
  fu::Group g;
  occupy_the_pool(g, gate, nullptr, nullptr);
  // The group's tasks start in spawn order on this thread, and each runs until its call is
  // queued: calls are made in the order 0..N-1.
  constexpr int kCalls = 30;
  for (int i = 0; i < kCalls; ++i)
    g.spawn(
        [&](int i) {
          fu::run_blocking([&] {
            std::lock_guard<std::mutex> lk(m);
            started_order.push_back(i);
          });
        },
        i);
  // One pool thread is freed: alone, it drains the queue one call after another, so the order
  // it records is the order in which calls start. The others are freed once it is done.
  g.spawn([&] {
    gate.release(1);
    while (true) {
      {
        std::lock_guard<std::mutex> lk(m);
        if (started_order.size() == kCalls)
          break;
      }
      fu::this_task::sleep_for(1ms);  // polling the calls' progress, not synchronising
    }
    gate.release(kMax - 1);
  });
  g.join();
  std::vector<int> expected(kCalls);
  for (int i = 0; i < kCalls; ++i)
    expected[i] = i;
  CHECK(started_order == expected);
}

TEST_CASE("a queued call whose task is stopped before it starts never starts") {
  std::counting_semaphore<> gate(0);
  std::atomic<bool> withdrawn_ran{false};
  std::atomic<bool> task_cancelled{false};
  fu::Group occupiers;
  occupy_the_pool(occupiers, gate, nullptr, nullptr);
  {
    fu::Group g;
    g.spawn([&] {
      try {
        fu::run_blocking([&] { withdrawn_ran = true; });  // queued: every thread is busy
      } catch (const fu::cancelled&) {
        task_cancelled = true;
        throw;
      }
    });
    g.spawn([&g] { g.cancel(); });  // runs once the first task waits in run_blocking
    g.join();
  }
  CHECK(task_cancelled);
  gate.release(kMax);
  occupiers.join();
  // Calls start in FIFO order: once this later call has run, the withdrawn one would have.
  CHECK(fu::run_blocking([] { return 1; }) == 1);
  CHECK_FALSE(withdrawn_ran);
}

TEST_CASE("pool threads idle for 10 s end, and the pool starts threads again afterwards") {
  std::counting_semaphore<> gate(0);
  {
    fu::Group g;
    occupy_the_pool(g, gate, nullptr, nullptr);
    gate.release(kMax);
    g.join();
  }
  const long with_pool = threads_of_this_process();
  // Sleeps below stand for elapsed time: the 10 s idle timeout is what is tested.
  std::this_thread::sleep_for(5s);
  CHECK(threads_of_this_process() == with_pool);  // idle for ~5 s: still there
  const auto until = Clock::now() + 20s;
  while (threads_of_this_process() > with_pool - kMax && Clock::now() < until)
    std::this_thread::sleep_for(100ms);
  CHECK(threads_of_this_process() == with_pool - kMax);
  CHECK(fu::run_blocking([] { return 2; }) == 2);
  CHECK(threads_of_this_process() == with_pool - kMax + 1);
}

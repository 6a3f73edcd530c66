// SPDX-License-Identifier: Apache-2.0
//
// Four threads, each spawning into the others' groups and pools and joining them: every task
// runs exactly once, no pool ever exceeds its limit, nothing deadlocks.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "stress_common.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

TEST_CASE("4 threads spawn into each other's groups and pools and join across threads") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  constexpr int kThreads = 4;
  std::array<fu::Group, kThreads> groups;
  std::vector<std::unique_ptr<fu::Pool>> pools;
  std::array<std::atomic<int>, kThreads> running{}, high_water{};
  for (int i = 0; i < kThreads; ++i) pools.push_back(std::make_unique<fu::Pool>(i + 1));
  std::atomic<long> spawned{0}, ran{0};
  const long rounds = stress::scaled(1000);

  auto pool_task = [&](int p) {
    int now = ++running[p];
    int seen = high_water[p].load();
    while (now > seen && !high_water[p].compare_exchange_weak(seen, now)) {}
    fu::this_task::yield();
    --running[p];
    ++ran;
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(stress::mix(seed + static_cast<std::uint64_t>(t)));
      for (long r = 0; r < rounds; ++r) {
        for (int i = 0; i < 8; ++i) {
          const int target = static_cast<int>(rng() % kThreads);
          spawned += 2;
          groups[target].spawn([&, target, nested = static_cast<int>(rng() % kThreads)] {
            if (nested != target) {  // a task spawning into another thread's group
              ++spawned;
              groups[nested].spawn([&] { ++ran; });
            }
            fu::this_task::sleep_for(std::chrono::microseconds(50));
            ++ran;
          });
          pools[target]->spawn(pool_task, target);
        }
        const int j = static_cast<int>(rng() % kThreads);
        if (rng() % 2) groups[j].join(); else pools[j]->join();
      }
      for (auto& g : groups) g.join();
      for (auto& p : pools) p->join();
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ran == spawned);
  for (int i = 0; i < kThreads; ++i) {
    CHECK(groups[i].size() == 0);
    CHECK(pools[i]->size() == 0);
    CHECK(high_water[i] <= i + 1);
  }
  MESSAGE("threads: " << spawned.load() << " tasks, seed " << seed);
}

// SPDX-License-Identifier: Apache-2.0
//
// Nested spawning without co_await: 10 outer tasks each sleep 100 ms, then spawn 10 inner tasks
// into the same group that each sleep 100 ms. One join() waits for all 110; they take about
// 0.2 s of wall time, against 11 s run one after another. The sample checks that all 100 inner
// tasks ran and that the sleeps overlapped (far under the 11 s).
#include <atomic>
#include <chrono>
#include <cstdio>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

int main() {
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> inner_done{0};

  // [nested]
  fu::Group g;
  for (int i = 0; i < 10; ++i) {
    g.spawn([&] {
      fu::this_task::sleep_for(100ms);  // outer work
      for (int j = 0; j < 10; ++j) {
        g.spawn([&] {  // spawned from inside a task: join() below waits for it too
          fu::this_task::sleep_for(100ms);
          ++inner_done;
        });
      }
    });
  }
  g.join();
  // [nested]

  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  std::printf("110 tasks (10 outer x 10 inner, 100 ms sleeps each) in %.2f s; "
              "sequentially: 11 s\n", wall.count());
  // 5 s leaves room for slow configurations (valgrind) and still fails if the sleeps ran one
  // after another.
  const bool ok = inner_done == 100 && wall < 5s;
  if (!ok) std::printf("FAILED: %d inner tasks done\n", inner_done.load());
  return ok ? 0 : 1;
}

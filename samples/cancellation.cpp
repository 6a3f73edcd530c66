// SPDX-License-Identifier: Apache-2.0
//
// Cancellation at a deadline: 5 tasks that would sleep for an hour, and one quick one. join_for()
// gives up after 200 ms, cancel() wakes the sleepers at once (their sleep throws fu::cancelled,
// which is not an error), and join() returns promptly.
#include <chrono>
#include <cstdio>
#include <stop_token>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

int main() {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&]() -> long long {  // printed with %lld: rep is long on some platforms
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - start).count();
  };

  // [cancellation]
  fu::Group g;
  for (int i = 0; i < 5; ++i) {
    g.spawn([](int id) {
      fu::this_task::sleep_for(1h);  // a cancellation point: throws fu::cancelled on cancel()
      std::printf("sleeper %d woke up (never printed)\n", id);
    }, i);
  }
  g.spawn([](std::stop_token stop) {  // a task may take its std::stop_token, as with std::jthread
    int rounds = 0;
    while (!stop.stop_requested() && rounds < 3) {
      fu::this_task::yield();
      ++rounds;
    }
    std::printf("the quick task finished after %d rounds\n", rounds);
  });

  if (!g.join_for(200ms)) {  // false: time ran out, the tasks go on
    std::printf("deadline after %lld ms: cancelling %zu tasks\n", elapsed_ms(), g.size());
    g.cancel();
    g.join();  // cancelled tasks are not errors: nothing is rethrown
  }
  // [cancellation]

  std::printf("all done after %lld ms, %zu tasks left\n", elapsed_ms(), g.size());
  return g.size() == 0 && elapsed_ms() < 60'000 ? 0 : 1;
}

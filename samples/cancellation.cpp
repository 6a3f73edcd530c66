// SPDX-License-Identifier: Apache-2.0
//
// Cancellation at a deadline: 5 tasks that would sleep for an hour, and one quick one. join_for()
// gives up after 200 ms, cancel() wakes the sleepers at once (their sleep throws fu::cancelled,
// which is not an error), and join() returns promptly. The sample checks each of those steps and
// exits non-zero when one did not happen.
#include <chrono>
#include <cstddef>
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
  // What happened, one thread: plain ints do.
  int sleepers_woken = 0, quick_rounds = 0;
  std::size_t left_at_deadline = 0;
  long long deadline_ms = -1, cancel_ms = -1;

  // [cancellation]
  fu::Group g;
  for (int i = 0; i < 5; ++i) {
    g.spawn([&](int id) {
      fu::this_task::sleep_for(1h);  // a cancellation point: throws fu::cancelled on cancel()
      std::printf("sleeper %d woke up (never printed)\n", id);
      ++sleepers_woken;
    }, i);
  }
  g.spawn([&](std::stop_token stop) {  // a task may take its std::stop_token, as with std::jthread
    while (!stop.stop_requested() && quick_rounds < 3) {
      fu::this_task::yield();  // a loop that polls its token must also let the thread run others
      ++quick_rounds;
    }
    std::printf("the quick task finished after %d rounds\n", quick_rounds);
  });

  if (!g.join_for(200ms)) {  // false: time ran out, the tasks go on
    deadline_ms = elapsed_ms();
    left_at_deadline = g.size();
    std::printf("deadline after %lld ms: cancelling %zu tasks\n", deadline_ms, left_at_deadline);
    g.cancel();
    g.join();  // cancelled tasks are not errors: nothing is rethrown
  }
  // [cancellation]
  cancel_ms = elapsed_ms() - deadline_ms;

  std::printf("all done %lld ms after the cancel\n", cancel_ms);
  // The deadline came (not before 200 ms), only the 5 sleepers were left then, none of them woke
  // up normally, the quick task ran its 3 rounds, and the cancel ended the hour-long sleeps at
  // once: 10 s is far above what it takes even under valgrind, far below an hour.
  const bool ok = deadline_ms >= 200 && left_at_deadline == 5 && sleepers_woken == 0 &&
                  quick_rounds == 3 && cancel_ms < 10'000;
  if (!ok) std::printf("FAILED\n");
  return ok ? 0 : 1;
}

// SPDX-License-Identifier: Apache-2.0
//
// fu::StackSize and the fiber stacks behind every task: the default size and a group's own, and
// stacks as the tools see them: exceptions thrown and caught deep inside tasks, on stacks
// that runners then reuse for other tasks. In the ASan configuration (.ci/matrix) these are the
// patterns that produced false stack-buffer-overflow reports before libfiberutils announced its
// stack switches to ASan (lib/asan_fiber_switch.cpp): frames unwound by a throw on a stack ASan
// did not know stayed poisoned, and a later frame there (ASan's own sigaltstack call at the next
// throw, a clock_gettime under sleep_for) was reported. In every build they check that
// exceptions and stack reuse work.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include <fiberutils/fiberutils.hpp>

#include "fiberutils_config.hpp"  // FIBERUTILS_DEFAULT_STACK_SIZE, from the meson option

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {

struct NotStd {
  int depth;
};

// Recurses `depth` frames, each with an addressable buffer (ASan puts redzones around it), and
// throws at the bottom: a std exception or, when `not_std`, a type not derived from
// std::exception.
[[gnu::noinline]] int throw_from_depth(int depth, bool not_std) {
  volatile char frame[64];
  frame[depth % 64] = static_cast<char>(depth);
  if (depth == 0) {
    if (not_std) throw NotStd{depth};
    throw std::runtime_error(std::string(40, 'x'));  // heap-allocated message
  }
  return throw_from_depth(depth - 1, not_std) + frame[depth % 64];
}

// Returns depth + 1 after descending `depth` frames with buffers and asking the clock at the
// bottom (an intercepted libc call from uninstrumented libstdc++, at a depth thrown frames
// reached before).
[[gnu::noinline]] int clock_at_depth(int depth) {
  volatile char frame[48];
  frame[0] = 1;
  if (depth == 0) return std::chrono::steady_clock::now().time_since_epoch().count() > 0 ? 1 : 0;
  return clock_at_depth(depth - 1) + frame[0];
}

}  // namespace

TEST_CASE("exceptions thrown and caught deep inside tasks leave the tasks and their reused stacks working" *
          doctest::timeout(60)) {
  constexpr int kTasks = 64, kRounds = 20;
  int caught_std = 0, caught_not_std = 0, clock_depths = 0;
  fu::Group g;
  for (int wave = 0; wave < 3; ++wave) {  // later waves run on the stacks of earlier ones
    for (int t = 0; t < kTasks; ++t) {
      g.spawn([&, t] {
        for (int r = 0; r < kRounds; ++r) {
          try {
            throw_from_depth(4 + (t + r) % 12, (t + r) % 3 == 0);
          } catch (const std::runtime_error& e) {
            if (std::string(e.what()) == std::string(40, 'x')) ++caught_std;
          } catch (const NotStd& e) {
            if (e.depth == 0) ++caught_not_std;
          }
          if (r % 4 == 0) fu::this_task::sleep_for(50us);
          else fu::this_task::yield();
          clock_depths += clock_at_depth((t + r) % 16) == (t + r) % 16 + 1;
        }
      });
    }
    g.join();
  }
  int expected_not_std = 0;
  for (int t = 0; t < kTasks; ++t)
    for (int r = 0; r < kRounds; ++r) expected_not_std += (t + r) % 3 == 0;
  CHECK(caught_not_std == 3 * expected_not_std);
  CHECK(caught_std == 3 * (kTasks * kRounds - expected_not_std));
  CHECK(clock_depths == 3 * kTasks * kRounds);
}

TEST_CASE("an exception escaping a task is rethrown by join, and the stack it unwound serves the next tasks" *
          doctest::timeout(60)) {
  fu::Group g;
  for (int round = 0; round < 50; ++round) {
    g.spawn([round] { throw_from_depth(8 + round % 8, false); });
    CHECK_THROWS_AS(g.join(), std::runtime_error);
    int sum = 0;
    for (int t = 0; t < 4; ++t)
      g.spawn([&sum, t] {
        fu::this_task::yield();
        sum += clock_at_depth(12 + t);
      });
    g.join();
    CHECK(sum == (13 + 14 + 15 + 16));
  }
}

TEST_CASE("the default stack size is the meson option's, and a group with its own stack size runs a task that needs more than the default") {
  CHECK(fu::default_stack_size().bytes == FIBERUTILS_DEFAULT_STACK_SIZE);
  fu::Group big(fu::StackSize{2 * FIBERUTILS_DEFAULT_STACK_SIZE + 64 * 1024});
  std::size_t touched = 0;
  big.spawn([&] {
    volatile char buffer[FIBERUTILS_DEFAULT_STACK_SIZE + 16 * 1024];
    for (std::size_t i = 0; i < sizeof buffer; i += 4096) buffer[i] = 1;
    touched = sizeof buffer;
  });
  big.join();
  CHECK(touched > FIBERUTILS_DEFAULT_STACK_SIZE);
}

// SPDX-License-Identifier: Apache-2.0
//
// Streams under random consumers: loops that break at random points (destroying the stream),
// cancel it, or drain it; limits 1, 2, 64 and none; OrderedYielder's order under random task
// durations. Values are counted objects, so a value lost or leaked shows.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "stress_common.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
using test_support::Counted;

template <class Stream>
void run_round(std::mt19937_64& rng, bool ordered, long& tasks_run) {
  constexpr long kLimits[] = {1, 2, 64};
  const long n = 1 + static_cast<long>(rng() % 200);
  const int mode = static_cast<int>(rng() % 3);  // 0 drain, 1 break, 2 cancel
  const long stop_at = static_cast<long>(rng() % (n + 1));
  std::atomic<long> finished{0}, cancelled{0}, started{0};
  {
    const int limit_choice = static_cast<int>(rng() % 4);
    auto make = [&]() -> Stream* {
      if (limit_choice == 3) return new Stream();
      return new Stream(kLimits[limit_choice]);
    };
    std::unique_ptr<Stream> s(make());
    for (long i = 0; i < n; ++i) {
      const auto d = std::chrono::microseconds(rng() % 1500);
      s->spawn([&, i, d] {
        ++started;
        try {
          fu::this_task::sleep_for(d);
        } catch (const fu::cancelled&) {
          ++cancelled;
          throw;
        }
        ++finished;
        return Counted(i);
      });
    }
    long consumed = 0, expected = 0, sum = 0;
    for (Counted& c : *s) {
      if (ordered) {
        REQUIRE(c.v == expected);
        ++expected;
      }
      sum += c.v;
      if (consumed++ == stop_at) {
        if (mode == 1) break;
        if (mode == 2) s->cancel();
      }
    }
    if (mode == 0 || stop_at >= n) {
      CHECK(consumed == n);
      CHECK(sum == n * (n - 1) / 2);
    } else {
      // A break leaves at once; a cancel() ends the loop at its next comparison with end(),
      // values still buffered included (yielder.hpp): either way the value that stopped it was
      // the last.
      CHECK(consumed == stop_at + 1);
      if (ordered) CHECK(sum == stop_at * (stop_at + 1) / 2);
    }
    // Leaving scope destroys the stream: stop requested, tasks waited for, values discarded.
  }
  CHECK(finished + cancelled == started);
  CHECK(Counted::live == 0);
  tasks_run += started;
}
}  // namespace

TEST_CASE("streams whose consumers drain, break or cancel at random points lose and leak nothing") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  long tasks_run = 0;
  const long rounds = stress::scaled(120);
  for (long round = 0; round < rounds; ++round) {
    CAPTURE(round);
    if (rng() % 2)
      run_round<fu::Yielder<Counted>>(rng, false, tasks_run);
    else
      run_round<fu::OrderedYielder<Counted>>(rng, true, tasks_run);
  }
  MESSAGE("streams: " << tasks_run << " tasks in " << rounds << " rounds, seed " << seed);
}

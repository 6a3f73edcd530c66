// SPDX-License-Identifier: Apache-2.0
//
// Deadline scopes (deadline.hpp): entering and leaving a fu::move_on_after scope that does not
// expire, against what a hand-written scope costs at the least: a std::stop_source of its own
// (an allocation) chained to the outer token by a std::stop_callback, as Go's
// context.WithTimeout does with a new context.
#include <chrono>
#include <stop_token>

#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

long micro_deadline_scope(bool fiberutils, const Params& p) {
  long sum = 0;
  if (fiberutils) {
    for (long i = 0; i < p.n; ++i) {
      bool done = fu::move_on_after(std::chrono::hours(1), [&] { ++sum; });
      check(done, "scope expired");
    }
  } else {
    std::stop_source outer;
    for (long i = 0; i < p.n; ++i) {
      std::stop_source own;
      std::stop_callback chain(outer.get_token(), [&own] { own.request_stop(); });
      if (!own.stop_requested()) ++sum;
    }
  }
  check(sum == p.n, "scope count");
  return 0;
}

}  // namespace bench

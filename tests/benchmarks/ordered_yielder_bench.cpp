// SPDX-License-Identifier: Apache-2.0
//
// fu::OrderedYielder (ordered_yielder.hpp) against raw Boost.Fiber futures (fibers::async) read in
// spawn order: W5, a million results in spawn order.
#include <memory>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

long w5_ordered(bool fiberutils, const Params& p) {
  long expected = 0;
  if (fiberutils) {
    fu::OrderedYielder<long> y;
    for (long i = 0; i < p.n; ++i) y.spawn([](long i) { return i; }, i);
    for (long v : y) check(v == expected++, "W5 order");
  } else {
    std::vector<bf::future<long>> futures;
    futures.reserve(static_cast<std::size_t>(p.n));
    for (long i = 0; i < p.n; ++i)
      futures.push_back(bf::async(bf::launch::post, std::allocator_arg, shared_stacks(),
                                  [i] { return i; }));
    for (auto& f : futures) check(f.get() == expected++, "W5 order");
  }
  check(expected == p.n, "W5 count");
  return 0;
}

}  // namespace bench

// SPDX-License-Identifier: Apache-2.0
//
// fu::Semaphore (semaphore.hpp) acquire + release against a raw fiber mutex lock + unlock, the
// cheapest Boost.Fiber primitive that can suspend a fiber.
#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

long micro_semaphore(bool fiberutils, const Params& p) {
  if (fiberutils) {
    fu::Semaphore s(1);
    for (long i = 0; i < p.n; ++i) {
      s.acquire();
      s.release();
    }
    check(s.count() == 1, "semaphore count");
  } else {
    bf::mutex m;
    for (long i = 0; i < p.n; ++i) {
      m.lock();
      m.unlock();
    }
  }
  return 0;
}

}  // namespace bench

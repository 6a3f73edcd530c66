// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;

TEST_CASE("a spawned task runs before join returns") {
  fu::Group g;
  bool ran = false;
  g.spawn([&] { ran = true; });
  g.join();
  CHECK(ran);
}

// SPDX-License-Identifier: Apache-2.0
// Must NOT compile: the callable takes an int, and is given a string.
#include <string>

#include <fiberutils/fiberutils.hpp>

int main() {
  fiberutils::Group g;
  g.spawn([](int) {}, std::string("not an int"));
}

// SPDX-License-Identifier: Apache-2.0
// Must NOT compile: a stream's task takes an int, and is given a string.
#include <string>

#include <fiberutils/fiberutils.hpp>

int main() {
  fiberutils::OrderedYielder<int> y;
  y.spawn([](int i) { return i; }, std::string("not an int"));
}

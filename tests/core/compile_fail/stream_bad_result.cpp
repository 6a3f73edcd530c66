// SPDX-License-Identifier: Apache-2.0
// Must NOT compile: a Yielder<int> task returns a string, which is not convertible to int.
#include <string>

#include <fiberutils/fiberutils.hpp>

int main() {
  fiberutils::Yielder<int> y;
  y.spawn([] { return std::string("not an int"); });
}

// SPDX-License-Identifier: Apache-2.0
//
// An outside project's program: spawns tasks into a Group, streams results through a Yielder and
// an OrderedYielder, and exits non-zero when anything is wrong. Built by each consumer project.
// Its one argument is the project version the build says it installed, to check version.hpp by.
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) { std::fprintf(stderr, "FAILED: %s\n", what); ++failures; }
  };

  // The generated header agrees with meson's project version, and its parts with its string.
  check(argc == 2 && std::string(argv[1]) == FIBERUTILS_VERSION_STRING,
        "FIBERUTILS_VERSION_STRING is the project version");
  check(std::to_string(FIBERUTILS_VERSION_MAJOR) + "." + std::to_string(FIBERUTILS_VERSION_MINOR) +
                "." + std::to_string(FIBERUTILS_VERSION_PATCH) == FIBERUTILS_VERSION_STRING,
        "FIBERUTILS_VERSION_MAJOR.MINOR.PATCH spell FIBERUTILS_VERSION_STRING");
  static_assert(FIBERUTILS_VERSION == FIBERUTILS_VERSION_MAJOR * 10000 +
                                          FIBERUTILS_VERSION_MINOR * 100 + FIBERUTILS_VERSION_PATCH);

  int sum = 0;
  fu::Group g;
  for (int i = 1; i <= 10; ++i) g.spawn([&sum](int i) { fu::this_task::yield(); sum += i; }, i);
  g.join();
  check(sum == 55, "Group: ten tasks joined");

  fu::Yielder<int> unordered(3);
  for (int i = 1; i <= 10; ++i) unordered.spawn([](int i) { fu::this_task::sleep_for(1ms); return i; }, i);
  std::vector<int> got(unordered.begin(), unordered.end());
  check(std::accumulate(got.begin(), got.end(), 0) == 55 && got.size() == 10, "Yielder: every value");

  auto ordered = fu::ordered_yielding<int>([](fu::OrderedYielder<int>& y) {
    for (int i = 0; i < 10; ++i)
      y.spawn([](int i) { fu::this_task::sleep_for(std::chrono::milliseconds(10 - i)); return i; }, i);
  });
  int expected = 0;
  for (int v : ordered) check(v == expected++, "OrderedYielder: spawn order");
  check(expected == 10, "OrderedYielder: every value");

  std::printf("fiberutils %s consumer: %s\n", FIBERUTILS_VERSION_STRING, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

// SPDX-License-Identifier: Apache-2.0
//
// The Python original's quick start: a Group, then a Pool(2), over "abcdefg". Each task sleeps a
// random moment (a fiber sleep: the thread runs the other tasks meanwhile) and prints its letter.
#include <chrono>
#include <iostream>
#include <random>
#include <string>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

// [quickstart]
void f(char c, std::chrono::milliseconds delay) {
  fu::this_task::sleep_for(delay);
  std::cout << c << ' ';
}

int main() {
  const std::string chars = "abcdefg";
  std::mt19937 rng{std::random_device{}()};
  auto random_delay = [&] { return std::chrono::milliseconds(rng() % 100); };

  fu::Group g;
  for (char c : chars) g.spawn(f, c, random_delay());
  g.join();  // the tasks run while main waits here
  std::cout << "<- Group, in completion order\n";

  fu::Pool p(2);  // at most 2 tasks at once
  for (char c : chars) p.spawn(f, c, random_delay());
  p.join();
  std::cout << "<- Pool(2)\n";
}
// [quickstart]

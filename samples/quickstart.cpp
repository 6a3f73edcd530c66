// SPDX-License-Identifier: Apache-2.0
//
// The Python original's quick start: a Group, then a Pool(2), over "abcdefg". Each task sleeps a
// random moment (a fiber sleep: the thread runs the other tasks meanwhile) and prints its letter.
// The sample then checks that each join() returned only after all seven letters were printed.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
std::string printed;  // every letter printed, in order, for the checks at the end of main

// True when `letters` holds each letter of `chars` exactly once.
bool each_once(std::string letters, std::string chars) {
  std::sort(letters.begin(), letters.end());
  std::sort(chars.begin(), chars.end());
  return letters == chars;
}
}  // namespace

// [quickstart-task]
void f(char c, std::chrono::milliseconds delay) {
  fu::this_task::sleep_for(delay);
  std::cout << c << ' ';
  printed += c;  // for the check at the end of main
}
// [quickstart-task]

int main() {
  // [quickstart]
  const std::string chars = "abcdefg";
  std::mt19937 rng{std::random_device{}()};
  auto random_delay = [&] { return std::chrono::milliseconds(rng() % 100); };

  fu::Group g;
  for (char c : chars) g.spawn(f, c, random_delay());
  g.join();  // the tasks run while main waits here; forget it and ~Group cancels them
  std::cout << "<- Group, in completion order\n";

  fu::Pool p(2);  // at most 2 tasks at once
  for (char c : chars) p.spawn(f, c, random_delay());
  p.join();
  std::cout << "<- Pool(2)\n";
  // [quickstart]

  // Each join() returned only after its seven tasks had printed: the first seven letters are the
  // Group's, the next seven the Pool's.
  const bool ok = printed.size() == 2 * chars.size() &&
                  each_once(printed.substr(0, chars.size()), chars) &&
                  each_once(printed.substr(chars.size()), chars);
  if (!ok) std::cout << "FAILED: the tasks printed \"" << printed << "\"\n";
  return ok ? 0 : 1;
}

// SPDX-License-Identifier: Apache-2.0
//
// The Python original's Yielder examples: letters from tasks that sleep a random moment, first in
// completion order (Yielder), then in spawn order (OrderedYielder), each with an explicit put().
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
thread_local std::mt19937 rng{std::random_device{}()};

char f(char c) {
  fu::this_task::sleep_for(std::chrono::milliseconds(rng() % 100));
  return c;
}

// [letters]
fu::Yielder<char> unordered_letters(const std::string& chars) {
  return fu::yielding<char>([chars](fu::Yielder<char>& y) {
    for (char c : chars) y.spawn(f, c);
    y.put('!');  // yielded explicitly, among the tasks' results
  });
}

fu::OrderedYielder<char> ordered_letters(const std::string& chars) {
  return fu::ordered_yielding<char>([chars](fu::OrderedYielder<char>& y) {
    for (char c : chars) y.spawn(f, c);
    y.put('!');  // takes its place after the letters
  });
}
// [letters]
}  // namespace

int main() {
  const std::string chars = "abcdefg";
  // [iterate]
  std::string unordered, ordered;
  for (char c : unordered_letters(chars)) unordered += c;  // e.g. "!dbgafce"
  for (char c : ordered_letters(chars)) ordered += c;      // always "abcdefg!"
  // [iterate]
  std::printf("Yielder (completion order): %s\nOrderedYielder (spawn order): %s\n",
              unordered.c_str(), ordered.c_str());
  std::string sorted = unordered;
  std::sort(sorted.begin(), sorted.end());
  return ordered == "abcdefg!" && sorted == "!abcdefg" ? 0 : 1;
}

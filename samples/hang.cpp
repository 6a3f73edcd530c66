// SPDX-License-Identifier: Apache-2.0
//
// Finding out why a program hangs: two tasks each hold one Semaphore and wait for the other's, a
// deadlock. The program notices that the join has not returned after a second and dumps every
// live task (fu::dump_tasks), which shows both tasks suspended in "semaphore", with their names
// and for how long. Then it cancels them (a Semaphore wait is a cancellation point) and exits 0
// if the dump showed the two waits. While it hangs, `kill -USR1 <pid>` prints the same dump:
// fu::dump_tasks_on_signal installs that.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

// Counts the lines of `text` that contain `what`.
int lines_with(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(what) != std::string::npos;
  return n;
}

int main() {
  // [signal]
  fu::dump_tasks_on_signal(SIGUSR1);  // `kill -USR1 <pid>` prints the dump to stderr
  // [signal]

  fu::Semaphore accounts(1), ledger(1);
  fu::Group g;
  // Each task takes its first lock, lets the other one run (so that it takes its own), then asks
  // for the second: neither can ever get it.
  // [deadlock]
  g.spawn([&] {
    fu::this_task::set_name("transfer: accounts then ledger");
    accounts.acquire();
    fu::this_task::yield();
    ledger.acquire();
  });
  // [deadlock]
  g.spawn([&] {
    fu::this_task::set_name("audit: ledger then accounts");
    ledger.acquire();
    fu::this_task::yield();
    accounts.acquire();
  });

  if (g.join_for(1s)) {
    std::puts("no deadlock?");
    return 1;
  }
  // [dump]
  std::ostringstream dump;
  fu::dump_tasks(dump);  // or fu::dump_tasks(std::cerr)
  std::cerr << dump.str();
  // [dump]

  const std::string text = dump.str();
  const bool both = lines_with(text, "suspended in semaphore") == 2 &&
                    lines_with(text, "\"transfer: accounts then ledger\"") == 1 &&
                    lines_with(text, "\"audit: ledger then accounts\"") == 1;
  std::printf("%s\n", both ? "the dump shows both tasks waiting in a semaphore: a deadlock"
                           : "the dump does not show the two semaphore waits");
  g.cancel();
  g.join();
  return both ? 0 : 1;
}

// SPDX-License-Identifier: Apache-2.0
//
// The doctest main of the stress programs. It takes the seed from `--seed=N` (or `--seed N`) on
// the command line, else from FIBERUTILS_SEED, else at random, and prints it before any test
// runs: a crash, a hang killed by meson's timeout or a failed check all leave the seed in the log.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stress_common.hpp"

int main(int argc, char** argv) {
  std::vector<char*> doctest_args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--seed=", 7) == 0) {
      stress::command_line_seed = std::strtoull(argv[i] + 7, nullptr, 0);
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      stress::command_line_seed = std::strtoull(argv[++i], nullptr, 0);
    } else {
      doctest_args.push_back(argv[i]);
    }
  }
  const unsigned long long seed = stress::seed();
  std::printf("stress seed %llu (replay: --seed=%llu or FIBERUTILS_SEED=%llu), scale divisor %ld\n",
              seed, seed, seed, 1'000'000 / stress::scaled(1'000'000));
  std::fflush(stdout);
  doctest::Context context(static_cast<int>(doctest_args.size()), doctest_args.data());
  return context.run();
}

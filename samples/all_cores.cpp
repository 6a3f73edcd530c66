// SPDX-License-Identifier: Apache-2.0
//
// All cores: a CPU-heavy fan-out (hashing 64 chunks of data) run twice, first on this thread
// alone, then under fu::Workers, which lets this thread and its helpers share the tasks. The code
// that spawns and joins is the same; only the Workers object is new. The program prints both wall
// times and checks that both runs computed the same hashes.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using Clock = std::chrono::steady_clock;

namespace {

// FNV-1a, a few rounds over the chunk: enough work per task to be worth a thread.
std::uint64_t hash_chunk(const std::vector<std::uint8_t>& chunk) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (int round = 0; round < 8; ++round)
    for (std::uint8_t byte : chunk) h = (h ^ byte) * 0x100000001b3ULL;
  return h;
}

// [all_cores]
// Hashes every chunk in its own task; results[i] is chunk i's hash.
void hash_all(const std::vector<std::vector<std::uint8_t>>& chunks, std::vector<std::uint64_t>& results) {
  fu::Group g;
  for (std::size_t i = 0; i < chunks.size(); ++i)
    g.spawn([&chunks, &results, i] { results[i] = hash_chunk(chunks[i]); });  // each task its own slot
  g.join();
}

double timed_hash_all(const std::vector<std::vector<std::uint8_t>>& chunks, std::vector<std::uint64_t>& results) {
  const auto t0 = Clock::now();
  hash_all(chunks, results);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
// [all_cores]

}  // namespace

int main() {
  std::vector<std::vector<std::uint8_t>> chunks(64, std::vector<std::uint8_t>(256 * 1024));
  std::uint32_t x = 12345;
  for (auto& chunk : chunks)
    for (auto& byte : chunk) byte = static_cast<std::uint8_t>((x = x * 1664525u + 1013904223u) >> 24);

  std::vector<std::uint64_t> alone(chunks.size()), shared(chunks.size());
  const double one_thread = timed_hash_all(chunks, alone);
  std::printf("one thread:                %7.1f ms\n", one_thread * 1e3);

  double with_workers = 0;
  unsigned threads = 0;
  {
    // [workers]
    fu::Workers workers;  // this thread and hardware_concurrency() - 1 helpers share the tasks
    with_workers = timed_hash_all(chunks, shared);
    // [workers]
    threads = workers.size();
  }  // ~Workers: every task has ended; the helpers stop
  std::printf("fu::Workers (%u threads):  %7.1f ms (%.2fx)\n", threads, with_workers * 1e3,
              one_thread / with_workers);

  if (alone != shared) {
    std::printf("the two runs computed different hashes\n");
    return 1;
  }
  std::printf("both runs computed the same %zu hashes\n", shared.size());
  return 0;
}

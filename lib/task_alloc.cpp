// SPDX-License-Identifier: Apache-2.0
//
// Storage for queued tasks: small blocks by size class, reused most-recent-first from a
// per-thread free list, carved from 64 KiB slabs.
//
// Why not malloc: a burst of 100,000 spawns frees its tasks in FIFO order, which glibc's bins
// handle poorly (_int_malloc was the top entry of a Pool(64) profile), and every malloc block
// carries a header. Here a block has no header (sized delete gives its class), the warmest
// block is reused first, and a thread's free lists survive its exit in a global depot.
//
// A thread's free list of a size class holds at most kCacheMax blocks; beyond that the whole
// list goes to the depot in one splice. Under fu::Workers a task is often freed on another
// thread than the one that allocated it: without the cap, a helper that only runs tasks would
// collect every block it frees while the spawning thread carves new ones, burst after burst.
//
// Slabs are never returned to the system: they hold the high-water mark of queued tasks, and
// a global list keeps them reachable (valgrind reports no leak).
//
// Big bursts carve from 2 MiB chunks advised MADV_HUGEPAGE: a burst's queued tasks are all fresh
// memory, and a first touch of a fresh 4 KiB page costs 1-17 µs on the VMs we measured while a
// transparent huge page costs about 0.4 µs per 4 KiB (tests/benchmarks: W1, W4, W5, W6). A thread
// starts with small slabs, so a program that queues a few hundred tasks never holds a 2 MiB page.
// Where THP is off ("never"), the chunks are ordinary pages, as before.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include <fiberutils/detail/task.hpp>

namespace fiberutils::detail {
namespace {

constexpr std::size_t kGranule = 8;
constexpr std::size_t kMaxPooled = 256;  // larger tasks use ::operator new
constexpr std::size_t kClasses = kMaxPooled / kGranule;
constexpr std::size_t kSlabBytes = 64 * 1024;
constexpr std::size_t kHugeBytes = 2 * 1024 * 1024;  // x86-64's transparent huge page
// Small slabs a thread carves before it switches to huge chunks (256 KiB: about 5,000 tasks).
constexpr unsigned kSmallSlabsPerThread = 4;
// Free blocks a thread keeps per size class before it hands them to the depot, and how many it
// takes back from the depot at once.
constexpr std::size_t kCacheMax = 4096;
constexpr std::size_t kRefillBatch = 256;

struct FreeBlock {
  FreeBlock* next;
};

constexpr std::size_t class_of(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule - 1; }
constexpr std::size_t block_size(std::size_t cls) noexcept { return (cls + 1) * kGranule; }

// Free blocks of threads that have exited, and every slab ever carved (to keep them reachable).
struct Depot {
  std::mutex m;
  FreeBlock* lists[kClasses] = {};
  std::vector<void*> slabs;
};
Depot& depot() {
  static Depot* d = new Depot;  // leaked on purpose: tasks may be freed during static destruction
  return *d;
}

// Plain data, so it stays usable until the thread is gone, even after ThreadFlush ran: a task
// freed that late goes straight to the depot.
struct ThreadCache {
  FreeBlock* lists[kClasses];
  FreeBlock* tails[kClasses];  // the last block of each list (valid while it is not empty)
  std::size_t counts[kClasses];
  char* bump;       // carving position in the current slab
  char* bump_end;
  unsigned small_slabs;  // carved so far by this thread
  bool flushed;
};
[[gnu::tls_model("initial-exec")]] thread_local ThreadCache cache;

// Hands a thread's free blocks to the depot when the thread exits.
struct ThreadFlush {
  ~ThreadFlush() {
    Depot& d = depot();
    std::lock_guard<std::mutex> lk(d.m);
    for (std::size_t c = 0; c < kClasses; ++c) {
      if (FreeBlock* b = cache.lists[c]) {
        cache.tails[c]->next = d.lists[c];
        d.lists[c] = b;
        cache.lists[c] = nullptr;
        cache.counts[c] = 0;
      }
    }
    cache.flushed = true;
  }
};
thread_local ThreadFlush flush_on_exit;

// A kHugeBytes chunk aligned to kHugeBytes (so the kernel can back it with one huge page), or
// nullptr when the address space is exhausted (the caller falls back to a small slab). Mapped
// memory needs no list to stay reachable for valgrind, and is never unmapped.
char* map_huge_chunk() noexcept {
  void* p = ::mmap(nullptr, 2 * kHugeBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Keep the aligned kHugeBytes in the middle; give back the ends.
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t aligned = (start + kHugeBytes - 1) & ~(std::uintptr_t{kHugeBytes} - 1);
  if (aligned > start) ::munmap(p, aligned - start);
  const std::uintptr_t end = start + 2 * kHugeBytes, aligned_end = aligned + kHugeBytes;
  if (end > aligned_end) ::munmap(reinterpret_cast<void*>(aligned_end), end - aligned_end);
  auto* chunk = reinterpret_cast<char*>(aligned);
#ifdef MADV_HUGEPAGE
  (void)::madvise(chunk, kHugeBytes, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return chunk;
}

void* refill(std::size_t cls) {
  Depot& d = depot();
  {
    std::lock_guard<std::mutex> lk(d.m);
    if (FreeBlock* b = d.lists[cls]) {
      // Take a batch: the first block is returned, the rest become this thread's list.
      FreeBlock* last = b;
      std::size_t n = 1;
      while (n < kRefillBatch && last->next) {
        last = last->next;
        ++n;
      }
      d.lists[cls] = last->next;
      last->next = nullptr;
      cache.lists[cls] = b->next;
      cache.tails[cls] = last;
      cache.counts[cls] = n - 1;
      if (n > 1) (void)&flush_on_exit;
      return b;
    }
  }
  const std::size_t size = block_size(cls);
  if (cache.bump == nullptr || static_cast<std::size_t>(cache.bump_end - cache.bump) < size) {
    std::size_t bytes = kSlabBytes;
    char* slab = cache.small_slabs >= kSmallSlabsPerThread ? map_huge_chunk() : nullptr;
    if (slab) {
      bytes = kHugeBytes;
    } else {
      slab = static_cast<char*>(::operator new(kSlabBytes));
      ++cache.small_slabs;
      std::lock_guard<std::mutex> lk(d.m);
      try {
        d.slabs.push_back(slab);
      } catch (...) {
        ::operator delete(slab);
        throw;
      }
    }
    cache.bump = slab;
    cache.bump_end = slab + bytes;
    (void)&flush_on_exit;  // registers the flush for this thread
  }
  void* p = cache.bump;
  cache.bump += size;
  return p;
}

}  // namespace

// Under AddressSanitizer tasks come from the ordinary heap, so that ASan sees their lifetimes.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPooling = false;
#else
constexpr bool kPooling = true;
#endif
#else
constexpr bool kPooling = true;
#endif

void* TaskBase::operator new(std::size_t size) {
  if (!kPooling || size > kMaxPooled) return ::operator new(size);
  const std::size_t cls = class_of(size);
  if (FreeBlock* b = cache.lists[cls]) {
    cache.lists[cls] = b->next;
    --cache.counts[cls];
    return b;
  }
  return refill(cls);
}

void TaskBase::operator delete(void* p, std::size_t size) noexcept {
  if (!kPooling || size > kMaxPooled) {
    ::operator delete(p, size);
    return;
  }
  const std::size_t cls = class_of(size);
  auto* b = static_cast<FreeBlock*>(p);
  if (cache.flushed) {
    Depot& d = depot();
    std::lock_guard<std::mutex> lk(d.m);
    b->next = d.lists[cls];
    d.lists[cls] = b;
    return;
  }
  if (cache.lists[cls] == nullptr) {
    (void)&flush_on_exit;  // a thread that only frees flushes too
    cache.tails[cls] = b;
  } else if (cache.counts[cls] >= kCacheMax) {
    // Hand the whole list to the depot (one splice), keep only this block.
    Depot& d = depot();
    {
      std::lock_guard<std::mutex> lk(d.m);
      cache.tails[cls]->next = d.lists[cls];
      d.lists[cls] = cache.lists[cls];
    }
    cache.lists[cls] = nullptr;
    cache.counts[cls] = 0;
    cache.tails[cls] = b;
  }
  b->next = cache.lists[cls];
  cache.lists[cls] = b;
  ++cache.counts[cls];
}

}  // namespace fiberutils::detail

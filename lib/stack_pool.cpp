// SPDX-License-Identifier: Apache-2.0
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <new>
#include <unordered_map>

#include "fiberutils_config.hpp"
#if FIBERUTILS_VALGRIND
#include <valgrind/valgrind.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FIBERUTILS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBERUTILS_ASAN 1
#endif
#endif
#ifdef FIBERUTILS_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace fiberutils::detail {
namespace {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// VMAs left for everything that is not a guarded stack (libraries, heap arenas, unguarded
// stack mappings, the user's own mappings).
constexpr long kMapReserve = 8192;

long read_guard_budget() noexcept {
  long max_maps = 65530;
  std::ifstream f("/proc/sys/vm/max_map_count");
  f >> max_maps;
  return std::max(0L, (max_maps - kMapReserve) / 2);
}

std::atomic<long>& guard_budget() noexcept {
  static std::atomic<long> budget{read_guard_budget()};
  return budget;
}

// Free stacks a pool keeps once its threads go idle: enough for the next burst to start on warm
// stacks, few enough that an idle process keeps little resident. Beyond that, freed stacks are
// still kept while work goes on (unmapping one costs a TLB shootdown, and a burst's next task
// would fault in a fresh stack) and returned by trim_excess() when a thread has nothing to do.
constexpr std::size_t kKeptStacks = 1024;

struct Registry {
  std::mutex m;
  std::vector<StackPool*> pools;
};

// Leaked on purpose: see the header.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

#if FIBERUTILS_VALGRIND
// Valgrind's id of each stack handed out, by its top. Kept here, not in
// stack_context::valgrind_stack_id: that member exists only with BOOST_USE_VALGRIND, which would
// change stack_context's layout against Debian's libboost_fiber.so. Leaked like the registry.
struct ValgrindStacks {
  std::mutex m;
  std::unordered_map<void*, unsigned> ids;
};
ValgrindStacks& valgrind_stacks() {
  static ValgrindStacks* v = new ValgrindStacks;
  return *v;
}
#endif

}  // namespace

template <class F>
void StackPool::for_each(F f) {
  std::lock_guard<std::mutex> g(registry().m);
  for (StackPool* p : registry().pools) f(*p);
}

StackPool& StackPool::for_size(std::size_t bytes) {
  const std::size_t page = page_size();
  const std::size_t usable = std::max<std::size_t>((bytes + page - 1) / page * page, 4 * page);
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  for (StackPool* p : r.pools)
    if (p->usable_ == usable) return *p;
  r.pools.push_back(new StackPool(usable));
  return *r.pools.back();
}

StackPool::StackPool(std::size_t usable_bytes) : usable_(usable_bytes) {}

boost::context::stack_context StackPool::allocate() {
  const std::size_t page = page_size();
  Stack s{};
  bool reused = false;
  {
    std::lock_guard<std::mutex> g(m_);
    if (!free_.empty()) {
      s = free_.back();  // the most recently freed: its pages are the warmest
      free_.pop_back();
      free_count_.store(free_.size(), std::memory_order_relaxed);
      reused = true;
    }
  }
  if (!reused) {
    void* p = ::mmap(nullptr, usable_ + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    s.base = p;
    s.guarded = false;
    if (guard_budget().fetch_sub(1, std::memory_order_relaxed) > 0) {
      s.guarded = ::mprotect(p, page, PROT_NONE) == 0;
      if (!s.guarded) guard_budget().fetch_add(1, std::memory_order_relaxed);
    } else {
      guard_budget().fetch_add(1, std::memory_order_relaxed);
    }
  }
  {
    std::lock_guard<std::mutex> g(m_);
    if (!reused) {
      ++stats_.mapped;
      if (s.guarded) ++stats_.guarded; else unguarded_.insert(s.base);
    }
    stats_.peak_live = std::max(stats_.peak_live, ++stats_.live);
  }
#ifdef FIBERUTILS_ASAN
  // A fiber leaves its stack for good by a stack switch, not by returning: the redzones of the
  // frames it was in stay poisoned, and would be reported as overflows by the next fiber whose
  // frames land there.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(s.base) + page, usable_);
#endif
  boost::context::stack_context sctx;
  sctx.size = usable_;
  sctx.sp = static_cast<char*>(s.base) + page + usable_;
#if FIBERUTILS_VALGRIND
  {
    const unsigned id = VALGRIND_STACK_REGISTER(static_cast<char*>(sctx.sp) - usable_, sctx.sp);
    ValgrindStacks& vs = valgrind_stacks();
    std::lock_guard<std::mutex> g(vs.m);
    vs.ids[sctx.sp] = id;
  }
#endif
  return sctx;
}

void StackPool::deallocate(boost::context::stack_context& sctx) noexcept {
  const std::size_t page = page_size();
#if FIBERUTILS_VALGRIND
  {
    ValgrindStacks& vs = valgrind_stacks();
    std::lock_guard<std::mutex> g(vs.m);
    auto it = vs.ids.find(sctx.sp);
    if (it != vs.ids.end()) {
      VALGRIND_STACK_DEREGISTER(it->second);
      vs.ids.erase(it);
    }
  }
#endif
  void* base = static_cast<char*>(sctx.sp) - usable_ - page;
  std::lock_guard<std::mutex> g(m_);
  --stats_.live;
  const bool guarded = unguarded_.find(base) == unguarded_.end();
  try {
    free_.push_back(Stack{base, guarded});
    free_count_.store(free_.size(), std::memory_order_relaxed);
  } catch (...) {
    // No memory to remember it: give it back now.
    if (guarded) --stats_.guarded; else unguarded_.erase(base);
    unmap(Stack{base, guarded});
  }
}

bool StackPool::trim_excess(std::size_t max_unmaps) noexcept {
  // A stale count only moves a trim to the next idle turn.
  if (free_count_.load(std::memory_order_relaxed) <= kKeptStacks) return false;
  std::vector<Stack> victims;
  {
    std::lock_guard<std::mutex> g(m_);
    if (free_.size() <= kKeptStacks) return false;
    // The oldest entries are the coldest.
    const std::size_t n = std::min(max_unmaps, free_.size() - kKeptStacks);
    try {
      victims.assign(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(n));
    } catch (...) {
      return false;
    }
    free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(n));
    free_count_.store(free_.size(), std::memory_order_relaxed);
    for (const Stack& s : victims) {
      if (s.guarded) --stats_.guarded; else unguarded_.erase(s.base);
    }
  }
  for (const Stack& s : victims) unmap(s);
  std::lock_guard<std::mutex> g(m_);
  return free_.size() > kKeptStacks;
}

void StackPool::unmap(const Stack& s) noexcept {
  ::munmap(s.base, usable_ + page_size());
  if (s.guarded) guard_budget().fetch_add(1, std::memory_order_relaxed);
}

StackStats StackPool::stats() const {
  std::lock_guard<std::mutex> g(m_);
  StackStats s = stats_;
  s.cached = free_.size();
  return s;
}

void StackPool::reset_peak() {
  std::lock_guard<std::mutex> g(m_);
  stats_.peak_live = stats_.live;
}

}  // namespace fiberutils::detail

namespace fiberutils {

StackStats stack_stats() noexcept {
  StackStats sum;
  detail::StackPool::for_each([&](const detail::StackPool& p) {
    StackStats s = p.stats();
    sum.live += s.live;
    sum.peak_live += s.peak_live;
    sum.mapped += s.mapped;
    sum.guarded += s.guarded;
    sum.cached += s.cached;
  });
  return sum;
}

void reset_stack_peak() noexcept {
  detail::StackPool::for_each([](detail::StackPool& p) { p.reset_peak(); });
}

}  // namespace fiberutils

// SPDX-License-Identifier: Apache-2.0
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <new>

#include "fiberutils_config.hpp"
#if FIBERUTILS_VALGRIND
#include <valgrind/valgrind.h>
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

// Free stacks kept per pool: enough to absorb bursts without unmapping, small enough that an
// idle process does not keep much resident.
constexpr std::size_t kMaxCachedStacks = 1024;

struct Registry {
  std::mutex m;
  std::vector<StackPool*> pools;
};

// Leaked on purpose: see the header.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

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
      s = free_.back();
      free_.pop_back();
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
  boost::context::stack_context sctx;
  sctx.size = usable_;
  sctx.sp = static_cast<char*>(s.base) + page + usable_;
#if FIBERUTILS_VALGRIND
  sctx.valgrind_stack_id = VALGRIND_STACK_REGISTER(sctx.sp, static_cast<char*>(sctx.sp) - usable_);
#endif
  return sctx;
}

void StackPool::deallocate(boost::context::stack_context& sctx) noexcept {
  const std::size_t page = page_size();
#if FIBERUTILS_VALGRIND
  VALGRIND_STACK_DEREGISTER(sctx.valgrind_stack_id);
#endif
  void* base = static_cast<char*>(sctx.sp) - usable_ - page;
  Stack s{base, false};
  bool unmap_it = false;
  {
    std::lock_guard<std::mutex> g(m_);
    --stats_.live;
    s.guarded = unguarded_.find(base) == unguarded_.end();
    if (free_.size() < kMaxCachedStacks) {
      free_.push_back(s);
    } else {
      unmap_it = true;
      if (s.guarded) --stats_.guarded; else unguarded_.erase(base);
    }
  }
  if (unmap_it) unmap(s);
}

void StackPool::unmap(const Stack& s) noexcept {
  ::munmap(s.base, usable_ + page_size());
  if (s.guarded) guard_budget().fetch_add(1, std::memory_order_relaxed);
}

StackStats StackPool::stats() const {
  std::lock_guard<std::mutex> g(m_);
  return stats_;
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
  });
  return sum;
}

void reset_stack_peak() noexcept {
  detail::StackPool::for_each([](detail::StackPool& p) { p.reset_peak(); });
}

}  // namespace fiberutils

// SPDX-License-Identifier: Apache-2.0
//
// Private: fiber stacks for runners. One pool per stack size, process-wide and never destroyed:
// Boost.Fiber frees terminated fibers lazily, possibly after the thread's thread_locals are gone,
// so the allocator a fiber holds must outlive every thread.
//
// - Stacks are mmap'ed with MAP_NORESERVE: a stack costs only the pages a task touches.
// - A guard page (PROT_NONE) sits under each stack while the process-wide guard budget lasts.
//   Each guarded stack splits its mapping into two VMAs, and Linux refuses mprotect past
//   vm.max_map_count (65530 by default), so the budget is half of it less a reserve for the
//   rest of the program. Past the budget stacks are handed out unguarded rather than failing.
// - Freed stacks are kept on a free list held outside the stacks (writing a link into a free
//   stack would touch a page of it) and reused most-recent-first, while their pages are warm.
//   A burst's surplus is unmapped only when a thread goes idle (trim_excess), a few at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>
#include <unordered_set>
#include <vector>

#include <boost/context/stack_context.hpp>

#include <fiberutils/stack_stats.hpp>

namespace fiberutils::detail {


class StackPool {
 public:
  static StackPool& for_size(std::size_t bytes);
  // Calls f(pool) for every pool created so far.
  template <class F>
  static void for_each(F f);

  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& sctx) noexcept;
  StackStats stats() const;
  // Unmaps up to `max_unmaps` of the free stacks beyond the ones kept warm; true while more
  // remain. Called by runners when their thread has nothing to do (lib/executor.cpp).
  bool trim_excess(std::size_t max_unmaps) noexcept;
  void reset_peak();

 private:
  explicit StackPool(std::size_t usable_bytes);
  struct Stack {
    void* base;     // lowest mapped address (the guard page when guarded)
    bool guarded;
  };
  void unmap(const Stack& s) noexcept;

  const std::size_t usable_;   // bytes a task can use
  mutable std::mutex m_;
  std::deque<Stack> free_;   // back: most recently freed
  // free_.size(), written under m_ and read without it by trim_excess: a runner whose lane goes
  // idle asks on every idle turn (each join in a loop), and nearly always there is nothing to do.
  std::atomic<std::size_t> free_count_{0};
  // Stacks handed out without a guard page: few (only past the budget), so a set is cheap.
  std::unordered_set<void*> unguarded_;
  StackStats stats_;
};

// The StackAllocator handed to boost::fibers::fiber: a pointer to its pool.
class PooledStackAllocator {
 public:
  explicit PooledStackAllocator(StackPool& pool) noexcept : pool_(&pool) {}
  boost::context::stack_context allocate() { return pool_->allocate(); }
  void deallocate(boost::context::stack_context& sctx) noexcept { pool_->deallocate(sctx); }

 private:
  StackPool* pool_;
};

}  // namespace fiberutils::detail

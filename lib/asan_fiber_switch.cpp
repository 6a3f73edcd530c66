// SPDX-License-Identifier: Apache-2.0
//
// AddressSanitizer builds only (meson's b_sanitize includes `address`; lib/meson.build adds this
// file then): tells ASan about every fiber stack switch.
//
// Why: Boost.Context switches stacks in its assembly `jump_fcontext` / `ontop_fcontext`. Only a
// Boost.Context built with `context-impl=ucontext` and BOOST_USE_ASAN announces those switches to
// ASan (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber); Debian's is the fcontext
// build without it, and so is libboost_fiber.so, which makes most switches itself. Unannounced,
// ASan believes every fiber runs on the thread's own stack: at each `throw` it refuses to unpoison
// the stack ("ignoring requested __asan_handle_no_return", google/sanitizers#189), and the frames
// unwound that way stay poisoned, so a later frame at the same address is reported as a
// stack-buffer-overflow that never happened.
//
// How: this library defines the three fcontext functions itself. Every caller, libboost_fiber.so
// included, reaches them through the PLT, and the dynamic linker binds them to the first definition
// in load order, which is this library's, since it is linked ahead of libboost_context.so (in a
// static build they are in the program itself). Each wrapper announces the switch and calls
// Boost's own function (dlsym RTLD_NEXT).
//
// ASan must be told the bounds of the stack being switched to. An fcontext_t is the stack pointer
// of a suspended context, valid for exactly one resume; `suspended()` maps each one to its stack's
// bounds: known from make_fcontext for a new context, and for a context that switched away from
// the bounds ASan hands back when the switch is finished on the other side.
#include <dlfcn.h>
#include <sanitizer/common_interface_defs.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include <boost/context/detail/fcontext.hpp>

using boost::context::detail::fcontext_t;
using boost::context::detail::transfer_t;

namespace {

using EntryFn = void (*)(transfer_t);
using OntopFn = transfer_t (*)(transfer_t);

struct Suspended {
  const void* bottom;
  std::size_t size;
  EntryFn entry;  // a context never run yet: the function it starts in; else null
};

struct Registry {
  std::mutex m;
  std::unordered_map<fcontext_t, Suspended> suspended;
};

// Leaked on purpose: fibers still switch while thread_locals and statics are destroyed.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

// What a switch carries to the other side, which runs on the same thread right after it.
thread_local EntryFn t_entry = nullptr;  // the real entry of the context being started
thread_local OntopFn t_ontop = nullptr;  // the real function ontop_fcontext runs there
// Set when the switch was already finished on the other side (by ontop_trampoline), so the
// context's own wrapper, which resumes next, does not finish it twice.
thread_local bool t_finished = false;

template <class F>
F real(const char* name) {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (!f) {
    std::fprintf(stderr, "fiberutils asan_fiber_switch: %s not found after this library\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

void remember(fcontext_t fctx, const void* bottom, std::size_t size, EntryFn entry) {
  if (!fctx) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  r.suspended[fctx] = Suspended{bottom, size, entry};
}

Suspended take(fcontext_t fctx) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  auto it = r.suspended.find(fctx);
  if (it == r.suspended.end()) {
    std::fprintf(stderr, "fiberutils asan_fiber_switch: switch to an unknown context %p\n", fctx);
    std::abort();
  }
  Suspended s = it->second;
  r.suspended.erase(it);
  return s;
}

// Called on the stack just switched to: completes the switch and remembers where the context
// that was left (`from`) lives.
void finish_switch(void* fake_stack, fcontext_t from) {
  const void* old_bottom = nullptr;
  std::size_t old_size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &old_bottom, &old_size);
  remember(from, old_bottom, old_size, nullptr);
}

// The first code a new context runs.
void entry_trampoline(transfer_t t) {
  EntryFn entry = t_entry;
  t_entry = nullptr;
  if (t_finished) {
    t_finished = false;
  } else {
    finish_switch(nullptr, t.fctx);
  }
  entry(t);  // Boost's fiber_entry: never returns, it leaves by ontop_fcontext
}

// Runs on top of the context switched to by ontop_fcontext, before Boost's function.
transfer_t ontop_trampoline(transfer_t t) {
  OntopFn fn = t_ontop;
  t_ontop = nullptr;
  finish_switch(nullptr, t.fctx);
  t_finished = true;  // the context resumed next must not finish this switch again
  return fn(t);
}

// Announces a switch to `to`; returns the real entry of `to` when it has never run.
EntryFn start_switch(void** fake_stack_save, fcontext_t to) {
  Suspended s = take(to);
  __sanitizer_start_switch_fiber(fake_stack_save, s.bottom, s.size);
  return s.entry;
}

// Back on our own stack after a switch made by jump or ontop.
transfer_t resumed(void* fake_stack, transfer_t t) {
  if (t_finished) {
    t_finished = false;  // ontop_trampoline finished it and remembered the context it came from
  } else {
    finish_switch(fake_stack, t.fctx);
  }
  return t;
}

}  // namespace

// Defined in Boost's own namespace and types, so that a call through a pointer to Boost's entry
// functions has exactly their type (UBSan's -fsanitize=function checks it).
namespace boost::context::detail {
extern "C" {

fcontext_t make_fcontext(void* sp, std::size_t size, EntryFn fn) {
  static const auto real_make = real<fcontext_t (*)(void*, std::size_t, EntryFn)>("make_fcontext");
  fcontext_t fctx = real_make(sp, size, &entry_trampoline);
  remember(fctx, static_cast<char*>(sp) - size, size, fn);
  return fctx;
}

transfer_t jump_fcontext(fcontext_t const to, void* vp) {
  static const auto real_jump = real<transfer_t (*)(fcontext_t, void*)>("jump_fcontext");
  void* fake_stack = nullptr;
  t_entry = start_switch(&fake_stack, to);
  return resumed(fake_stack, real_jump(to, vp));
}

transfer_t ontop_fcontext(fcontext_t const to, void* vp, OntopFn fn) {
  static const auto real_ontop =
      real<transfer_t (*)(fcontext_t, void*, OntopFn)>("ontop_fcontext");
  void* fake_stack = nullptr;
  t_entry = start_switch(&fake_stack, to);
  t_ontop = fn;
  return resumed(fake_stack, real_ontop(to, vp, &ontop_trampoline));
}

}  // extern "C"
}  // namespace boost::context::detail

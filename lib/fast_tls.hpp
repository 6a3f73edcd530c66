// SPDX-License-Identifier: Apache-2.0
//
// Internal: FIBERUTILS_FAST_TLS marks a thread_local of ours that a hot path reads (spawn, park,
// the fiber-state lookup). It selects the initial-exec TLS model: one %fs-relative load, where
// the default model in a shared library calls __tls_get_addr (~11 instructions, and a call) on
// each access. fiberutils is linked, not dlopen()ed, in the ordinary case; a dlopen() still
// works while glibc's static TLS surplus (over 1 KiB) has room for these few words. Only
// trivially constructed and destroyed variables: no guard or destructor registration runs.
#pragma once

#define FIBERUTILS_FAST_TLS [[gnu::tls_model("initial-exec")]]

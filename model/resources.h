// Resource guards: a run that would need more memory than this machine has is refused up front,
// with the estimate, instead of growing until the kernel kills it.
#pragma once

#include <cstdint>
#include <string>

namespace engramsim::resources {

// This machine's memory (/proc/meminfo's MemTotal); 0 when it cannot be read.
uint64_t total_memory_bytes();

// Bytes this process may still allocate: the smaller of /proc/meminfo's MemAvailable and the
// headroom under its cgroup's memory.max (cgroup v2). 0 when neither can be read (no guard).
uint64_t available_memory_bytes();

// Throws config::ConfigError "WHERE: needs about N GB in memory (WHAT), more than the M GB this
// machine has available" when `bytes` exceeds available_memory_bytes().
void require_memory(double bytes, const std::string& where, const std::string& what);

}  // namespace engramsim::resources

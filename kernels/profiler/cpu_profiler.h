// Profiles of the CPU reference kernels (kernels/cpu/): what `engramsim profile` measures on a
// machine without a GPU. Each sample is one call timed with std::chrono::steady_clock, after a
// write of a 64 MiB buffer that evicts the call's data from the private caches.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kernels/profiler/profile.h"

namespace engramsim::profiler {

struct ProfileOptions {
    std::vector<std::string> kernels;  // names from kernel_names(); empty = all
    int samples = 30;                  // timed calls per shape (after one warm-up call)
};

// Throws std::invalid_argument for an unknown kernel name, listing the known ones, or
// samples < 1.
void validate(const ProfileOptions& options);

// One KernelProfile per kernel (and per storage type for the gather); progress lines to `log`.
std::vector<KernelProfile> profile_cpu(const ProfileOptions& options, std::ostream& log);

}  // namespace engramsim::profiler

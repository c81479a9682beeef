// Engram N-gram hashing on the GPU: the same row ids as NgramHasher::hash_layer (traces/), one
// thread per token. Plain C++ interface so callers build without nvcc.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "traces/ngram_hash.h"

namespace engramsim::cuda {

// True when a CUDA device can be used; otherwise `why` says what is missing (no driver, no
// device, ...).
bool device_available(std::string* why);

// Row ids of one Engram layer for a whole sequence (positions before it read the pad id);
// `out` holds ids.size() * heads_per_layer() entries. Throws std::runtime_error on CUDA errors.
void hash_layer(const NgramHasher& hasher, size_t layer_index, std::span<const uint32_t> ids,
                std::span<uint32_t> out);

}  // namespace engramsim::cuda

#include "kernels/cuda/engram_hash_cuda.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <vector>

namespace engramsim::cuda {

namespace {

constexpr int kMaxNgram = 8;
constexpr int kMaxHeads = 64;  // keeps the kernel arguments well under 4 KiB

struct LayerArgs {
    uint64_t multipliers[kMaxNgram];
    FastMod mods[kMaxHeads];
    int max_ngram;
    int heads_per_ngram;
    uint32_t pad_id;
};

// One thread per token: read the N-1 previous ids (pad before the start), build the mixes and
// reduce them by every head's prime.
__global__ void hash_kernel(const uint32_t* __restrict__ ids, size_t n_tokens, LayerArgs args,
                            uint32_t* __restrict__ out) {
    const size_t t = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= n_tokens) return;
    const int heads_per_layer = (args.max_ngram - 1) * args.heads_per_ngram;
    uint32_t* dst = out + t * size_t(heads_per_layer);
    uint64_t mix = uint64_t(ids[t]) * args.multipliers[0];
    for (int n = 2; n <= args.max_ngram; ++n) {
        const uint64_t x = t >= size_t(n - 1) ? ids[t - (n - 1)] : args.pad_id;
        mix ^= x * args.multipliers[n - 1];
        for (int h = 0; h < args.heads_per_ngram; ++h)
            *dst++ = static_cast<uint32_t>(args.mods[(n - 2) * args.heads_per_ngram + h].mod(mix));
    }
}

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

}  // namespace

bool device_available(std::string* why) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        if (why) *why = std::string("no usable CUDA driver or device: ") + cudaGetErrorString(err);
        return false;
    }
    if (count == 0) {
        if (why) *why = "no CUDA device";
        return false;
    }
    return true;
}

void hash_layer(const NgramHasher& hasher, size_t layer_index, std::span<const uint32_t> ids,
                std::span<uint32_t> out) {
    const LayerHashParams& p = hasher.layers().at(layer_index);
    if (out.size() != ids.size() * size_t(hasher.heads_per_layer()))
        throw std::invalid_argument("hash_layer: output size must be tokens x heads per layer");
    if (p.mods.size() > size_t(kMaxHeads)) throw std::invalid_argument("too many heads");
    LayerArgs args{};
    for (size_t k = 0; k < p.multipliers.size(); ++k) args.multipliers[k] = p.multipliers[k];
    for (size_t h = 0; h < p.mods.size(); ++h) args.mods[h] = p.mods[h];
    args.max_ngram = hasher.max_ngram_size();
    args.heads_per_ngram = int(p.mods.size()) / (hasher.max_ngram_size() - 1);
    args.pad_id = hasher.pad_id();
    if (ids.empty()) return;

    uint32_t* d_ids = nullptr;
    uint32_t* d_out = nullptr;
    check(cudaMalloc(&d_ids, ids.size_bytes()), "malloc");
    check(cudaMalloc(&d_out, out.size_bytes()), "malloc");
    check(cudaMemcpy(d_ids, ids.data(), ids.size_bytes(), cudaMemcpyHostToDevice), "copy in");
    const int block = 256;
    const auto grid = static_cast<unsigned>((ids.size() + block - 1) / block);
    hash_kernel<<<grid, block>>>(d_ids, ids.size(), args, d_out);
    check(cudaGetLastError(), "launch");
    check(cudaMemcpy(out.data(), d_out, out.size_bytes(), cudaMemcpyDeviceToHost), "copy out");
    cudaFree(d_ids);
    cudaFree(d_out);
}

}  // namespace engramsim::cuda

#include "kernels/cuda/engram_hash_cuda.h"
#include "kernels/cuda/engram_kernels_cuda.h"

#include <cuda_runtime.h>

#include <stdexcept>

#include "kernels/cuda/nvtx_range.h"
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

// All layers in one launch: thread (t, layer) reads its layer's parameters from a device array.
__global__ void hash_all_layers_kernel(const uint32_t* __restrict__ ids, size_t n_tokens,
                                       const LayerArgs* __restrict__ layers, int n_layers,
                                       uint32_t* __restrict__ out) {
    const size_t t = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const int layer = int(blockIdx.y);
    if (t >= n_tokens || layer >= n_layers) return;
    const LayerArgs& args = layers[layer];
    const int heads_per_layer = (args.max_ngram - 1) * args.heads_per_ngram;
    uint32_t* dst = out + (size_t(layer) * n_tokens + t) * size_t(heads_per_layer);
    uint64_t mix = uint64_t(ids[t]) * args.multipliers[0];
    for (int n = 2; n <= args.max_ngram; ++n) {
        const uint64_t x = t >= size_t(n - 1) ? ids[t - (n - 1)] : args.pad_id;
        mix ^= x * args.multipliers[n - 1];
        for (int h = 0; h < args.heads_per_ngram; ++h)
            *dst++ = static_cast<uint32_t>(args.mods[(n - 2) * args.heads_per_ngram + h].mod(mix));
    }
}

LayerArgs layer_args(const NgramHasher& hasher, size_t layer_index) {
    const LayerHashParams& p = hasher.layers().at(layer_index);
    if (p.mods.size() > size_t(kMaxHeads)) throw std::invalid_argument("too many heads");
    if (hasher.max_ngram_size() > kMaxNgram) throw std::invalid_argument("N-gram order above 8");
    LayerArgs args{};
    for (size_t k = 0; k < p.multipliers.size(); ++k) args.multipliers[k] = p.multipliers[k];
    for (size_t h = 0; h < p.mods.size(); ++h) args.mods[h] = p.mods[h];
    args.max_ngram = hasher.max_ngram_size();
    args.heads_per_ngram = int(p.mods.size()) / (hasher.max_ngram_size() - 1);
    args.pad_id = hasher.pad_id();
    return args;
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
    NvtxRange nvtx("hash_layer");
    if (out.size() != ids.size() * size_t(hasher.heads_per_layer()))
        throw std::invalid_argument("hash_layer: output size must be tokens x heads per layer");
    const LayerArgs args = layer_args(hasher, layer_index);
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

DeviceHashParams::DeviceHashParams(const NgramHasher& hasher)
    : layers_(int(hasher.layers().size())),
      heads_per_layer_(hasher.heads_per_layer()),
      max_ngram_(hasher.max_ngram_size()),
      pad_id_(hasher.pad_id()) {
    std::vector<LayerArgs> args;
    for (size_t l = 0; l < hasher.layers().size(); ++l) args.push_back(layer_args(hasher, l));
    check(cudaMalloc(&device_, args.size() * sizeof(LayerArgs)), "malloc");
    check(cudaMemcpy(device_, args.data(), args.size() * sizeof(LayerArgs),
                     cudaMemcpyHostToDevice),
          "copy in");
}

DeviceHashParams::~DeviceHashParams() {
    if (device_) cudaFree(device_);
}

void hash_all_layers(const DeviceHashParams& params, const uint32_t* d_ids, size_t tokens,
                     uint32_t* d_out, cudaStream_t stream) {
    NvtxRange nvtx("hash_all_layers");
    if (tokens == 0 || params.layers() == 0) return;
    const int block = 256;
    const dim3 grid(static_cast<unsigned>((tokens + block - 1) / block),
                    static_cast<unsigned>(params.layers()));
    hash_all_layers_kernel<<<grid, block, 0, stream>>>(
        d_ids, tokens, static_cast<const LayerArgs*>(params.device()), params.layers(), d_out);
    check(cudaGetLastError(), "hash_all_layers launch");
}

}  // namespace engramsim::cuda

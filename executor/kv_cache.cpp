#include "executor/kv_cache.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace engramsim::executor {

namespace {

void require_positive(int64_t v, const char* name) {
    if (v <= 0)
        throw std::invalid_argument(std::string("KV cache shape: ") + name + " = " +
                                    std::to_string(v) + ", must be positive");
}

}  // namespace

size_t KvShape::bytes() const { return size_t(num_blocks) * block_floats() * sizeof(float); }

void KvShape::validate() const {
    require_positive(layers, "layers");
    require_positive(n_kv_heads, "n_kv_heads");
    require_positive(head_dim, "head_dim");
    require_positive(block_size, "block_size");
    require_positive(num_blocks, "num_blocks");
    const double floats = double(num_blocks) * double(block_floats());
    if (floats * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 2)
        throw std::invalid_argument("KV cache shape: the pool does not fit in memory");
}

PagedKvCache::PagedKvCache(const KvShape& shape) : shape_(shape) {
    shape_.validate();
    pool_ = kernels::HugePageBuffer(shape_.bytes());
    // Pushed in reverse, so blocks are handed out 0, 1, 2, ... from a fresh pool.
    free_.reserve(size_t(shape_.num_blocks));
    for (int64_t b = shape_.num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

void PagedKvCache::reserve(uint32_t req, uint32_t tokens) {
    const size_t needed = (size_t(tokens) + size_t(shape_.block_size) - 1) / size_t(shape_.block_size);
    auto it = tables_.find(req);
    const size_t held = it == tables_.end() ? 0 : it->second.size();
    if (needed <= held) return;
    if (needed - held > free_.size())
        throw std::runtime_error("KV cache: out of blocks for request " + std::to_string(req) +
                                 ": " + std::to_string(tokens) + " positions need " +
                                 std::to_string(needed - held) + " more blocks (it holds " +
                                 std::to_string(held) + "), " + std::to_string(free_.size()) +
                                 " of " + std::to_string(shape_.num_blocks) + " are free");
    std::vector<int64_t>& table = it == tables_.end() ? tables_[req] : it->second;
    while (table.size() < needed) {
        table.push_back(free_.back());
        free_.pop_back();
    }
}

void PagedKvCache::release(uint32_t req) {
    auto it = tables_.find(req);
    if (it == tables_.end()) return;
    // Last block first, so the request's first block is the next one handed out.
    for (auto b = it->second.rbegin(); b != it->second.rend(); ++b) free_.push_back(*b);
    tables_.erase(it);
}

uint32_t PagedKvCache::capacity(uint32_t req) const {
    return uint32_t(blocks(req).size() * size_t(shape_.block_size));
}

std::span<const int64_t> PagedKvCache::blocks(uint32_t req) const {
    auto it = tables_.find(req);
    if (it == tables_.end()) return {};
    return it->second;
}

float* PagedKvCache::row(int layer, uint32_t req, uint32_t pos, int kv) {
    if (layer < 0 || layer >= shape_.layers)
        throw std::out_of_range("KV cache: layer " + std::to_string(layer) + " of " +
                                std::to_string(shape_.layers));
    const std::span<const int64_t> table = blocks(req);
    const size_t bs = size_t(shape_.block_size);
    if (size_t(pos) >= table.size() * bs)
        throw std::out_of_range("KV cache: position " + std::to_string(pos) + " of request " +
                                std::to_string(req) + " beyond its " +
                                std::to_string(table.size() * bs) + " reserved positions");
    return block_rows(table[pos / bs], layer, kv) + size_t(pos % bs) * shape_.row_floats();
}

}  // namespace engramsim::executor

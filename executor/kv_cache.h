// The executor's paged KV cache (nano-vLLM's block manager, without prefix sharing): one pool of
// fixed-size blocks for all layers, handed to requests from a free list as their sequences grow
// and returned whole when they finish or are preempted. Each request has a block table; position
// p of a request lives in block table[p / block_size] at row p % block_size.
//
// Pool layout, float32: pool[block][layer][K|V][pos_in_block][kv_head][head_dim]. One block's
// keys of one layer are block_size rows of n_kv_heads * head_dim values back to back, so a
// decode step streams a request's keys (then values) block by block, each head's row a
// contiguous head_dim run; a block holds every layer, so one allocation serves the whole model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/host_memory.h"

namespace engramsim::executor {

struct KvShape {
    int layers = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    int block_size = 256;     // tokens per block (nano-vLLM's kv_block_size)
    int64_t num_blocks = 0;   // blocks in the pool
    // The pool: num_blocks * block_size * layers * 2 (K and V) * n_kv_heads * head_dim * 4.
    size_t bytes() const;
    size_t row_floats() const { return size_t(n_kv_heads) * size_t(head_dim); }  // one position
    size_t block_floats() const { return size_t(layers) * 2 * size_t(block_size) * row_floats(); }
    // Throws std::invalid_argument naming the first field that is not positive.
    void validate() const;
};

class PagedKvCache {
public:
    // Allocates the pool (zeroed, on huge pages where the system gives them); throws
    // std::invalid_argument on a bad shape.
    explicit PagedKvCache(const KvShape& shape);
    const KvShape& shape() const { return shape_; }

    // Grows request `req`'s block table so it holds positions [0, tokens). Throws
    // std::runtime_error("KV cache: out of blocks ...") naming the request and the counts when
    // the pool has too few free blocks; the table is then left as it was.
    void reserve(uint32_t req, uint32_t tokens);
    // Frees every block of `req` (finished or preempted); a request holding nothing is a no-op.
    void release(uint32_t req);
    int64_t free_blocks() const { return int64_t(free_.size()); }
    // Positions reserved for req: its blocks times block_size (0 if none).
    uint32_t capacity(uint32_t req) const;
    // The block ids of req's table, in position order (empty if none).
    std::span<const int64_t> blocks(uint32_t req) const;

    // The n_kv_heads * head_dim values of position `pos` of `req` at `layer`. Throws
    // std::out_of_range unless layer < layers and pos < capacity(req).
    float* key(int layer, uint32_t req, uint32_t pos) { return row(layer, req, pos, 0); }
    float* value(int layer, uint32_t req, uint32_t pos) { return row(layer, req, pos, 1); }
    const float* key(int layer, uint32_t req, uint32_t pos) const {
        return const_cast<PagedKvCache*>(this)->row(layer, req, pos, 0);
    }
    const float* value(int layer, uint32_t req, uint32_t pos) const {
        return const_cast<PagedKvCache*>(this)->row(layer, req, pos, 1);
    }

    // Row 0 of block `block`'s keys (kv = 0) or values (kv = 1) at `layer`: block_size rows of
    // row_floats() values. Unchecked, for the attention loops.
    float* block_rows(int64_t block, int layer, int kv) {
        return pool() + size_t(block) * shape_.block_floats() +
               (size_t(layer) * 2 + size_t(kv)) * size_t(shape_.block_size) * shape_.row_floats();
    }
    const float* block_rows(int64_t block, int layer, int kv) const {
        return const_cast<PagedKvCache*>(this)->block_rows(block, layer, kv);
    }

private:
    float* pool() const { return reinterpret_cast<float*>(pool_.data()); }
    float* row(int layer, uint32_t req, uint32_t pos, int kv);

    KvShape shape_;
    kernels::HugePageBuffer pool_;
    std::vector<int64_t> free_;  // a stack: the next block handed out is free_.back()
    std::unordered_map<uint32_t, std::vector<int64_t>> tables_;
};

}  // namespace engramsim::executor

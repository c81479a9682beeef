// Helpers shared by the policy implementations (not part of the public API).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sim/placement/cache_policy.h"

namespace engramsim::placement::detail {

// Reads a policy's options; finish() rejects the keys nobody asked for, naming the known ones.
class OptionReader {
public:
    OptionReader(std::string policy, const std::map<std::string, std::string>& options)
        : policy_(std::move(policy)), options_(options) {}

    uint64_t integer(const std::string& key, uint64_t def, uint64_t min = 0,
                     uint64_t max = UINT64_MAX);
    double fraction(const std::string& key, double def);  // in [0, 1]
    std::string choice(const std::string& key, const std::vector<std::string>& choices);
    void finish() const;

private:
    const std::string* find(const std::string& key);
    std::string policy_;
    const std::map<std::string, std::string>& options_;
    std::vector<std::string> known_;
};

// Rows a policy can ever hold: its capacity, but no more than the rows that exist.
inline uint64_t usable_capacity(const PolicyContext& ctx) {
    return std::min<uint64_t>(ctx.capacity_rows, ctx.universe);
}

// Option lookahead=W (needs next-use times): a row requested again within the current step or
// the next W steps (steps from PolicyContext::step_first; without steps every request is one) is
// needed, and eviction passes over it. Each policy that takes the option says what it evicts when
// every resident row is needed: the victim its plain rule picks, as LRU's lookahead does.
class Lookahead {
public:
    // Reads the option (so it is listed among the policy's known options); returns whether it
    // was given. Call before OptionReader::finish().
    bool configure(const std::string& policy, OptionReader& opt, const PolicyContext& ctx) {
        const uint64_t w = opt.integer("lookahead", UINT64_MAX, 0, UINT32_MAX - 1);
        if (w == UINT64_MAX) return false;
        if (ctx.next_use.empty())
            throw PolicyError("policy " + policy +
                              ": lookahead needs next-use times (HBM tier only)");
        window_ = w;
        next_use_ = ctx.next_use;
        step_first_ = ctx.step_first;
        next_.assign(ctx.universe, kNever);
        return true;
    }
    // The request at position t is for `id`: remember its next use.
    void note(uint32_t id, uint32_t t) { next_[id] = next_use_[t]; }
    // First position after the window of the request at t (t never decreases between calls).
    uint64_t window_end(uint32_t t) {
        if (step_first_.empty()) return uint64_t(t) + window_ + 1;
        while (step_ + 1 < step_first_.size() && step_first_[step_ + 1] <= t) ++step_;
        const uint64_t last = step_ + window_ + 1;
        return last < step_first_.size() ? step_first_[last] : UINT64_MAX;
    }
    // Whether `id` is requested again before `end` (as of its last request).
    bool needed(uint32_t id, uint64_t end) const { return next_[id] != kNever && next_[id] < end; }

private:
    uint64_t window_ = 0;
    size_t step_ = 0;
    std::span<const uint32_t> next_use_;
    std::span<const uint64_t> step_first_;
    std::vector<uint32_t> next_;  // next use of each row, as of its last request
};

// A binary min-heap of dense ids keyed by a uint64, with a position index so any member can be
// re-keyed or removed in O(log n). Keys live in the heap entries, so sifting compares adjacent
// memory instead of chasing per-row arrays.
class KeyedHeap {
public:
    explicit KeyedHeap(uint32_t universe) : pos_(universe, kNoRow) {}

    bool contains(uint32_t id) const { return pos_[id] != kNoRow; }
    size_t size() const { return heap_.size(); }
    uint32_t top() const { return heap_.front().id; }
    uint64_t top_key() const { return heap_.front().key; }
    uint64_t key_of(uint32_t id) const { return heap_[pos_[id]].key; }
    // The entry at heap index i (children of i: 2i+1, 2i+2), for searches that prune by key.
    uint64_t key_at(size_t i) const { return heap_[i].key; }
    uint32_t id_at(size_t i) const { return heap_[i].id; }

    void push(uint32_t id, uint64_t key) {
        heap_.push_back({key, id});
        up(heap_.size() - 1);
    }
    void update(uint32_t id, uint64_t key) {
        const size_t i = pos_[id];
        const uint64_t old = heap_[i].key;
        heap_[i].key = key;
        if (key < old)
            up(i);
        else
            down(i);
    }
    void remove(uint32_t id) {
        const size_t i = pos_[id];
        const Entry last = heap_.back();
        heap_.pop_back();
        pos_[id] = kNoRow;
        if (last.id == id) return;
        heap_[i] = last;
        pos_[last.id] = uint32_t(i);
        if (i > 0 && last.key < heap_[(i - 1) / 2].key)
            up(i);
        else
            down(i);
    }

private:
    struct Entry {
        uint64_t key;
        uint32_t id;
    };
    void up(size_t i) {
        const Entry e = heap_[i];
        while (i > 0) {
            const size_t parent = (i - 1) / 2;
            if (!(e.key < heap_[parent].key)) break;
            heap_[i] = heap_[parent];
            pos_[heap_[i].id] = uint32_t(i);
            i = parent;
        }
        heap_[i] = e;
        pos_[e.id] = uint32_t(i);
    }
    void down(size_t i) {
        const Entry e = heap_[i];
        const size_t n = heap_.size();
        while (true) {
            size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && heap_[child + 1].key < heap_[child].key) ++child;
            if (!(heap_[child].key < e.key)) break;
            heap_[i] = heap_[child];
            pos_[heap_[i].id] = uint32_t(i);
            i = child;
        }
        heap_[i] = e;
        pos_[e.id] = uint32_t(i);
    }

    std::vector<Entry> heap_;
    std::vector<uint32_t> pos_;
};

// 64-bit finalizer of MurmurHash3 (as FBGEMM's cache_slot hashing uses).
inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

}  // namespace engramsim::placement::detail

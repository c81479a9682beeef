#include "sim/placement/remap.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <utility>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {

namespace {

constexpr size_t kSlice = size_t(1) << 16;  // requests handed to a consumer at a time

// fn(t) for t in [0, threads), each on its own thread (the caller's is 0); the first exception
// thrown is rethrown once all have finished.
template <class Fn>
void on_threads(unsigned threads, Fn&& fn) {
    std::exception_ptr error;
    std::mutex mu;
    auto guarded = [&](unsigned t) {
        try {
            fn(t);
        } catch (...) {
            std::lock_guard lock(mu);
            if (!error) error = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    try {
        for (unsigned t = 1; t < threads; ++t) pool.emplace_back(guarded, t);
    } catch (...) {
        for (auto& th : pool) th.join();
        throw;
    }
    guarded(0);
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

// An array of n trivially-copyable T that nothing zeroes (every element is written before it is
// read), its pages mapped writable in one call: a page fault per page costs more.
template <class T>
std::unique_ptr<T[]> uninitialized(uint64_t n) {
    std::unique_ptr<T[]> p(new T[n]);
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096, at = reinterpret_cast<uintptr_t>(p.get());
    const uintptr_t b = (at + page - 1) & ~(page - 1), e = (at + n * sizeof(T)) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#endif
    return p;
}

// One partition's keys at a time, numbered in order of first sight: open addressing over
// buckets of one cache line (5 keys), probed bucket by bucket. Sized for `keys` keys at most 80%
// full (the partition's requests, were every one a new key, but no more than twice a partition's
// share: a hot key's partition holds millions of requests and few keys), doubling when it fills.
// A key is kept as its hash (fmix64 is a bijection: equal hashes are equal keys, and every 64-bit
// key has a place). A bucket belongs to the current partition when it carries its generation:
// the table is never cleared between partitions.
class PartitionTable {
public:
    struct Bucket {
        uint64_t hash[5];
        uint32_t local[5];
        uint32_t stamp;  // generation << 3 | slots used
    };
    static_assert(sizeof(Bucket) == 64);

    // Starts a partition of about `keys` keys.
    void start(uint64_t keys) {
        nb_ = std::max<uint64_t>(8, keys / 4 + 1);
        if (nb_ > buckets_.size()) buckets_.assign(nb_, Bucket{});  // stamps 0: generation 0
        ++gen_;
        size_ = 0;
    }
    uint32_t size() const { return size_; }
    void prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[home(hash)], 1); }

    // The local id of the key with this hash, numbering it size() when new.
    uint32_t insert(uint64_t hash) {
        for (uint64_t b = home(hash);; b = b + 1 == nb_ ? 0 : b + 1) {
            Bucket& x = buckets_[b];
            const uint32_t used = (x.stamp >> 3) == gen_ ? (x.stamp & 7) : 0;
            unsigned match = 0;  // all five compared, then one branch: no mispredicted loop exit
            for (unsigned j = 0; j < 5; ++j) match |= unsigned(x.hash[j] == hash) << j;
            match &= (1u << used) - 1;
            if (match) return x.local[std::countr_zero(match)];
            if (used < 5) {
                x.hash[used] = hash;
                x.local[used] = size_;
                x.stamp = gen_ << 3 | (used + 1);
                if (uint64_t(size_) + 1 > 4 * nb_) grow();
                return size_++;
            }
        }
    }

private:
    // The hash's low 32 bits, scaled onto the buckets: bits the partition (the top ones) does
    // not constrain, so a partition crowded with keys still spreads them.
    uint64_t home(uint64_t hash) const { return ((hash & 0xffffffffu) * nb_) >> 32; }

    // Twice the buckets, the partition's keys placed again (a new generation).
    void grow() {
        std::vector<Bucket> old(buckets_.begin(), buckets_.begin() + std::ptrdiff_t(nb_));
        const uint32_t old_gen = gen_++;
        nb_ *= 2;
        if (nb_ > buckets_.size()) buckets_.assign(nb_, Bucket{});
        for (const Bucket& from : old) {
            if ((from.stamp >> 3) != old_gen) continue;
            for (uint32_t j = 0; j < (from.stamp & 7); ++j)
                for (uint64_t b = home(from.hash[j]);; b = b + 1 == nb_ ? 0 : b + 1) {
                    Bucket& x = buckets_[b];
                    const uint32_t used = (x.stamp >> 3) == gen_ ? (x.stamp & 7) : 0;
                    if (used < 5) {
                        x.hash[used] = from.hash[j];
                        x.local[used] = from.local[j];
                        x.stamp = gen_ << 3 | (used + 1);
                        break;
                    }
                }
        }
    }

    std::vector<Bucket> buckets_;
    uint64_t nb_ = 0;
    uint32_t gen_ = 0;  // < 2^29: one per partition and growth
    uint32_t size_ = 0;
};

}  // namespace

uint64_t NumberedKeys::total_distinct() const {
    uint64_t total = 0;
    for (uint32_t d : distinct) total += d;
    return total;
}

namespace {
// Ids local * partitions + partition: keys first seen about together get ids near each other
// (each partition gives local ids at about the same pace), as in order of first sight.
uint64_t interleaved_universe(const NumberedKeys& k) {
    const uint32_t most = k.distinct.empty() ? 0 : *std::max_element(k.distinct.begin(), k.distinct.end());
    return uint64_t(most) * k.partitions;
}
}  // namespace

std::vector<uint64_t> NumberedKeys::local_starts() const {
    std::vector<uint64_t> at(partitions);
    for (unsigned p = 0; p < partitions; ++p) at[p] = 2 * start[p];
    return at;
}

uint64_t NumberedKeys::numbered_universe() const {
    // Interleaved ids leave a few unused where partitions hold about as many keys each; where
    // one holds far more (keys crowded into it) they would leave most unused: ids by offset.
    const uint64_t interleaved = interleaved_universe(*this), total = total_distinct();
    return interleaved < UINT32_MAX && interleaved <= total + total / 4 + 4096 ? interleaved : total;
}

NumberedKeys number_keys(std::span<const uint64_t> ids, unsigned threads, unsigned partitions) {
    const uint64_t n = ids.size();
    if (n > UINT32_MAX - 1) throw std::length_error("more than 4,294,967,294 requests in one replay");
    if (threads == 0) threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    threads = unsigned(std::clamp<uint64_t>(n >> 16, 1, threads));
    // 256 partitions (about 30,000 requests each on a trace of 7.7M: a 600 KiB table), fewer
    // for a short sequence, where 256 would each hold a handful.
    if (partitions == 0) partitions = unsigned(std::clamp<uint64_t>(std::bit_ceil(n >> 12), 1, 256));
    partitions = std::bit_floor(std::clamp(partitions, 1u, 256u));
    const int bits = std::countr_zero(partitions);
    auto partition_of = [bits](uint64_t hash) { return bits ? unsigned(hash >> (64 - bits)) : 0u; };
    auto range = [&](unsigned t) { return std::pair(n * t / threads, n * (t + 1) / threads); };

    NumberedKeys out;
    out.requests = n;
    out.partitions = partitions;
    out.tag = uninitialized<uint8_t>(n);
    out.distinct.assign(partitions, 0);
    out.cursor.assign(threads, std::vector<uint64_t>(partitions, 0));
    out.seen.assign(threads, std::vector<uint32_t>(partitions, 0));
    uint8_t* tag = out.tag.get();

    // 1. Tags, and each thread's requests per partition.
    std::vector<std::vector<uint64_t>> at(threads, std::vector<uint64_t>(partitions, 0));
    on_threads(threads, [&](unsigned t) {
        uint64_t* count = at[t].data();
        const auto [from, to] = range(t);
        for (uint64_t pos = from; pos < to; ++pos) {
            const unsigned p = partition_of(detail::fmix64(ids[pos]));
            tag[pos] = uint8_t(p);
            ++count[p];
        }
    });
    // Counts to places: thread t's requests of partition p go from at[t][p] on.
    out.start.assign(partitions + 1, 0);
    for (unsigned p = 0; p < partitions; ++p) {
        uint64_t place = out.start[p];
        for (unsigned t = 0; t < threads; ++t) place += std::exchange(at[t][p], place);
        out.start[p + 1] = place;
    }

    // 2. The hashes, grouped by partition, each partition's in request order.
    std::unique_ptr<uint64_t[]> hashes = uninitialized<uint64_t>(n);
    on_threads(threads, [&](unsigned t) {
        std::vector<uint64_t> next = at[t];
        const auto [from, to] = range(t);
        for (uint64_t pos = from; pos < to; ++pos) hashes[next[tag[pos]]++] = detail::fmix64(ids[pos]);
    });

    // 3. Each partition numbers its keys; the threads take partitions as they come. A local id
    //    is written over its partition's hashes already read: partition p's ids are the uint32s
    //    from 2 * start[p] on, the front half of its hashes' bytes (id i lies at or before hash
    //    i), so no second array is paged in.
    auto* local = reinterpret_cast<aliased_u32*>(hashes.get());
    std::atomic<unsigned> next_partition{0};
    on_threads(threads, [&](unsigned) {
        PartitionTable table;
        for (unsigned p; (p = next_partition.fetch_add(1)) < partitions;) {
            const uint64_t b = out.start[p], e = out.start[p + 1];
            table.start(std::min(e - b, 2 * n / partitions + 64));
            // Where each range of requests (step 1's) starts in this partition: its first local
            // id's place, and the keys the partition numbered before it.
            unsigned r = 0;
            auto mark = [&](uint64_t i) {
                for (; r < threads && at[r][p] == i; ++r) {
                    out.cursor[r][p] = b + i;
                    out.seen[r][p] = table.size();
                }
            };
            constexpr uint64_t kAhead = 8;
            for (uint64_t i = b; i < e; ++i) {
                mark(i);
                if (i + kAhead < e) table.prefetch(hashes[i + kAhead]);
                const uint32_t l = table.insert(hashes[i]);
                local[b + i] = l;
            }
            mark(e);
            out.distinct[p] = table.size();
        }
    });
    out.local.reset(hashes.release());
    for (unsigned t = 0; t <= threads; ++t) out.range_start.push_back(n * t / threads);
    return out;
}

void each_numbered_id(const NumberedKeys& numbered,
                      const std::function<void(std::span<const uint32_t>, uint64_t)>& each) {
    const uint64_t n = numbered.requests;
    const unsigned parts = numbered.partitions;
    std::vector<uint64_t> cur = numbered.local_starts();
    const aliased_u32* local = numbered.local_ids();
    const uint8_t* tag = numbered.tag.get();
    const bool interleaved = numbered.numbered_universe() == interleaved_universe(numbered);
    std::vector<uint32_t> offset(parts, 0);
    for (unsigned p = 1; p < parts; ++p) offset[p] = offset[p - 1] + numbered.distinct[p - 1];
    auto fill = [&](uint64_t at, size_t count, uint32_t* slice) {
        if (interleaved)
            for (size_t i = 0; i < count; ++i) {
                const unsigned p = tag[at + i];
                slice[i] = local[cur[p]++] * parts + p;
            }
        else
            for (size_t i = 0; i < count; ++i) {
                const unsigned p = tag[at + i];
                slice[i] = offset[p] + local[cur[p]++];
            }
    };
    const uint64_t slices = (n + kSlice - 1) / kSlice;
    auto count_of = [&](uint64_t k) { return size_t(std::min<uint64_t>(kSlice, n - k * kSlice)); };
    if (slices < 2) {
        std::vector<uint32_t> slice(static_cast<size_t>(n));
        fill(0, size_t(n), slice.data());
        if (n) each(std::span<const uint32_t>(slice), 0);
        return;
    }
    // A second thread reads the ids into a ring of slices while this one hands them on, so that
    // the consumer's work and the reading overlap.
    constexpr uint64_t kSlots = 4;
    std::vector<uint32_t> ring(kSlots * kSlice);
    std::atomic<uint64_t> filled{0}, taken{0};  // slices filled, slices handed on
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        for (uint64_t k = 0; k < slices; ++k) {
            for (uint64_t t = taken.load(std::memory_order_acquire); k >= t + kSlots;
                 t = taken.load(std::memory_order_acquire))
                taken.wait(t);
            if (stop.load()) return;
            fill(k * kSlice, count_of(k), &ring[(k % kSlots) * kSlice]);
            filled.store(k + 1, std::memory_order_release);
            filled.notify_one();
        }
    });
    try {
        for (uint64_t k = 0; k < slices; ++k) {
            for (uint64_t f = filled.load(std::memory_order_acquire); f <= k;
                 f = filled.load(std::memory_order_acquire))
                filled.wait(f);
            each(std::span<const uint32_t>(&ring[(k % kSlots) * kSlice], count_of(k)), k * kSlice);
            taken.store(k + 1, std::memory_order_release);
            taken.notify_one();
        }
    } catch (...) {
        stop = true;
        taken.store(slices + kSlots);  // wakes the reader, which stops
        taken.notify_one();
        reader.join();
        throw;
    }
    reader.join();
}

void first_sight_ids(std::span<const uint64_t> ids, const NumberedKeys& numbered,
                     std::vector<uint64_t>& keys, std::vector<uint32_t>& requests) {
    const uint64_t n = numbered.requests;
    const unsigned parts = numbered.partitions;
    // Partition p's local id l has global id global[offset[p] + l], given at its first sight.
    std::vector<uint64_t> offset(parts + 1, 0);
    for (unsigned p = 0; p < parts; ++p) offset[p + 1] = offset[p] + numbered.distinct[p];
    const std::unique_ptr<uint32_t[]> global(new uint32_t[offset[parts]]);
    keys.clear();
    keys.reserve(size_t(offset[parts]));
    requests.clear();
    requests.reserve(size_t(n));
    std::vector<uint64_t> cur = numbered.local_starts();
    const aliased_u32* local = numbered.local_ids();
    std::vector<uint32_t> seen(parts, 0);
    for (uint64_t pos = 0; pos < n; ++pos) {
        const unsigned p = numbered.tag[pos];
        const uint32_t l = local[cur[p]++];
        uint32_t& g = global[offset[p] + l];
        if (l == seen[p]) {  // local ids are given in order of first sight
            ++seen[p];
            g = uint32_t(keys.size());
            keys.push_back(ids[pos]);
        }
        requests.push_back(g);
    }
}

void grouped_ids(std::span<const uint64_t> ids, const NumberedKeys& numbered,
                 std::vector<uint64_t>& keys, std::vector<uint32_t>& requests) {
    const unsigned parts = numbered.partitions;
    std::vector<uint32_t> offset(parts, 0);
    for (unsigned p = 1; p < parts; ++p) offset[p] = offset[p - 1] + numbered.distinct[p - 1];
    keys.assign(size_t(numbered.total_distinct()), 0);
    requests.assign(size_t(numbered.requests), 0);
    const aliased_u32* local = numbered.local_ids();
    // The ranges numbering took, each on its own thread from the cursors it left.
    const unsigned ranges = unsigned(numbered.range_start.size() - 1);
    on_threads(ranges, [&](unsigned t) {
        std::vector<uint64_t> cur = numbered.cursor[t];
        std::vector<uint32_t> seen = numbered.seen[t];
        for (uint64_t pos = numbered.range_start[t]; pos < numbered.range_start[t + 1]; ++pos) {
            const unsigned p = numbered.tag[pos];
            const uint32_t l = local[cur[p]++];
            if (l == seen[p]) {  // first sight: the key's place is offset[p] + l
                ++seen[p];
                keys[offset[p] + l] = ids[pos];
            }
            requests[pos] = offset[p] + l;
        }
    });
}

void remap_keys(std::span<const uint64_t> ids, std::vector<uint64_t>& keys,
                std::vector<uint32_t>& requests, unsigned threads, unsigned partitions) {
    first_sight_ids(ids, number_keys(ids, threads, partitions), keys, requests);
}

}  // namespace engramsim::placement

#include "sim/placement/mrc.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace engramsim::placement {

std::vector<MrcPoint> StackDistances::curve(std::span<const uint64_t> capacities) const {
    // misses_above[c] = requests with distance > c, from a suffix sum over the histogram.
    std::vector<uint64_t> above(histogram.size() + 1, 0);
    for (size_t d = histogram.size(); d-- > 0;)
        above[d] = above[d + 1] + (d + 1 < histogram.size() ? histogram[d + 1] : 0);
    std::vector<MrcPoint> out;
    for (uint64_t c : capacities) {
        const uint64_t beyond = c < histogram.size() ? above[c] : 0;
        out.push_back({c, requests, cold + beyond});
    }
    return out;
}

namespace {

// Sum of counts[0, j) for j in [0, 64], counts being one 64-byte cache line.
inline uint32_t sum_bytes_before(const uint8_t* counts, size_t j) {
#if defined(__SSE2__)
    const __m128i limit = _mm_set1_epi8(char(j));
    const __m128i zero = _mm_setzero_si128();
    __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i step = _mm_set1_epi8(16);
    __m128i acc = zero;
    for (int c = 0; c < 4; ++c) {
        const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(counts + 16 * c));
        const __m128i keep = _mm_cmplt_epi8(idx, limit);
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_and_si128(v, keep), zero));
        idx = _mm_add_epi8(idx, step);
    }
    return uint32_t(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
#else
    uint32_t s = 0;
    for (size_t i = 0; i < j; ++i) s += counts[i];
    return s;
#endif
}

// One pass over `requests`, calling record(d) with the stack distance d >= 1 of every request
// that is not the row's first; returns the number of first (cold) requests.
template <class Record>
uint64_t stack_distance_pass(std::span<const uint32_t> requests, uint32_t universe,
                             Record&& record) {
    uint64_t cold = 0;
    // Positions live in [0, size); a row's mark sits at its latest position. The rank of a
    // position (marks at or before it) comes from three levels: bits of 64-position words, a
    // byte count per word (64 words = one cache line, summed with SIMD), and a Fenwick tree
    // over those 4096-position superblocks (small enough to stay in L1). Counts cover closed
    // words only (below next's word): the open word joins them when it fills, so setting a mark
    // costs nothing but a bit. When positions run out the live marks (one per row seen) are
    // renumbered 0..live-1 in order.
    const size_t supers = std::max<size_t>(1, (2 * size_t(universe) + 4095) / 4096);
    const size_t words = supers * 64, size = words * 64;
    std::vector<uint64_t> bits(words, 0);
    struct alignas(64) Line {
        uint8_t c[64];
    };
    std::vector<Line> lines(supers, Line{});  // byte count of each closed word
    uint8_t* wcount = lines.front().c;
    std::vector<uint32_t> tree(supers + 1, 0);  // Fenwick over superblocks, 1-based
    // position -> row marked there (if still live); written before it is read
    const auto at = std::make_unique_for_overwrite<uint32_t[]>(size);
    std::vector<uint32_t> last(universe, kNoRow);
    uint32_t live = 0;
    size_t next = 0;
    auto add = [&](size_t sb, uint32_t delta) {
        for (size_t i = sb + 1; i <= supers; i += i & (~i + 1)) tree[i] += delta;
    };
    auto before_super = [&](size_t sb) {  // marks in closed words of superblocks [0, sb)
        uint32_t s = 0;
        for (size_t i = sb; i > 0; i &= i - 1) s += tree[i];
        return s;
    };
    auto compact = [&]() {
        size_t k = 0;
        for (size_t p = 0; p < next; ++p) {
            if (!(bits[p / 64] >> (p % 64) & 1)) continue;
            const uint32_t id = at[p];
            at[k] = id;
            last[id] = uint32_t(k);
            ++k;
        }
        next = k;
        std::fill(bits.begin(), bits.end(), 0);
        for (size_t p = 0; p < k; ++p) bits[p / 64] |= uint64_t(1) << (p % 64);
        std::fill(wcount, wcount + words, 0);
        std::fill(tree.begin(), tree.end(), 0);
        for (size_t w = 0; w < k / 64; ++w) wcount[w] = 64;  // closed words are full
        for (size_t i = 1; i <= supers; ++i) {               // linear-time Fenwick build
            const size_t first = (i - 1) * 64, closed = k / 64;
            if (first < closed) tree[i] += uint32_t(std::min<size_t>(64, closed - first) * 64);
            const size_t parent = i + (i & (~i + 1));
            if (parent <= supers) tree[parent] += tree[i];
        }
    };
    const size_t n = requests.size();
    constexpr size_t kAhead = 32;
    for (size_t i = 0; i < n; ++i) {
        if (i + kAhead < n) __builtin_prefetch(&last[requests[i + kAhead]]);
        if (i + kAhead / 2 < n) {
            const uint32_t q = last[requests[i + kAhead / 2]];
            if (q != kNoRow) {
                __builtin_prefetch(&bits[q / 64], 1);
                __builtin_prefetch(&wcount[q / 4096 * 64], 1);
            }
        }
        if (next == size) compact();
        const uint32_t id = requests[i];
        const uint32_t p = last[id];
        const size_t open = next / 64;
        if (p == kNoRow) {
            ++cold;
            ++live;
        } else {
            const size_t w = p / 64, sb = w / 64;
            const uint64_t below = bits[w] & ((uint64_t(2) << (p % 64)) - 1);  // marks <= p
            const uint32_t rank = before_super(sb) + sum_bytes_before(wcount + sb * 64, w % 64) +
                                  uint32_t(std::popcount(below));
            record(live - rank + 1);
            bits[w] &= ~(uint64_t(1) << (p % 64));
            if (w != open) {
                --wcount[w];
                add(sb, uint32_t(-1));
            }
        }
        last[id] = uint32_t(next);
        at[next] = id;
        bits[open] |= uint64_t(1) << (next % 64);
        ++next;
        if (next % 64 == 0) {
            const uint32_t c = uint32_t(std::popcount(bits[open]));
            wcount[open] = uint8_t(c);
            add(open / 64, c);
        }
    }
    return cold;
}

}  // namespace

StackDistances lru_stack_distances(std::span<const uint32_t> requests, uint32_t universe) {
    StackDistances out;
    out.requests = requests.size();
    std::vector<uint32_t> hist(size_t(universe) + 1, 0);  // requests < 2^32: counts fit
    out.cold = stack_distance_pass(requests, universe, [&](uint32_t d) { ++hist[d]; });
    out.histogram.assign(hist.begin(), hist.end());
    return out;
}

std::vector<MrcPoint> lru_mrc(std::span<const uint32_t> requests, uint32_t universe,
                              std::span<const uint64_t> capacities) {
    // Distinct capacities, ascending; a request of distance d misses in every cache smaller than
    // d: bucket[i] counts requests with sorted[i - 1] < d <= sorted[i] (a miss below sorted[i], a
    // hit from it on), bucket[sorted.size()] those beyond the largest size.
    std::vector<uint64_t> sorted(capacities.begin(), capacities.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    const uint32_t n_sizes = uint32_t(sorted.size());
    // The bracket of d comes from a table over d >> shift (at most 2^16 cells, so it stays in
    // L1/L2): cell c holds the first bracket whose size reaches the cell's smallest distance, and
    // a short scan moves past the sizes inside the cell (none, for sizes wider apart than a
    // cell). Distances beyond the largest size land in the last bucket without the table.
    const uint64_t top = sorted.empty() ? 0 : std::min<uint64_t>(sorted.back(), universe);
    const int shift = std::max(0, int(std::bit_width(top)) - 16);
    std::vector<uint32_t> cell((top >> shift) + 1);
    for (uint64_t c = 0, i = 0; c < cell.size(); ++c) {
        while (i < n_sizes && sorted[i] < (c << shift)) ++i;
        cell[c] = uint32_t(i);
    }
    std::vector<uint64_t> bounds(sorted);
    bounds.push_back(UINT64_MAX);  // a sentinel: the scan stops at the last bucket
    std::vector<uint64_t> bucket(n_sizes + 1, 0);
    const uint64_t* bound = bounds.data();
    const uint32_t* cells = cell.data();
    const uint64_t cold = stack_distance_pass(requests, universe, [&](uint32_t d) {
        if (d > top) {
            ++bucket[n_sizes];
            return;
        }
        uint32_t i = cells[d >> shift];
        while (bound[i] < d) ++i;
        ++bucket[i];
    });
    // misses at sorted[i] = cold + requests with d > sorted[i] = cold + buckets after i
    std::vector<uint64_t> after(n_sizes + 1, 0);
    for (size_t i = n_sizes; i-- > 0;) after[i] = after[i + 1] + bucket[i + 1];
    std::vector<MrcPoint> out;
    for (uint64_t c : capacities) {
        const size_t i = size_t(std::lower_bound(sorted.begin(), sorted.end(), c) - sorted.begin());
        out.push_back({c, requests.size(), cold + after[i]});
    }
    return out;
}

std::vector<MrcPoint> policy_mrc(const std::string& policy, const PolicyContext& ctx,
                                 std::span<const uint32_t> requests,
                                 std::span<const uint64_t> capacities, unsigned threads) {
    policy_info(policy);  // unknown names fail before any thread starts
    std::vector<MrcPoint> out(capacities.size());
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<unsigned>(threads, unsigned(std::max<size_t>(1, capacities.size())));
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&]() {
        while (true) {
            const size_t i = next.fetch_add(1);
            if (i >= capacities.size()) return;
            try {
                PolicyContext c = ctx;
                c.capacity_rows = capacities[i];
                auto p = make_policy(policy, c);
                out[i] = {capacities[i], requests.size(), p->run(requests, 0)};
            } catch (...) {
                std::lock_guard lock(error_mutex);
                if (!error) error = std::current_exception();
                next = capacities.size();
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned k = 1; k < threads; ++k) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    return out;
}

}  // namespace engramsim::placement

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

// LRU stack distances over requests handed over a slice at a time: feed() calls record(d) with
// the stack distance d >= 1 of every request that is not the row's first, and counts the first
// (cold) ones.
class StackPass {
public:
    // Positions live in [0, size); a row's mark sits at its latest position. The rank of a
    // position (marks at or before it) comes from three levels: bits of 64-position words, a
    // byte count per word (64 words = one cache line, summed with SIMD), and a Fenwick tree
    // over those 4096-position superblocks (small enough to stay in L1). Counts cover closed
    // words only (below next's word): the open word joins them when it fills, so setting a mark
    // costs nothing but a bit. When positions run out the live marks (one per row seen) are
    // renumbered 0..live-1 in order.
    explicit StackPass(uint32_t universe)
        : supers_(std::max<size_t>(1, (2 * size_t(universe) + 4095) / 4096)),
          words_(supers_ * 64),
          size_(words_ * 64),
          bits_(words_, 0),
          lines_(supers_, Line{}),
          wcount_(lines_.front().c),
          tree_(supers_ + 1, 0),
          at_(std::make_unique_for_overwrite<uint32_t[]>(size_)),
          last_(universe, kNoRow) {}

    uint64_t cold() const { return cold_; }

    template <class Record>
    void feed(std::span<const uint32_t> requests, Record&& record) {
        const size_t n = requests.size();
        // A row's mark is a DRAM and TLB miss away: far ahead (32: 125 ms, 64: 113 in bench_replay)
        constexpr size_t kAhead = 64;
        for (size_t i = 0; i < n; ++i) {
            if (i + kAhead < n) __builtin_prefetch(&last_[requests[i + kAhead]]);
            if (i + kAhead / 2 < n) {
                const uint32_t q = last_[requests[i + kAhead / 2]];
                if (q != kNoRow) {
                    __builtin_prefetch(&bits_[q / 64], 1);
                    __builtin_prefetch(&wcount_[q / 4096 * 64], 1);
                }
            }
            if (next_ == size_) compact();
            const uint32_t id = requests[i];
            const uint32_t p = last_[id];
            const size_t open = next_ / 64;
            if (p == kNoRow) {
                ++cold_;
                ++live_;
            } else {
                const size_t w = p / 64, sb = w / 64;
                const uint64_t below = bits_[w] & ((uint64_t(2) << (p % 64)) - 1);  // marks <= p
                const uint32_t rank = before_super(sb) +
                                      sum_bytes_before(wcount_ + sb * 64, w % 64) +
                                      uint32_t(std::popcount(below));
                record(live_ - rank + 1);
                bits_[w] &= ~(uint64_t(1) << (p % 64));
                if (w != open) {
                    --wcount_[w];
                    add(sb, uint32_t(-1));
                }
            }
            last_[id] = uint32_t(next_);
            at_[next_] = id;
            bits_[open] |= uint64_t(1) << (next_ % 64);
            ++next_;
            if (next_ % 64 == 0) {
                const uint32_t c = uint32_t(std::popcount(bits_[open]));
                wcount_[open] = uint8_t(c);
                add(open / 64, c);
            }
        }
    }

private:
    struct alignas(64) Line {
        uint8_t c[64];
    };
    void add(size_t sb, uint32_t delta) {
        for (size_t i = sb + 1; i <= supers_; i += i & (~i + 1)) tree_[i] += delta;
    }
    uint32_t before_super(size_t sb) const {  // marks in closed words of superblocks [0, sb)
        uint32_t s = 0;
        for (size_t i = sb; i > 0; i &= i - 1) s += tree_[i];
        return s;
    }
    void compact() {
        size_t k = 0;
        for (size_t p = 0; p < next_; ++p) {
            if (!(bits_[p / 64] >> (p % 64) & 1)) continue;
            const uint32_t id = at_[p];
            at_[k] = id;
            last_[id] = uint32_t(k);
            ++k;
        }
        next_ = k;
        std::fill(bits_.begin(), bits_.end(), 0);
        for (size_t p = 0; p < k; ++p) bits_[p / 64] |= uint64_t(1) << (p % 64);
        std::fill(wcount_, wcount_ + words_, 0);
        std::fill(tree_.begin(), tree_.end(), 0);
        for (size_t w = 0; w < k / 64; ++w) wcount_[w] = 64;  // closed words are full
        for (size_t i = 1; i <= supers_; ++i) {                // linear-time Fenwick build
            const size_t first = (i - 1) * 64, closed = k / 64;
            if (first < closed) tree_[i] += uint32_t(std::min<size_t>(64, closed - first) * 64);
            const size_t parent = i + (i & (~i + 1));
            if (parent <= supers_) tree_[parent] += tree_[i];
        }
    }

    size_t supers_, words_, size_;
    std::vector<uint64_t> bits_;
    std::vector<Line> lines_;  // byte count of each closed word
    uint8_t* wcount_;
    std::vector<uint32_t> tree_;  // Fenwick over superblocks, 1-based
    // position -> row marked there (if still live); written before it is read
    std::unique_ptr<uint32_t[]> at_;
    std::vector<uint32_t> last_;
    uint32_t live_ = 0;
    size_t next_ = 0;
    uint64_t cold_ = 0;
};

}  // namespace

StackDistances lru_stack_distances(std::span<const uint32_t> requests, uint32_t universe) {
    StackDistances out;
    out.requests = requests.size();
    std::vector<uint32_t> hist(size_t(universe) + 1, 0);  // requests < 2^32: counts fit
    StackPass pass(universe);
    pass.feed(requests, [&](uint32_t d) { ++hist[d]; });
    out.cold = pass.cold();
    out.histogram.assign(hist.begin(), hist.end());
    return out;
}

struct LruCurve::State {
    StackPass pass;
    std::vector<uint64_t> capacities, sorted, bounds, bucket;
    std::vector<uint32_t> cell;
    uint64_t top = 0, requests = 0;
    int shift = 0;
    explicit State(uint32_t universe) : pass(universe) {}
};

LruCurve::LruCurve(uint32_t universe, std::span<const uint64_t> capacities)
    : s_(std::make_unique<State>(universe)) {
    State& s = *s_;
    s.capacities.assign(capacities.begin(), capacities.end());
    // Distinct capacities, ascending; a request of distance d misses in every cache smaller than
    // d: bucket[i] counts requests with sorted[i - 1] < d <= sorted[i] (a miss below sorted[i], a
    // hit from it on), bucket[sorted.size()] those beyond the largest size.
    s.sorted = s.capacities;
    std::sort(s.sorted.begin(), s.sorted.end());
    s.sorted.erase(std::unique(s.sorted.begin(), s.sorted.end()), s.sorted.end());
    const size_t n_sizes = s.sorted.size();
    // The bracket of d comes from a table over d >> shift (at most 2^16 cells, so it stays in
    // L1/L2): cell c holds the first bracket whose size reaches the cell's smallest distance, and
    // a short scan moves past the sizes inside the cell (none, for sizes wider apart than a
    // cell). Distances beyond the largest size land in the last bucket without the table.
    s.top = s.sorted.empty() ? 0 : std::min<uint64_t>(s.sorted.back(), universe);
    s.shift = std::max(0, int(std::bit_width(s.top)) - 16);
    s.cell.resize((s.top >> s.shift) + 1);
    for (uint64_t c = 0, i = 0; c < s.cell.size(); ++c) {
        while (i < n_sizes && s.sorted[i] < (c << s.shift)) ++i;
        s.cell[c] = uint32_t(i);
    }
    s.bounds = s.sorted;
    s.bounds.push_back(UINT64_MAX);  // a sentinel: the scan stops at the last bucket
    s.bucket.assign(n_sizes + 1, 0);
}

LruCurve::~LruCurve() = default;

void LruCurve::add(std::span<const uint32_t> requests) {
    State& s = *s_;
    s.requests += requests.size();
    const uint64_t* bound = s.bounds.data();
    const uint32_t* cells = s.cell.data();
    uint64_t* bucket = s.bucket.data();
    const uint64_t top = s.top, beyond = s.sorted.size();
    const int shift = s.shift;
    s.pass.feed(requests, [&](uint32_t d) {
        if (d > top) {
            ++bucket[beyond];
            return;
        }
        uint32_t i = cells[d >> shift];
        while (bound[i] < d) ++i;
        ++bucket[i];
    });
}

std::vector<MrcPoint> LruCurve::points() const {
    const State& s = *s_;
    const size_t n_sizes = s.sorted.size();
    // misses at sorted[i] = cold + requests with d > sorted[i] = cold + buckets after i
    std::vector<uint64_t> after(n_sizes + 1, 0);
    for (size_t i = n_sizes; i-- > 0;) after[i] = after[i + 1] + s.bucket[i + 1];
    std::vector<MrcPoint> out;
    for (uint64_t c : s.capacities) {
        const size_t i = size_t(std::lower_bound(s.sorted.begin(), s.sorted.end(), c) - s.sorted.begin());
        out.push_back({c, s.requests, s.pass.cold() + after[i]});
    }
    return out;
}

std::vector<MrcPoint> lru_mrc(std::span<const uint32_t> requests, uint32_t universe,
                              std::span<const uint64_t> capacities) {
    LruCurve curve(universe, capacities);
    curve.add(requests);
    return curve.points();
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

#include "kernels/cpu/host_fetch.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "kernels/cpu/engram_kernels.h"
#include "traces/splitmix64.h"

namespace engramsim::kernels {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Uniform in [0, n) (Lemire's multiply-shift; the tiny bias is irrelevant to timing).
uint64_t below(uint64_t& state, uint64_t n) {
    state = splitmix64(state);
    return uint64_t((unsigned __int128)state * n >> 64);
}

// A one-head view of the whole table, so the reference gather kernel reads physical rows.
struct WholeTable {
    uint64_t offset[1] = {0};
    uint64_t rows[1];
    TableView view;
    explicit WholeTable(const HostTable& t) : rows{t.rows()} {
        view.rows = t.data();
        view.total_rows = t.rows();
        view.dtype = Dtype::bf16;
        view.row_values = int(t.row_bytes() / 2);
        view.head_offsets = offset;
        view.head_rows = rows;
    }
};

}  // namespace

uint8_t host_table_byte(uint64_t row, size_t byte) {
    return uint8_t(splitmix64(row * 0x100000001b3ull + byte / 8) >> (8 * (byte % 8)));
}

// ---- HostTable ----------------------------------------------------------------------------

HostTable::HostTable(uint64_t table_bytes, size_t row_bytes) : row_bytes_(row_bytes) {
    if (row_bytes == 0 || row_bytes % 2 != 0)
        throw std::invalid_argument("host table: row bytes must be a positive even number");
    rows_ = table_bytes / row_bytes;
    if (rows_ == 0)
        throw std::invalid_argument("host table: " + std::to_string(table_bytes) +
                                    " bytes hold no row of " + std::to_string(row_bytes) + " bytes");
    if (rows_ > uint64_t(UINT32_MAX))
        throw std::invalid_argument("host table: more than 2^32 - 1 rows");
    buf_ = HugePageBuffer(size_t(rows_ * row_bytes));
    fill();
}

void HostTable::fill() {
    uint8_t* p = buf_.data();
    for (uint64_t r = 0; r < rows_; ++r)
        for (size_t b = 0; b < row_bytes_; b += 8) {  // one mix per 8 bytes
            const uint64_t word = splitmix64(r * 0x100000001b3ull + b / 8);
            for (size_t k = 0; k < 8 && b + k < row_bytes_; ++k) *p++ = uint8_t(word >> (8 * k));
        }
}

// ---- ThreadTeam ---------------------------------------------------------------------------

ThreadTeam::ThreadTeam(int threads, bool sleep_to_join) : sleep_to_join_(sleep_to_join) {
    if (threads < 1) throw std::invalid_argument("thread team: at least 1 thread");
    for (int part = 1; part < threads; ++part) workers_.emplace_back([this, part] { work(part); });
}

ThreadTeam::~ThreadTeam() {
    stop_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadTeam::work(int part) {
    uint64_t seen = 0;
    for (;;) {
        generation_.wait(seen);
        seen = generation_.load();
        if (stop_.load()) return;
        (*fn_)(part, threads());
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1 && sleep_to_join_)
            pending_.notify_one();
    }
}

void ThreadTeam::run(const std::function<void(int, int)>& fn) {
    if (workers_.empty()) return fn(0, 1);
    fn_ = &fn;
    pending_.store(int(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    fn(0, threads());
    if (sleep_to_join_) {
        for (int left; (left = pending_.load(std::memory_order_acquire)) != 0;)
            pending_.wait(left, std::memory_order_acquire);
        return;
    }
    while (pending_.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
}

// ---- KeyDeduper ---------------------------------------------------------------------------

void KeyDeduper::unique(std::span<const uint64_t> keys, std::vector<uint64_t>& out) {
    unique_impl<false>(keys, out, nullptr);
}

void KeyDeduper::unique(std::span<const uint64_t> keys, std::vector<uint64_t>& out,
                        std::vector<uint32_t>& inverse) {
    unique_impl<true>(keys, out, &inverse);
}

template <bool kInverse>
void KeyDeduper::unique_impl(std::span<const uint64_t> keys, std::vector<uint64_t>& out,
                             std::vector<uint32_t>* inverse) {
    out.clear();
    // A table twice the batch, so a small step's probes stay in cache after a large one; the
    // slots past it keep older stamps and are never read.
    size_t cap = 16;
    while (cap < 2 * keys.size()) cap *= 2;
    if (cap > slots_.size()) slots_.resize(cap, Slot{});
    if constexpr (kInverse) {
        if (cap > position_.size()) position_.resize(cap);
        inverse->resize(keys.size());
    }
    ++gen_;  // 64 bits: never wraps
    const size_t mask = cap - 1;
    constexpr size_t kAhead = 16;  // slots prefetched ahead: large steps' tables outgrow L2
    for (size_t j = 0; j < keys.size(); ++j) {
        if (j + kAhead < keys.size())
            __builtin_prefetch(&slots_[size_t(splitmix64(keys[j + kAhead])) & mask], 1, 3);
        const uint64_t k = keys[j];
        size_t i = size_t(splitmix64(k)) & mask;
        while (slots_[i].gen == gen_ && slots_[i].key != k) i = (i + 1) & mask;
        if (slots_[i].gen != gen_) {
            slots_[i] = {k, gen_};
            if constexpr (kInverse) position_[i] = uint32_t(out.size());
            out.push_back(k);
        }
        if constexpr (kInverse) (*inverse)[j] = position_[i];
    }
}

// ---- HostFetchExecutor --------------------------------------------------------------------

HostFetchExecutor::HostFetchExecutor(HostTable& table, int threads, bool sleep_to_join)
    : table_(table), team_(threads, sleep_to_join) {}

void HostFetchExecutor::reserve_staging(size_t bytes) {
    if (bytes > staging_.size()) staging_ = HugePageBuffer(std::max(bytes, 2 * staging_.size()));
}

double HostFetchExecutor::gather(std::span<const uint32_t> rows) {
    const size_t rb = table_.row_bytes();
    const size_t need = rows.size() * rb;
    reserve_staging(need);
    staged_bytes_ = need;
    const WholeTable whole(table_);
    uint8_t* out = staging_.data();
    const auto t0 = Clock::now();
    team_.run([&](int part, int parts) {
        const size_t lo = rows.size() * size_t(part) / size_t(parts);
        const size_t hi = rows.size() * size_t(part + 1) / size_t(parts);
        if (hi > lo)
            gather_rows(whole.view, rows.subspan(lo, hi - lo), {out + lo * rb, (hi - lo) * rb});
    });
    return seconds_since(t0);
}

HostFetchTimes HostFetchExecutor::fetch(std::span<const uint64_t> keys,
                                        std::vector<uint32_t>* inverse) {
    HostFetchTimes t;
    t.lookups = keys.size();
    const auto t0 = Clock::now();
    if (inverse)
        dedup_.unique(keys, unique_, *inverse);
    else
        dedup_.unique(keys, unique_);
    t.dedup_s = seconds_since(t0);
    t.unique_rows = unique_.size();
    // Keys -> rows of the stand-in table (untimed: a real table is addressed by the key itself).
    rows_.resize(unique_.size());
    const uint64_t n = table_.rows();
    for (size_t i = 0; i < unique_.size(); ++i) rows_[i] = uint32_t(unique_[i] % n);
    t.gather_s = gather(rows_);
    return t;
}

// ---- Calibration --------------------------------------------------------------------------

double measure_row_latency(HostTable& table, uint64_t hops, uint64_t seed) {
    const uint64_t n = table.rows();
    hops = std::min<uint64_t>(hops, n);
    if (hops < 2) throw std::invalid_argument("row latency: need at least 2 rows");
    // `hops` distinct rows (a strided start and random steps would repeat; draw and sort out).
    std::vector<uint32_t> pick;
    pick.reserve(hops);
    uint64_t state = seed;
    if (hops * 4 >= n) {
        pick.resize(n);
        std::iota(pick.begin(), pick.end(), 0u);
        for (uint64_t i = n - 1; i > 0; --i) std::swap(pick[i], pick[below(state, i + 1)]);
        pick.resize(hops);
    } else {
        std::vector<uint64_t> drawn;
        while (drawn.size() < hops) {
            while (drawn.size() < hops + hops / 8) drawn.push_back(below(state, n));
            std::sort(drawn.begin(), drawn.end());
            drawn.erase(std::unique(drawn.begin(), drawn.end()), drawn.end());
        }
        drawn.resize(hops);
        for (uint64_t i = hops - 1; i > 0; --i) std::swap(drawn[i], drawn[below(state, i + 1)]);
        for (uint64_t r : drawn) pick.push_back(uint32_t(r));
    }
    // One cycle through the picked rows: row pick[i] stores the address of row pick[i + 1].
    uint8_t* base = table.data();
    const size_t rb = table.row_bytes();
    for (uint64_t i = 0; i < hops; ++i) {
        const uint8_t* next = base + uint64_t(pick[(i + 1) % hops]) * rb;
        std::memcpy(base + uint64_t(pick[i]) * rb, &next, sizeof next);
    }
    const uint8_t* p = base + uint64_t(pick[0]) * rb;
    for (uint64_t i = 0; i < hops / 8; ++i) std::memcpy(&p, p, sizeof p);  // warm the TLB walk
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < hops; ++i) std::memcpy(&p, p, sizeof p);
    const double s = seconds_since(t0);
    if (p == nullptr) throw std::logic_error("row latency: broken chain");  // keeps the loop
    return s / double(hops);
}

GatherLine measure_gather_line(HostTable& table, int threads, const std::vector<uint64_t>& sizes,
                               int repeats, int idle_us, uint64_t seed) {
    if (sizes.size() < 2 || repeats < 1 || idle_us < 0)
        throw std::invalid_argument("gather line: two sizes or more, repeats > 0, idle >= 0");
    for (uint64_t n : sizes)
        if (n == 0) throw std::invalid_argument("gather line: sizes > 0");
    HostFetchExecutor exec(table, threads);
    const uint64_t largest = *std::max_element(sizes.begin(), sizes.end());
    exec.reserve_staging(largest * table.row_bytes());
    std::vector<uint32_t> ids(largest);
    uint64_t state = seed;
    std::vector<std::vector<double>> t(sizes.size());
    for (int r = 0; r < repeats; ++r)
        for (size_t k = 0; k < sizes.size(); ++k) {
            for (uint64_t i = 0; i < sizes[k]; ++i) ids[i] = uint32_t(below(state, table.rows()));
            std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
            t[k].push_back(exec.gather({ids.data(), sizes[k]}));
        }
    std::vector<double> median_s;
    for (size_t k = 0; k < sizes.size(); ++k) {
        std::nth_element(t[k].begin(), t[k].begin() + repeats / 2, t[k].end());
        median_s.push_back(t[k][size_t(repeats / 2)]);
    }
    return fit_gather_line(sizes, median_s);
}

GatherLine fit_gather_line(const std::vector<uint64_t>& sizes, const std::vector<double>& median_s) {
    if (sizes.size() < 2 || median_s.size() != sizes.size())
        throw std::invalid_argument("gather line: two sizes or more, one median each");
    GatherLine line;
    line.sizes = sizes, line.median_s = median_s;
    // Weighted least squares, weights 1 / t^2 (the same relative error at every size), so the
    // small sizes set the intercept: unweighted, 1% of noise at the largest size would move it
    // by more than a small fetch costs.
    double sw = 0, swx = 0, swy = 0, swxx = 0, swxy = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
        const double x = double(sizes[k]), y = median_s[k];
        const double w = 1 / std::max(y * y, 1e-30);
        sw += w, swx += w * x, swy += w * y, swxx += w * x * x, swxy += w * x * y;
    }
    const double det = sw * swxx - swx * swx;
    if (!(det > 0)) throw std::invalid_argument("gather line: the sizes must differ");
    line.per_row_s = (sw * swxy - swx * swy) / det;
    // Where the small sizes' waking and joining (microseconds, noisy on a shared machine) bury
    // the rows, as on a table that fits in the caches, the weighted slope can come out zero or
    // negative. A row's cost is then the slope between the two largest sizes, where rows, not
    // the fixed cost, make the time.
    if (!(line.per_row_s > 0)) {
        std::vector<size_t> by(sizes.size());
        for (size_t k = 0; k < by.size(); ++k) by[k] = k;
        std::sort(by.begin(), by.end(), [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
        const size_t a = by[0], b = by[1];
        line.per_row_s = (median_s[a] - median_s[b]) / (double(sizes[a]) - double(sizes[b]));
    }
    if (!(line.per_row_s > 0)) {
        std::string m;
        for (size_t k = 0; k < sizes.size(); ++k)
            m += (k ? ", " : "") + std::to_string(sizes[k]) + " rows " + std::to_string(median_s[k] * 1e6) + " us";
        throw std::runtime_error("gather line: the gather's time does not grow with its rows (" + m +
                                 "): this machine was too busy to measure it; run again");
    }
    line.fixed_s = std::max(0.0, (swy - line.per_row_s * swx) / sw);
    return line;
}

double measure_dedup_rate(uint64_t batch, uint64_t keys, uint64_t seed) {
    if (batch == 0 || keys < batch) throw std::invalid_argument("dedup rate: keys >= batch > 0");
    KeyDeduper dedup;
    std::vector<uint64_t> in(batch), out;
    uint64_t state = seed;
    dedup.unique(in, out);  // sizes the table
    double seconds = 0;
    uint64_t done = 0;
    for (; done + batch <= keys; done += batch) {
        for (auto& k : in) k = below(state, 4 * batch) * 0x9e3779b1ull;  // spread over keys
        const auto t0 = Clock::now();
        dedup.unique(in, out);
        seconds += seconds_since(t0);
    }
    return double(done) / seconds;
}

double measure_copy_bandwidth(size_t bytes, int threads, int repeats) {
    if (bytes == 0 || threads < 1 || repeats < 1)
        throw std::invalid_argument("copy bandwidth: bytes, threads and repeats > 0");
    HugePageBuffer src(bytes), dst(bytes);
    ThreadTeam team(threads);
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        team.run([&](int part, int parts) {
            const size_t lo = bytes * size_t(part) / size_t(parts);
            const size_t hi = bytes * size_t(part + 1) / size_t(parts);
            std::memcpy(dst.data() + lo, src.data() + lo, hi - lo);
        });
        best = std::max(best, 2.0 * double(bytes) / seconds_since(t0));
    }
    return best;
}

}  // namespace engramsim::kernels

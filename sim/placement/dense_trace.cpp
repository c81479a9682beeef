#include "sim/placement/dense_trace.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "sim/placement/cache_policy.h"
#include "sim/placement/policy_util.h"

namespace engramsim::placement {

namespace {
constexpr uint64_t kEmpty = UINT64_MAX;
constexpr uint64_t kMaxRequests = UINT32_MAX - 1;  // positions are uint32, kNever excluded
}  // namespace

namespace {

// Maps the pages of [p, p + bytes) writable now, in one call: a table read at random would
// otherwise fault every page twice (mapped to the zero page on its first read, copied on its
// first write). Where the kernel lacks MADV_POPULATE_WRITE (before 5.14) it does nothing.
void populate(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096;
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#else
    (void)p, (void)bytes;
#endif
}

}  // namespace

// The slot a key's probe starts at: its hash scaled onto the capacity (multiply-shift, so the
// capacity need not be a power of 2 and reserve() sizes the table to the keys, not to the next
// power of 2 above them).
uint64_t KeyIndex::home(uint64_t key) const {
    return uint64_t((unsigned __int128)detail::fmix64(key) * capacity_ >> 64);
}

void KeyIndex::Free::operator()(Slot* p) const {
    std::free(p);
}

// A table of `capacity` empty slots: zeroed by calloc, which takes a large block
// straight from the kernel's zero pages. (Advising it onto transparent huge pages was measured
// and made replay 1.3-2.4x slower on this VM: the kernel compacts memory to find them.)
void KeyIndex::rehash(uint64_t capacity) {
    std::unique_ptr<Slot[], Free> fresh(static_cast<Slot*>(std::calloc(capacity, sizeof(Slot))));
    if (!fresh) throw std::bad_alloc();
    populate(fresh.get(), capacity * sizeof(Slot));
    std::swap(fresh, slots_);
    const uint64_t old_capacity = capacity_;
    capacity_ = capacity;
    for (uint64_t i = 0; i < old_capacity; ++i) {
        const Slot& e = fresh[i];
        if (e.key1 == 0) continue;
        uint64_t s = home(e.key1 - 1);
        while (slots_[s].key1 != 0) s = next(s);
        slots_[s] = e;
    }
}

void KeyIndex::reserve(uint64_t keys) {
    const uint64_t cap = std::max<uint64_t>(1024, (4 * keys + 2) / 3);  // at most 3/4 full
    if (cap > capacity_) rehash(cap);
}

uint32_t KeyIndex::insert(uint64_t key) {
    bool seen = false;
    return insert(key, 0, seen);
}

uint32_t KeyIndex::insert(uint64_t key, uint32_t stamp, bool& seen_with_stamp) {
    if (key == kEmpty) throw std::invalid_argument("row key 18446744073709551615 is reserved");
    if (4 * (uint64_t(size_) + 1) > 3 * capacity_) rehash(capacity_ ? 2 * capacity_ : 1024);
    const uint64_t key1 = key + 1;
    uint64_t s = home(key);
    while (slots_[s].key1 != 0) {
        if (slots_[s].key1 == key1) {
            seen_with_stamp = stamp != 0 && slots_[s].stamp == stamp;
            slots_[s].stamp = stamp;
            return slots_[s].id;
        }
        s = next(s);
    }
    seen_with_stamp = false;
    if (size_ == UINT32_MAX - 1)
        throw std::length_error("more than 4,294,967,294 distinct rows in one replay");
    slots_[s] = {key1, size_, stamp};
    return size_++;
}

uint32_t KeyIndex::find(uint64_t key) const {
    if (!slots_ || key == kEmpty) return UINT32_MAX;
    const uint64_t key1 = key + 1;
    uint64_t s = home(key);
    while (slots_[s].key1 != 0) {
        if (slots_[s].key1 == key1) return slots_[s].id;
        s = next(s);
    }
    return UINT32_MAX;
}

void DistinctEstimate::add(uint64_t key) {
    // The register is the hash's top 14 bits; its value the rank of the first 1 in the rest.
    const uint64_t h = detail::fmix64(key ^ 0x9e3779b97f4a7c15ULL);
    const size_t r = size_t(h >> 50);
    const uint8_t rank = uint8_t(std::countl_zero((h << 14) | (uint64_t(1) << 13)) + 1);
    if (rank > reg_[r]) reg_[r] = rank;
}

double DistinctEstimate::estimate() const {
    const double m = double(reg_.size());
    double sum = 0;
    size_t zeros = 0;
    for (uint8_t v : reg_) sum += std::ldexp(1.0, -int(v)), zeros += v == 0;
    const double raw = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    // Few keys: linear counting over the empty registers is the better estimate.
    if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / double(zeros));
    return raw;
}

DenseTrace densify(LookupSource& source) {
    DenseTrace out;
    out.layout = source.layout();
    StepBatch batch;
    while (source.next(batch)) {
        ++out.steps;
        for (size_t l = 0; l < batch.rows.size(); ++l) {
            const auto& rows = batch.rows[l];
            RequestGroup g{.step = batch.step,
                           .layer = uint32_t(l),
                           .lookups = rows.size(),
                           .first = out.requests.size()};
            if (out.groups.size() + 1 >= UINT32_MAX)
                throw std::length_error("more than 4,294,967,294 (step, layer) groups");
            const uint32_t stamp = uint32_t(out.groups.size() + 1);
            constexpr size_t kAhead = 8;
            for (size_t k = 0; k < rows.size(); ++k) {
                if (k + kAhead < rows.size()) out.index.prefetch(rows[k + kAhead]);
                const uint64_t key = rows[k];
                bool repeat = false;
                const uint32_t id = out.index.insert(key, stamp, repeat);
                if (id == out.keys.size()) out.keys.push_back(key);
                if (repeat) continue;
                out.requests.push_back(id);
            }
            if (out.requests.size() > kMaxRequests)
                throw std::length_error("more than 4,294,967,294 requests in one replay");
            g.count = uint32_t(out.requests.size() - g.first);
            out.lookups += rows.size();
            out.groups.push_back(g);
        }
    }
    return out;
}

namespace {

// Sizes the trace for `n` requests of about `distinct` distinct keys (an estimate: the index
// and the keys still grow past it).
void reserve_for(DenseTrace& out, uint64_t n, double distinct) {
    const auto d = uint64_t(std::min<double>(double(n), distinct * 1.02 + 1024));
    out.index.reserve(d);
    out.keys.reserve(size_t(d));
    out.requests.reserve(size_t(n));
}

// The ids, in order, into `out` (sized by reserve_for).
void add_ids(DenseTrace& out, std::span<const uint64_t> ids) {
    constexpr size_t kAhead = 16;
    const size_t n = ids.size();
    for (size_t k = 0; k < n; ++k) {
        if (k + kAhead < n) out.index.prefetch(ids[k + kAhead]);
        const uint64_t key = ids[k];
        const uint32_t id = out.index.insert(key);
        if (id == out.keys.size()) out.keys.push_back(key);
        out.requests.push_back(id);
    }
}

}  // namespace

DenseTrace densify_ids(std::span<const uint64_t> ids, double row_bytes) {
    if (ids.size() > kMaxRequests)
        throw std::length_error("more than 4,294,967,294 requests in one replay");
    DenseTrace out;
    out.layout.row_bytes = row_bytes;
    DistinctEstimate est;
    for (uint64_t key : ids) est.add(key);
    reserve_for(out, ids.size(), est.estimate());
    add_ids(out, ids);
    out.lookups = ids.size();
    return out;
}

DenseTrace densify_id_file(const std::string& path, double row_bytes) {
    return densify_id_file(path, row_bytes, DensifyHooks{});
}

DenseTrace densify_id_file(const std::string& path, double row_bytes, const DensifyHooks& hooks) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw std::runtime_error(path + ": is a directory, not an id file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
    const uint64_t bytes = std::filesystem::file_size(path, ec);
    if (ec) throw std::runtime_error(path + ": cannot read its size: " + ec.message());
    if (bytes % 8 != 0)
        throw std::runtime_error(path + ": " + std::to_string(bytes) +
                                 " bytes is not a whole number of uint64 ids");
    if (bytes == 0) throw std::runtime_error(path + ": holds no ids (an empty file)");
    const uint64_t n = bytes / 8;
    if (n > kMaxRequests) throw std::length_error("more than 4,294,967,294 requests in one replay");
    std::vector<uint64_t> chunk(size_t(1) << 20);  // 8 MiB at a time
    // Each pass reads the whole file in chunks; a short read is an error (the file changed).
    auto pass = [&](auto&& each) {
        std::rewind(f);
        for (uint64_t done = 0; done < n;) {
            const size_t want = size_t(std::min<uint64_t>(chunk.size(), n - done));
            if (std::fread(chunk.data(), 8, want, f) != want)
                throw std::runtime_error(path + ": read failed after " + std::to_string(done) +
                                         " of " + std::to_string(n) + " ids (truncated while read?)");
            each(std::span<const uint64_t>(chunk.data(), want));
            done += want;
        }
    };
    DenseTrace out;
    out.layout.row_bytes = row_bytes;
    DistinctEstimate est;
    pass([&](std::span<const uint64_t> ids) {
        for (uint64_t key : ids) est.add(key);
    });
    reserve_for(out, n, est.estimate());
    // The consumer's bound: 5% and 4,096 ids over the estimate (its standard error is about 1%).
    const uint64_t bound =
        hooks.bound > 0 ? hooks.bound
                        : std::min<uint64_t>({n, uint64_t(est.estimate() * 1.05) + 4096,
                                              uint64_t(UINT32_MAX) - 1});
    if (hooks.sized) hooks.sized(out, bound);
    bool reporting = bool(hooks.remapped);
    pass([&](std::span<const uint64_t> ids) {
        constexpr size_t kSlice = size_t(1) << 16;
        for (size_t at = 0; at < ids.size(); at += kSlice) {
            add_ids(out, ids.subspan(at, std::min(kSlice, ids.size() - at)));
            if (!reporting) continue;
            if (out.index.size() > bound) {
                reporting = false;
                if (hooks.overflow) hooks.overflow->store(true);
                continue;
            }
            hooks.remapped(out.requests.size());
        }
    });
    out.lookups = n;
    return out;
}

std::vector<uint64_t> step_starts(const DenseTrace& trace) {
    std::vector<uint64_t> out;
    for (size_t i = 0; i < trace.groups.size(); ++i)
        if (i == 0 || trace.groups[i].step != trace.groups[i - 1].step)
            out.push_back(trace.groups[i].first);
    return out;
}

std::vector<uint32_t> next_uses(std::span<const uint32_t> requests, uint32_t universe) {
    std::vector<uint32_t> next(requests.size());
    std::vector<uint32_t> last(universe, kNever);
    for (size_t t = requests.size(); t-- > 0;) {
        next[t] = last[requests[t]];
        last[requests[t]] = uint32_t(t);
    }
    return next;
}

std::vector<uint64_t> request_counts(std::span<const uint32_t> requests, uint32_t universe) {
    std::vector<uint64_t> counts(universe, 0);
    for (uint32_t id : requests) ++counts[id];
    return counts;
}

}  // namespace engramsim::placement

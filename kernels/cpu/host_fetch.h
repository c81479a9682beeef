// The host side of the cpu-gather fetch, executed for real on this machine: a step's row keys
// are deduplicated (a row read twice in one step is fetched once) and the unique rows are
// gathered by T threads from a table in host DRAM into a staging buffer, as an inference
// engine's host prefetcher does before its one DMA copy to the GPU. It is what
// `engramsim validate host-fetch` times and compares with the simulator's cpu-gather model
// (sim/timing/fetch.h), together with the microbenchmarks that calibrate that model's parameters.
//
// The table is a scaled-down stand-in for the real one (this machine's memory, not the model's
// 200 GB): a key reads physical row key mod table_rows. Contents are a pattern of the row index,
// so a gather can be checked byte for byte.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <thread>
#include <vector>

#include "kernels/cpu/host_memory.h"

namespace engramsim::kernels {

// Byte b of physical row r of a HostTable: a fixed mix of (r, b).
uint8_t host_table_byte(uint64_t row, size_t byte);

class HostTable {
public:
    // table_bytes rounded down to whole rows; throws std::invalid_argument if that is < 1 row.
    HostTable(uint64_t table_bytes, size_t row_bytes);
    uint64_t rows() const { return rows_; }
    size_t row_bytes() const { return row_bytes_; }
    uint64_t bytes() const { return rows_ * row_bytes_; }
    const uint8_t* data() const { return buf_.data(); }
    uint8_t* data() { return buf_.data(); }
    // Writes the pattern of host_table_byte into every row (after a calibration scribbled on it).
    void fill();

private:
    uint64_t rows_ = 0;
    size_t row_bytes_ = 0;
    HugePageBuffer buf_;
};

// A fixed set of threads that run one function split in `threads()` parts: part 0 on the
// calling thread, the others on workers woken through an atomic (futex) and joined by a counter.
// A persistent pool, as an engine's prefetcher keeps one: no thread is created per step.
// The caller waits for the others by spinning (a memory gather finishes in microseconds), or,
// with `sleep_to_join`, on the counter's futex (I/O threads that block for hundreds of
// microseconds would lose the spinning caller's core).
class ThreadTeam {
public:
    explicit ThreadTeam(int threads, bool sleep_to_join = false);
    ~ThreadTeam();
    ThreadTeam(const ThreadTeam&) = delete;
    ThreadTeam& operator=(const ThreadTeam&) = delete;
    int threads() const { return int(workers_.size()) + 1; }
    // Runs fn(part, parts) for part in [0, parts) and returns when all have returned. Not
    // reentrant; fn must not throw.
    void run(const std::function<void(int, int)>& fn);

private:
    void work(int part);
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* fn_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    bool sleep_to_join_ = false;
};

// Distinct keys in first-seen order, by open addressing (linear probing over twice the batch's
// size, generation-stamped so nothing is cleared between steps).
class KeyDeduper {
public:
    // Appends the distinct keys of `keys` to `out` (cleared first), in order of first occurrence.
    void unique(std::span<const uint64_t> keys, std::vector<uint64_t>& out);
    // The same, and inverse[j] = the position in `out` of keys[j] (torch.unique's
    // return_inverse): what a consumer of the deduplicated rows indexes them by.
    void unique(std::span<const uint64_t> keys, std::vector<uint64_t>& out,
                std::vector<uint32_t>& inverse);

private:
    template <bool kInverse>
    void unique_impl(std::span<const uint64_t> keys, std::vector<uint64_t>& out,
                     std::vector<uint32_t>* inverse);
    struct Slot {
        uint64_t key = 0;
        uint64_t gen = 0;  // the step that wrote the slot (one cache line holds both)
    };
    std::vector<Slot> slots_;
    std::vector<uint32_t> position_;  // with inverse only: the slot's key's position in `out`
    uint64_t gen_ = 0;
};

struct HostFetchTimes {
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0;   // distinct keys -> physical row ids (calling thread)
    double gather_s = 0;  // rows into staging, all threads
};

// Executes fetches against one table with one team; the staging buffer grows to the largest
// step. Holds the last step's staging and row ids for checking.
class HostFetchExecutor {
public:
    // `sleep_to_join`: the calling thread waits for the others on a futex instead of spinning
    // (see ThreadTeam): for a background prefetcher that shares the cores with compute.
    HostFetchExecutor(HostTable& table, int threads, bool sleep_to_join = false);
    // With `inverse`, also each key's row in the staging (see KeyDeduper).
    HostFetchTimes fetch(std::span<const uint64_t> keys, std::vector<uint32_t>* inverse = nullptr);
    // Sizes the staging for `bytes` now, so no timed fetch allocates or faults it in.
    void reserve_staging(size_t bytes);
    // Gathers `rows` (physical ids) into the staging, all threads; returns the seconds.
    double gather(std::span<const uint32_t> rows);
    std::span<const uint8_t> staging() const { return {staging_.data(), staged_bytes_}; }
    std::span<const uint32_t> last_rows() const { return rows_; }
    int threads() const { return team_.threads(); }

private:
    HostTable& table_;
    ThreadTeam team_;
    KeyDeduper dedup_;
    std::vector<uint64_t> unique_;
    std::vector<uint32_t> rows_;
    HugePageBuffer staging_;
    size_t staged_bytes_ = 0;
};

// ---- Calibration microbenchmarks (the cpu-gather model's parameters on this machine) ----

// Seconds per dependent load of a random row of `table`: a pointer chase through `hops` rows
// drawn without repeats (one cache line per row; overwrites their first 8 bytes: fill() after).
double measure_row_latency(HostTable& table, uint64_t hops, uint64_t seed);

// The gather's cost line on this machine: t(n) = fixed_s + n x per_row_s for a gather of n
// uniform random rows by `threads` threads whose threads were idle for `idle_us` before it, as a
// prefetcher's are between steps. Each size in `sizes` is gathered `repeats` times (sizes
// interleaved, fresh rows each time); the line is the least-squares fit through each size's
// median, weighted by 1 / t^2 (equal relative error at every size). The median, as the validation takes each fetch's median over its passes: both leave
// out the rare multi-millisecond stalls of a shared VM's scheduler. fixed_s holds what a fetch
// costs beyond its rows (waking and joining threads, TLBs and caches others used meanwhile).
struct GatherLine {
    double per_row_s = 0, fixed_s = 0;
    std::vector<uint64_t> sizes;
    std::vector<double> median_s;
};
GatherLine measure_gather_line(HostTable& table, int threads, const std::vector<uint64_t>& sizes,
                               int repeats, int idle_us, uint64_t seed);
// The line through each size's median time (measure_gather_line's fit). Its slope, a row's
// cost, is positive: where the weighted fit's is not (the small sizes' fixed cost, noisy,
// burying the rows), the slope between the two largest sizes; where that is not positive
// either, std::runtime_error quoting the medians.
GatherLine fit_gather_line(const std::vector<uint64_t>& sizes, const std::vector<double>& median_s);

// Keys per second one thread deduplicates (KeyDeduper), batches of `batch` uniform random keys
// over a space 4x the batch (so about 12% are repeats), over `keys` keys in all.
double measure_dedup_rate(uint64_t batch, uint64_t keys, uint64_t seed);

// DRAM traffic per second of memcpy between two `bytes` buffers with `threads` threads: bytes
// read + bytes written (twice the bytes copied), as the cpu-gather model counts a gather's
// traffic (lines read + staging written). Best of `repeats`.
double measure_copy_bandwidth(size_t bytes, int threads, int repeats);

}  // namespace engramsim::kernels

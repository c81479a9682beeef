// The host side of the nvme fetch, executed for real on this machine: a step's row keys are
// deduplicated and each unique row is one direct (O_DIRECT, no page cache) read of one I/O block
// from a table file, `queue_depth` reads in flight (one per thread of a persistent team), the
// row's bytes then copied into staging, as an engine's NVMe prefetcher does before its one DMA
// copy to the GPU. It is what `engramsim validate nvme-fetch` times and compares with the
// simulator's nvme model (sim/timing/fetch.h), together with the microbenchmarks that calibrate that
// model's drive parameters (latency, IOPS, sequential bandwidth).
//
// The file is a scaled-down stand-in for the real table (this machine's disk, not 200 GB): row r
// lives at the start of block r mod blocks. Its contents are host_table_byte(block, byte), so a
// read can be checked byte for byte.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/cpu/host_fetch.h"

namespace engramsim::kernels {

class BlockFile {
public:
    // Opens `path` for direct reads. A file that is missing or smaller than `bytes` is (re)written
    // whole with the pattern first; `bytes` is rounded down to whole blocks of io_bytes (a power
    // of two, 512 B to 1 MiB). Throws std::runtime_error naming the path when the file system
    // refuses O_DIRECT or a write fails, std::invalid_argument for bad sizes.
    BlockFile(const std::string& path, uint64_t bytes, size_t io_bytes);
    ~BlockFile();
    BlockFile(const BlockFile&) = delete;
    BlockFile& operator=(const BlockFile&) = delete;
    const std::string& path() const { return path_; }
    uint64_t blocks() const { return blocks_; }
    size_t io_bytes() const { return io_bytes_; }
    int fd() const { return fd_; }
    bool written() const { return written_; }  // did the constructor write the pattern?

private:
    std::string path_;
    uint64_t blocks_ = 0;
    size_t io_bytes_ = 0;
    int fd_ = -1;
    bool written_ = false;
};

struct BlockFetchTimes {
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0;  // distinct keys -> blocks (calling thread)
    double read_s = 0;   // every block read and its row copied into staging, all threads
};

// Where row r is in the file. OnePerBlock (the validation's stand-in): at the start of block
// r mod blocks. Packed (a real table file): at byte r x row_bytes, rows back to back, a read
// fetching the one block that holds it (io_bytes must be a multiple of row_bytes, so no row
// straddles two blocks); rows past the file wrap around.
enum class RowLayout { OnePerBlock, Packed };

// Executes fetches against one file with `queue_depth` threads, each with one read in flight.
class BlockFetchExecutor {
public:
    BlockFetchExecutor(const BlockFile& file, size_t row_bytes, int queue_depth,
                       RowLayout layout = RowLayout::OnePerBlock);
    // With `inverse`, also each key's row in the staging (see KeyDeduper).
    BlockFetchTimes fetch(std::span<const uint64_t> keys, std::vector<uint32_t>* inverse = nullptr);
    // Deduplicates `keys` into last_rows() (with `inverse`, each key's position there); returns
    // the seconds. fetch() is this, then read(last_rows()).
    double deduplicate(std::span<const uint64_t> keys, std::vector<uint32_t>* inverse = nullptr);
    // Deduplicates `keys` and sizes the staging for them, untimed and without reading: the
    // first fetch of a size otherwise pays for growing and faulting in the buffers.
    void warm(std::span<const uint64_t> keys);
    // Reads the blocks of `rows` (row r: block r mod blocks) and stages each row's first
    // row_bytes; returns the seconds. Throws std::runtime_error on a failed or short read.
    double read(std::span<const uint64_t> rows);
    // Sizes the staging for `rows` rows (the next read_at's positions), without reading.
    void stage(size_t rows);
    // Reads the blocks of rows[i] into staging row at[i] (< the staged rows), the rest of the
    // staging untouched: the misses of a fetch a DRAM cache serves in part. Returns the seconds.
    double read_at(std::span<const uint64_t> rows, std::span<const uint32_t> at);
    uint8_t* staging_row(size_t i) { return staging_.data() + i * row_bytes_; }
    std::span<const uint8_t> staging() const { return {staging_.data(), staged_bytes_}; }
    std::span<const uint64_t> last_rows() const { return unique_; }
    int queue_depth() const { return team_.threads(); }

private:
    const BlockFile& file_;
    size_t row_bytes_;
    RowLayout layout_ = RowLayout::OnePerBlock;
    ThreadTeam team_;
    KeyDeduper dedup_;
    std::vector<uint64_t> unique_;
    std::vector<uint8_t> staging_;
    size_t staged_bytes_ = 0;
    HugePageBuffer io_buffers_;  // one aligned block per thread
};

// ---- Calibration microbenchmarks (the nvme model's drive parameters on this disk) ----

// Mean seconds of one direct read of a random block, one at a time (`reads` of them): 1 / the
// rate at depth 1. The mean, not the median, since a rate is what it sets and a shared disk's
// latency has a long tail.
double measure_read_latency(const BlockFile& file, int reads, uint64_t seed);
// Random block reads per second with `queue_depth` threads each keeping one in flight, over
// `reads` reads in all (each thread a share).
double measure_read_iops(const BlockFile& file, int queue_depth, uint64_t reads, uint64_t seed);
// Sequential bytes per second: `chunk`-byte direct reads at `queue_depth` in flight, `bytes` in
// all (capped at the file).
double measure_read_bandwidth(const BlockFile& file, size_t chunk, int queue_depth, uint64_t bytes);

}  // namespace engramsim::kernels

#include "kernels/cpu/block_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "traces/splitmix64.h"

namespace engramsim::kernels {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// One whole direct read of `bytes` at `offset` into `buf`.
void read_block(int fd, uint8_t* buf, size_t bytes, uint64_t offset, const std::string& path) {
    size_t got = 0;
    while (got < bytes) {
        const ssize_t n = ::pread(fd, buf + got, bytes - got, off_t(offset + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(sys_error(path + ": read at byte " + std::to_string(offset)));
        if (n == 0)
            throw std::runtime_error(path + ": short read at byte " + std::to_string(offset) +
                                     " (the file shrank?)");
        got += size_t(n);
    }
}

// Runs `part(index, parts)` on every thread of `team` and returns the seconds it took; the
// first error a part threw is rethrown once all have returned (a part must not throw into the
// team).
template <class Part>
double timed_team_run(ThreadTeam& team, const Part& part) {
    std::atomic<bool> failed{false};
    std::string error;
    const auto t0 = Clock::now();
    team.run([&](int index, int parts) {
        try {
            part(index, parts);
        } catch (const std::exception& e) {
            if (!failed.exchange(true)) error = e.what();
        }
    });
    const double s = seconds_since(t0);
    if (failed) throw std::runtime_error(error);
    return s;
}

// Random block ids of a thread's share: a SplitMix64 stream per (seed, part).
struct BlockStream {
    uint64_t state;
    uint64_t blocks;
    uint64_t next() { return (state = splitmix64(state)) % blocks; }
};

}  // namespace

// ---- BlockFile ----------------------------------------------------------------------------

BlockFile::BlockFile(const std::string& path, uint64_t bytes, size_t io_bytes)
    : path_(path), io_bytes_(io_bytes) {
    if (io_bytes < 512 || io_bytes > (size_t(1) << 20) || (io_bytes & (io_bytes - 1)) != 0)
        throw std::invalid_argument("block file: the I/O size must be a power of two from 512 B "
                                    "to 1 MiB, not " + std::to_string(io_bytes));
    blocks_ = bytes / io_bytes;
    if (blocks_ < 1)
        throw std::invalid_argument("block file: " + std::to_string(bytes) +
                                    " bytes hold no block of " + std::to_string(io_bytes));
    const uint64_t want = blocks_ * io_bytes;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || uint64_t(st.st_size) < want) {
        // Written block by block with the pattern (a sparse or fallocated file would read as
        // zeros without touching the disk), then flushed.
        const int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (w < 0) throw std::runtime_error(sys_error(path + ": cannot create"));
        const size_t chunk_blocks = std::max<size_t>(1, (size_t(8) << 20) / io_bytes);
        std::vector<uint8_t> chunk(chunk_blocks * io_bytes);
        for (uint64_t b0 = 0; b0 < blocks_; b0 += chunk_blocks) {
            const uint64_t n = std::min<uint64_t>(chunk_blocks, blocks_ - b0);
            for (uint64_t b = 0; b < n; ++b)
                for (size_t i = 0; i < io_bytes; ++i)
                    chunk[b * io_bytes + i] = host_table_byte(b0 + b, i);
            const size_t len = size_t(n) * io_bytes;
            for (size_t at = 0; at < len;) {
                const ssize_t k = ::write(w, chunk.data() + at, len - at);
                if (k <= 0) {
                    const std::string e = sys_error(path + ": write failed");
                    ::close(w);
                    throw std::runtime_error(e);
                }
                at += size_t(k);
            }
        }
        ::fsync(w);
        ::close(w);
        written_ = true;
    }
    fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECT);
    if (fd_ < 0)
        throw std::runtime_error(sys_error(path + ": cannot open for direct reads (O_DIRECT; "
                                                  "tmpfs and some file systems refuse it)"));
}

BlockFile::~BlockFile() {
    if (fd_ >= 0) ::close(fd_);
}

// ---- BlockFetchExecutor -------------------------------------------------------------------

BlockFetchExecutor::BlockFetchExecutor(const BlockFile& file, size_t row_bytes, int queue_depth,
                                       RowLayout layout)
    : file_(file), row_bytes_(row_bytes), layout_(layout),
      team_(queue_depth, /*sleep_to_join=*/true),
      io_buffers_(size_t(queue_depth) * file.io_bytes()) {
    if (row_bytes == 0 || row_bytes > file.io_bytes())
        throw std::invalid_argument("block fetch: a row of " + std::to_string(row_bytes) +
                                    " bytes must fit one I/O block of " +
                                    std::to_string(file.io_bytes()));
    if (layout == RowLayout::Packed && file.io_bytes() % row_bytes != 0)
        throw std::invalid_argument("block fetch: packed rows of " + std::to_string(row_bytes) +
                                    " bytes must divide the I/O block of " +
                                    std::to_string(file.io_bytes()) + " (no row across two)");
}

double BlockFetchExecutor::read(std::span<const uint64_t> rows) {
    stage(rows.size());
    return read_at(rows, {});
}

void BlockFetchExecutor::stage(size_t rows) {
    if (staging_.size() < rows * row_bytes_) staging_.resize(rows * row_bytes_);
    staged_bytes_ = rows * row_bytes_;
}

double BlockFetchExecutor::read_at(std::span<const uint64_t> rows, std::span<const uint32_t> at) {
    if (!at.empty() && at.size() != rows.size())
        throw std::invalid_argument("block fetch: one staging position per row");
    for (uint32_t a : at)
        if ((size_t(a) + 1) * row_bytes_ > staged_bytes_)
            throw std::out_of_range("block fetch: staging position past the staged rows");
    return timed_team_run(team_, [&](int part, int parts) {
        uint8_t* buf = io_buffers_.data() + size_t(part) * file_.io_bytes();
        const uint64_t per_block = file_.io_bytes() / row_bytes_;
        const bool packed = layout_ == RowLayout::Packed;
        for (size_t i = size_t(part); i < rows.size(); i += size_t(parts)) {
            const uint64_t r = packed ? rows[i] % (file_.blocks() * per_block) : rows[i];
            const uint64_t block = packed ? r / per_block : r % file_.blocks();
            read_block(file_.fd(), buf, file_.io_bytes(), block * file_.io_bytes(), file_.path());
            const size_t from = packed ? size_t(r % per_block) * row_bytes_ : 0;
            const size_t to = at.empty() ? i : size_t(at[i]);
            std::memcpy(staging_.data() + to * row_bytes_, buf + from, row_bytes_);
        }
    });
}

double BlockFetchExecutor::deduplicate(std::span<const uint64_t> keys,
                                       std::vector<uint32_t>* inverse) {
    const auto t0 = Clock::now();
    if (inverse)
        dedup_.unique(keys, unique_, *inverse);
    else
        dedup_.unique(keys, unique_);
    return seconds_since(t0);
}

BlockFetchTimes BlockFetchExecutor::fetch(std::span<const uint64_t> keys,
                                          std::vector<uint32_t>* inverse) {
    BlockFetchTimes t;
    t.lookups = keys.size();
    t.dedup_s = deduplicate(keys, inverse);
    t.unique_rows = unique_.size();
    t.read_s = read(unique_);
    return t;
}

void BlockFetchExecutor::warm(std::span<const uint64_t> keys) {
    dedup_.unique(keys, unique_);
    if (staging_.size() < unique_.size() * row_bytes_) staging_.resize(unique_.size() * row_bytes_);
}

// ---- Calibration ----------------------------------------------------------------------------

double measure_read_latency(const BlockFile& file, int reads, uint64_t seed) {
    if (reads < 1) throw std::invalid_argument("read latency: at least one read");
    return 1 / measure_read_iops(file, 1, uint64_t(reads), seed);
}

double measure_read_iops(const BlockFile& file, int queue_depth, uint64_t reads, uint64_t seed) {
    if (queue_depth < 1 || reads < uint64_t(queue_depth))
        throw std::invalid_argument("read IOPS: at least one read per thread");
    ThreadTeam team(queue_depth, /*sleep_to_join=*/true);
    HugePageBuffer bufs(size_t(queue_depth) * file.io_bytes());
    const double dt = timed_team_run(team, [&](int part, int parts) {
        BlockStream s{splitmix64(seed + uint64_t(part)), file.blocks()};
        uint8_t* buf = bufs.data() + size_t(part) * file.io_bytes();
        for (uint64_t i = uint64_t(part); i < reads; i += uint64_t(parts))
            read_block(file.fd(), buf, file.io_bytes(), s.next() * file.io_bytes(), file.path());
    });
    return double(reads) / dt;
}

double measure_read_bandwidth(const BlockFile& file, size_t chunk, int queue_depth, uint64_t bytes) {
    const uint64_t file_bytes = file.blocks() * file.io_bytes();
    chunk = std::max(file.io_bytes(), chunk / file.io_bytes() * file.io_bytes());
    chunk = size_t(std::min<uint64_t>(chunk, file_bytes));
    const uint64_t chunks = std::max<uint64_t>(1, std::min(bytes, file_bytes) / chunk);
    ThreadTeam team(queue_depth, /*sleep_to_join=*/true);
    HugePageBuffer bufs(size_t(queue_depth) * chunk);
    const double dt = timed_team_run(team, [&](int part, int parts) {
        uint8_t* buf = bufs.data() + size_t(part) * chunk;
        for (uint64_t c = uint64_t(part); c < chunks; c += uint64_t(parts))
            read_block(file.fd(), buf, chunk, c * chunk, file.path());
    });
    return double(chunks * chunk) / dt;
}

}  // namespace engramsim::kernels

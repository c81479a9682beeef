// The nvme fetch executed on this machine's disk (kernels/cpu/block_io.h): the file holds its
// pattern, every staged row is its block's bytes, deduplication keeps first occurrences, and
// the two queueing laws of the nvme model (sim::nvme_read_rate) have their closed forms. Timing
// is never asserted. The files live in the test's working directory (the build tree), since a
// tmpfs /tmp may refuse direct I/O; where the file system refuses it, the tests say so and skip.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_set>

#include "kernels/cpu/block_io.h"
#include "sim/timing/fetch.h"
#include "sim/validation/nvme_fetch.h"

namespace {

namespace k = engramsim::kernels;

std::string file_name(const std::string& tag) {
    return "block_io_" + tag + "_" + std::to_string(getpid()) + ".bin";
}

// The file, or a skip when this file system refuses O_DIRECT.
std::unique_ptr<k::BlockFile> open_or_skip(const std::string& path, uint64_t bytes, size_t io) {
    try {
        return std::make_unique<k::BlockFile>(path, bytes, io);
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).find("direct reads") != std::string::npos) return nullptr;
        throw;
    }
}

}  // namespace

TEST(BlockIo, TheFileHoldsItsPatternAndIsReused) {
    const std::string path = file_name("pattern");
    auto f = open_or_skip(path, (1 << 20) + 100, 4096);
    if (!f) GTEST_SKIP() << "this file system refuses direct I/O (O_DIRECT)";
    EXPECT_TRUE(f->written());
    EXPECT_EQ(f->blocks(), 256u);  // rounded down to whole blocks
    EXPECT_EQ(std::filesystem::file_size(path), 256u * 4096);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(256 * 4096);
    in.read(buf.data(), std::streamsize(buf.size()));
    for (uint64_t b : {0ull, 1ull, 77ull, 255ull})
        for (size_t i : {size_t(0), size_t(7), size_t(8), size_t(4095)})
            ASSERT_EQ(uint8_t(buf[b * 4096 + i]), k::host_table_byte(b, i)) << b << " " << i;
    f.reset();
    auto again = open_or_skip(path, 1 << 20, 4096);  // large enough: not rewritten
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->written());
    std::filesystem::remove(path);
}

TEST(BlockIo, EveryStagedRowIsItsBlocksBytesAtEveryQueueDepth) {
    const std::string path = file_name("fetch");
    auto f = open_or_skip(path, 64 * 4096, 4096);
    if (!f) GTEST_SKIP() << "this file system refuses direct I/O (O_DIRECT)";
    std::mt19937_64 rng(7);
    std::vector<uint64_t> keys(500);
    for (auto& x : keys) x = rng() % 300;  // repeats, and rows beyond the 64 blocks (wrap)
    // Brute force: distinct keys in first-seen order.
    std::vector<uint64_t> want;
    std::unordered_set<uint64_t> seen;
    for (uint64_t x : keys)
        if (seen.insert(x).second) want.push_back(x);
    for (int q : {1, 3, 8}) {
        k::BlockFetchExecutor exec(*f, 160, q);
        EXPECT_EQ(exec.queue_depth(), q);
        const auto t = exec.fetch(keys);
        EXPECT_EQ(t.lookups, keys.size());
        ASSERT_EQ(t.unique_rows, want.size());
        ASSERT_EQ(std::vector<uint64_t>(exec.last_rows().begin(), exec.last_rows().end()), want);
        const auto st = exec.staging();
        ASSERT_EQ(st.size(), want.size() * 160);
        for (size_t i = 0; i < want.size(); ++i)
            for (size_t b = 0; b < 160; ++b)
                ASSERT_EQ(st[i * 160 + b], k::host_table_byte(want[i] % 64, b))
                    << "q " << q << " row " << i << " byte " << b;
    }
    std::filesystem::remove(path);
}

// A real table file: rows packed back to back, so row r is bytes [r x 128, (r + 1) x 128) of
// the file, read through the block that holds it; the inverse index points each key at its row.
TEST(BlockIo, PackedRowsAreTheFilesBytesAtTheirOffsets) {
    const std::string path = file_name("packed");
    auto f = open_or_skip(path, 16 * 4096, 4096);
    if (!f) GTEST_SKIP() << "this file system refuses direct I/O (O_DIRECT)";
    const size_t rb = 128, rows = 16 * 4096 / rb;  // 512 rows
    std::mt19937_64 rng(11);
    std::vector<uint64_t> keys(700);
    for (auto& x : keys) x = rng() % (rows + 40);  // repeats, and rows past the file (wrap)
    k::BlockFetchExecutor exec(*f, rb, 4, k::RowLayout::Packed);
    std::vector<uint32_t> inverse;
    const auto t = exec.fetch(keys, &inverse);
    ASSERT_EQ(inverse.size(), keys.size());
    const auto st = exec.staging();
    ASSERT_EQ(st.size(), t.unique_rows * rb);
    for (size_t j = 0; j < keys.size(); ++j) {
        const uint64_t r = keys[j] % rows, offset = r * rb;
        for (size_t b = 0; b < rb; b += 31)
            ASSERT_EQ(st[inverse[j] * rb + b],
                      k::host_table_byte(offset / 4096, offset % 4096 + b))
                << "key " << keys[j] << " byte " << b;
    }
    EXPECT_THROW(k::BlockFetchExecutor(*f, 160, 2, k::RowLayout::Packed), std::invalid_argument);
    std::filesystem::remove(path);
}

TEST(BlockIo, BadSizesAreRefused) {
    EXPECT_THROW(k::BlockFile(file_name("bad"), 1 << 20, 3000), std::invalid_argument);
    EXPECT_THROW(k::BlockFile(file_name("bad"), 100, 4096), std::invalid_argument);
    const std::string path = file_name("row");
    auto f = open_or_skip(path, 4 * 4096, 4096);
    if (!f) GTEST_SKIP() << "this file system refuses direct I/O (O_DIRECT)";
    EXPECT_THROW(k::BlockFetchExecutor(*f, 8192, 2), std::invalid_argument);
    EXPECT_THROW(k::measure_read_iops(*f, 4, 2, 1), std::invalid_argument);
    std::filesystem::remove(path);
}

TEST(BlockIo, CalibrationReadsReturnRates) {
    const std::string path = file_name("cal");
    auto f = open_or_skip(path, 256 * 4096, 4096);
    if (!f) GTEST_SKIP() << "this file system refuses direct I/O (O_DIRECT)";
    EXPECT_GT(k::measure_read_latency(*f, 20, 1), 0);
    EXPECT_GT(k::measure_read_iops(*f, 4, 200, 1), 0);
    EXPECT_GT(k::measure_read_bandwidth(*f, 1 << 20, 2, 1 << 20), 0);
    std::filesystem::remove(path);
}

TEST(NvmeReadRate, KneeAndLinearLawsHaveTheirClosedForms) {
    engramsim::sim::FetchParams p;
    p.nvme_iops_per_drive = 100000;  // 10 us per read at saturation
    p.nvme_latency_s = 80e-6;
    for (int q : {1, 4, 8, 16, 128}) {
        p.nvme_queue_depth = q;
        p.nvme_queueing = engramsim::sim::FetchParams::NvmeQueueing::Knee;
        EXPECT_DOUBLE_EQ(engramsim::sim::nvme_read_rate(p), std::min(100000.0, q / 80e-6)) << q;
        p.nvme_queueing = engramsim::sim::FetchParams::NvmeQueueing::Linear;
        EXPECT_DOUBLE_EQ(engramsim::sim::nvme_read_rate(p), q / (80e-6 + (q - 1) * 10e-6)) << q;
    }
    // Both give one read per latency at depth 1; linear approaches the IOPS from below.
    p.nvme_queue_depth = 1;
    EXPECT_DOUBLE_EQ(engramsim::sim::nvme_read_rate(p), 1 / 80e-6);
    p.nvme_queue_depth = 65536;
    EXPECT_LT(engramsim::sim::nvme_read_rate(p), 100000.0);
    EXPECT_GT(engramsim::sim::nvme_read_rate(p), 99000.0);
}

TEST(NvmeReadRate, TheMeasuredLawGivesEitherLawBackFromItsSamples) {
    using engramsim::sim::FetchParams;
    using engramsim::sim::nvme_read_rate;
    FetchParams law;
    law.nvme_iops_per_drive = 100000;
    law.nvme_latency_s = 80e-6;  // the knee at 8 reads in flight
    for (auto kind : {FetchParams::NvmeQueueing::Knee, FetchParams::NvmeQueueing::Linear}) {
        law.nvme_queueing = kind;
        FetchParams curve = law;
        curve.nvme_queueing = FetchParams::NvmeQueueing::Measured;
        for (int d : {1, 8, 64}) {
            law.nvme_queue_depth = d;
            curve.nvme_iops_at_depth.push_back({double(d), nvme_read_rate(law)});
        }
        for (int q : {1, 2, 3, 5, 8, 12, 32, 63}) {
            law.nvme_queue_depth = curve.nvme_queue_depth = q;
            EXPECT_NEAR(nvme_read_rate(curve), nvme_read_rate(law), 1e-9 * nvme_read_rate(law))
                << "depth " << q << (kind == FetchParams::NvmeQueueing::Knee ? " knee" : " linear");
        }
        // Flat above the last depth.
        curve.nvme_queue_depth = 1000;
        law.nvme_queue_depth = 64;
        EXPECT_DOUBLE_EQ(nvme_read_rate(curve), nvme_read_rate(law));
    }
}

TEST(NvmeCurveDepths, PowersOfTwoBelowSaturationThatAreNotValidated) {
    using engramsim::sim::nvme_curve_depths;
    using V = std::vector<int>;
    EXPECT_EQ(nvme_curve_depths(64, {4, 32}), (V{1, 2, 8, 16, 64}));
    EXPECT_EQ(nvme_curve_depths(4, {1, 3}), (V{1, 2, 4}));
    EXPECT_EQ(nvme_curve_depths(1, {}), (V{1}));
    EXPECT_EQ(nvme_curve_depths(100, {}), (V{1, 2, 4, 8, 16, 32, 64, 100}));
    // Given depths replace the powers of 2; 1 and the saturation depth stay, each once.
    EXPECT_EQ(nvme_curve_depths(64, {4, 32}, {64, 12, 3, 12}), (V{1, 3, 12, 64}));
}

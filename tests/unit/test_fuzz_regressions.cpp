// Every input a fuzz target (fuzz/) found a bug with, fed through the same parser: each must now
// end in a clean exception whose message names the problem, never a crash, undefined behaviour,
// an allocation the file does not justify, or a silently wrong value. The inputs are the exact
// files the parsers saw (tests/data/fuzz_regressions/<target>/); docs/fuzzing.md lists the bugs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "model/kernel_profiles.h"
#include "sim/placement/replay.h"
#include "sim/sweep/sweep.h"
#include "traces/etr.h"
#include "traces/synthetic.h"
#include "traces/tokens.h"

using namespace engramsim;

namespace {

std::string data(const std::string& target, const std::string& name) {
    return std::string(ENGRAMSIM_SOURCE_DIR) + "/tests/data/fuzz_regressions/" + target + "/" + name;
}

// The message of the std::exception `f` throws ("(no error)" if it returns).
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

// Opens the trace and reads every request, then replays it through the scheduler, as
// `engramsim run` / `replay` would.
void read_whole_trace(const std::string& path) {
    TraceReader reader(path);
    TraceRequest r;
    while (reader.next(r)) {
    }
    auto source = trace_lookups(path, SchedulerConfig{});
    StepBatch batch;
    while (source->next(batch)) {
    }
}

}  // namespace

// ---- traces/synthetic.cpp (fixed) -----------------------------------------------------------

TEST(FuzzRegressions, SyntheticModelFloatWhereAnIntegerBelongs) {
    // fitted_vocabulary 1.5e30: nlohmann's get<uint64_t>() converted the float out of range
    // (UBSan: "1.51879e+30 is outside the range of representable values").
    const std::string e =
        error_of([] { load_synthetic_model(data("fuzz_synthetic", "float-fitted-vocabulary.json")); });
    EXPECT_NE(e.find("orders[0].fitted_vocabulary"), std::string::npos) << e;
    EXPECT_NE(e.find("not an integer"), std::string::npos) << e;
}

TEST(FuzzRegressions, SyntheticModelVocabularyPast32Bits) {
    // 4294967297 was read as vocabulary 1 (get<uint32_t>() wraps).
    const std::string e =
        error_of([] { load_synthetic_model(data("fuzz_synthetic", "wrapped-vocabulary.json")); });
    EXPECT_NE(e.find("vocabulary: 4294967297 is not an integer in [0, 4294967295]"), std::string::npos)
        << e;
}

TEST(FuzzRegressions, SyntheticModelDiscountOutsideItsDomain) {
    // token_d 5 was accepted: the stream then draws with "probabilities" above 1.
    const std::string e =
        error_of([] { load_synthetic_model(data("fuzz_synthetic", "discount-out-of-range.json")); });
    EXPECT_NE(e.find("token_d: a discount, in [0, 1)"), std::string::npos) << e;
}

TEST(FuzzRegressions, SyntheticModelFloatSchemaVersion) {
    // j.value("schema_version", 0) converted 1e30 to int (undefined).
    const std::string e =
        error_of([] { load_synthetic_model(data("fuzz_synthetic", "float-schema-version.json")); });
    EXPECT_NE(e.find("schema_version"), std::string::npos) << e;
    EXPECT_NE(e.find("is not 2"), std::string::npos) << e;
}

// ---- traces/etr.cpp (fixed) -----------------------------------------------------------------

TEST(FuzzRegressions, EtrMetadataLengthBeyondTheFile) {
    // meta_len 0xFFFFFF00: the reader allocated 4 GiB before checking it against the file.
    const std::string e = error_of([] { TraceReader r(data("fuzz_etr", "huge-meta-length.etr")); });
    EXPECT_NE(e.find("truncated: the header's metadata"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrPayloadSizeThatWrapsTheOffset) {
    // payload_bytes 2^64 - 1: offset + size wrapped past the truncation check.
    const std::string e =
        error_of([] { TraceReader r(data("fuzz_etr", "wrapping-payload-size.etr")); });
    EXPECT_NE(e.find("truncated: block 0"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrUncompressedSizeTheLengthsDoNotJustify) {
    // raw_bytes 1 TiB: load_block allocated it before decompressing.
    const std::string e = error_of([] { read_whole_trace(data("fuzz_etr", "huge-raw-size.etr")); });
    EXPECT_NE(e.find("block 0"), std::string::npos) << e;
    EXPECT_NE(e.find("uncompressed"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrHeaderCountsThatDisagreeWithTheBlocks) {
    // A header (with a valid checksum) claiming 1000 more tokens than the blocks hold was
    // trusted.
    const std::string e =
        error_of([] { TraceReader r(data("fuzz_etr", "header-tokens-disagree.etr")); });
    EXPECT_NE(e.find("tokens"), std::string::npos) << e;
    EXPECT_NE(e.find("(corrupt)"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrEngramMetadataOutsideTheSchema) {
    // n_head_per_ngram 0 in the header's engram section: EngramConfig::from_json divided by it
    // (SIGFPE). The section is now resolved against the config schema first.
    const std::string e =
        error_of([] { TraceReader r(data("fuzz_etr", "zero-heads-in-metadata.etr")); });
    EXPECT_NE(e.find("header metadata unreadable"), std::string::npos) << e;
    EXPECT_NE(e.find("n_head_per_ngram"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrPayloadLengthsThatDisagreeWithTheBlockHeader) {
    // Two requests' payload records swapped (checksums and sizes valid): the scheduler sized
    // slices by the block's lengths and read the payload's shorter rows past their end.
    const std::string e =
        error_of([] { read_whole_trace(data("fuzz_etr", "payload-lengths-disagree.etr")); });
    EXPECT_NE(e.find("in the block header (corrupt)"), std::string::npos) << e;
}

TEST(FuzzRegressions, EtrRefusedTraceClosesItsFile) {
    // TraceReader's constructor threw with the file still open (no destructor runs), so every
    // refused trace leaked a descriptor: fuzz_etr ran out of them after ~1000 inputs
    // ("cannot create /tmp/engramsim-fuzz-....etr").
    auto open_descriptors = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                             std::filesystem::directory_iterator{});
    };
    const auto before = open_descriptors();
    for (int i = 0; i < 50; ++i)
        EXPECT_THROW(TraceReader(data("fuzz_etr", "header-tokens-disagree.etr")), TraceError);
    EXPECT_EQ(open_descriptors(), before);
}

// ---- sim/sweep/sweep.cpp (fixed) ------------------------------------------------------------------

TEST(FuzzRegressions, SweepSpecWithoutAxes) {
    // A spec with a valid base and no "axes": const operator[] on a missing key (an assertion
    // in debug builds, undefined behaviour in release ones).
    std::ifstream in(data("fuzz_sweep", "no-axes.json"));
    const nlohmann::json doc = nlohmann::json::parse(in);
    const std::string e = error_of([&] { sim::parse_sweep_spec(doc, "no-axes.json"); });
    EXPECT_NE(e.find("axes"), std::string::npos) << e;
    EXPECT_NE(e.find("non-empty array"), std::string::npos) << e;
}

// ---- Reported to the owners of traces/tokens.cpp and sim/placement/replay.cpp ---------------

TEST(FuzzRegressions, CompressMapThatCannotBeDense) {
    // A 4-byte map holding id 0xFFFFFFFF: the constructor allocates max_id / 8 bytes (512 MiB)
    // before finding that ids 0.. are unused. The error must come without that allocation.
    const std::string e =
        error_of([] { CompressMap::load(data("fuzz_tokens", "sparse-map.u32.bin")); });
    EXPECT_NE(e.find("compression map"), std::string::npos) << e;
}

TEST(FuzzRegressions, CapacityPast64BitsOfRows) {
    // uint64_t(1e30) is undefined (UBSan: float-cast-overflow); "1e17GiB" gave 0 rows.
    for (const char* text : {"1e30 rows", "1e17GiB"}) {
        const std::string e =
            error_of([&] { placement::parse_capacity_rows(text, 80, 1000); });
        EXPECT_NE(e.find(text), std::string::npos) << e;
    }
}

// ---- model/kernel_profiles.cpp (fixed) --------------------------------------------------------

// fuzz_kernel_profiles: provenance.sm_count 7.8e54 was converted to int by nlohmann's value()
// (undefined behaviour); integer fields are now read with their type and range checked. The
// file is the fuzzer's input: one selector byte, then the profile's JSON.
TEST(FuzzRegressions, KernelProfileFloatWhereAnIntegerBelongs) {
    std::ifstream in(data("fuzz_kernel_profiles", "float-sm-count.bin"), std::ios::binary);
    const std::string bytes(std::istreambuf_iterator<char>(in), {});
    ASSERT_GT(bytes.size(), 1u);
    const auto doc = nlohmann::json::parse(bytes.begin() + 1, bytes.end());
    const std::string e = error_of([&] {
        engramsim::KernelProfiles p;
        p.add(doc, "float-sm-count.json");
    });
    EXPECT_NE(e.find("provenance.sm_count: expected an integer"), std::string::npos) << e;
}

// The harness's own bug, not the library's: the profile's variant "cpuvau/fp8_e4m3" contains
// "uva", so the harness marked its op uva=1, then its dim-dropping step erased that marker, and
// seconds() rightly gave no time (a plain op, a kernel profiled only as read from host memory).
// Pinned both ways: the marker selects the UVA profile, and without it there is none to use.
TEST(FuzzRegressions, KernelProfileUvaMarkerSelectsTheVariant) {
    std::ifstream in(data("fuzz_kernel_profiles", "uva-marker-dropped.bin"), std::ios::binary);
    const std::string bytes(std::istreambuf_iterator<char>(in), {});
    ASSERT_GT(bytes.size(), 1u);
    engramsim::KernelProfiles p;
    p.add(nlohmann::json::parse(bytes.begin() + 1, bytes.end()), "uva-marker-dropped.json");
    engramsim::OpShape op;
    op.kernel = "attentionengram_gattop_ksher";
    op.dtype = "fp8_e4m3";
    op.dims = {{"tokens", 4096}};
    op.bytes = 671744.0;
    EXPECT_FALSE(p.seconds(op).has_value()) << "a plain op priced from a UVA-only profile";
    op.dims["uva"] = 1;
    const auto t = p.seconds(op);
    ASSERT_TRUE(t.has_value());
    EXPECT_DOUBLE_EQ(*t, 0.0195093905);  // the point's own median_s: an exact match
}

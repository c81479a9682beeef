// The .etr trace file: round trips (row ids identical to hashing directly), serving-order
// lookups identical to hashing on the fly, and every kind of damage detected with its place.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/config.h"
#include "traces/trace_make.h"

using namespace engramsim;
using nlohmann::json;

namespace {

struct Fixture {
    json engram = config::load("demo-v1")["engram"];
    json workload_spec;
    Workload workload;
    std::string path;

    explicit Fixture(const std::string& name, int requests = 9) {
        workload_spec = config::load("handbook-en")["workload"];
        workload_spec["num_requests"] = requests;
        workload_spec["output_len"] = {{"dist", "uniform"}, {"min", 5}, {"max", 60},
                                       {"value", 1}, {"file", ""}};
        workload = make_workload(workload_spec);
        path = ::testing::TempDir() + name;
        make_trace(path, engram, workload, workload_spec);
    }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

void patch(const std::string& path, uint64_t offset, char xor_mask) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(long(offset));
    char c;
    f.read(&c, 1);
    c = char(c ^ xor_mask);
    f.seekp(long(offset));
    f.write(&c, 1);
}

}  // namespace

TEST(Etr, RoundTripGivesTheRowIdsOfDirectHashing) {
    Fixture fx("roundtrip.etr");
    TraceReader reader(fx.path);
    EXPECT_EQ(reader.header().requests, 9u);
    EXPECT_TRUE(reader.header().complete);
    const RequestHasher hash(EngramConfig::from_json(fx.engram));
    TraceRequest got;
    size_t i = 0;
    uint64_t tokens = 0;
    while (reader.next(got)) {
        const TraceRequest want = hash(fx.workload.requests[i]);
        EXPECT_EQ(got.id, want.id);
        EXPECT_EQ(got.prompt_len, want.prompt_len);
        EXPECT_EQ(got.output_len, want.output_len);
        EXPECT_EQ(got.canonical, want.canonical);
        EXPECT_EQ(got.rows, want.rows);
        tokens += got.canonical.size();
        ++i;
    }
    EXPECT_EQ(i, 9u);
    EXPECT_EQ(reader.header().tokens, tokens);
    EXPECT_EQ(reader.header().lookups, tokens * 16 * 2);
    // Random access agrees with the stream.
    EXPECT_EQ(reader.request(5).rows, hash(fx.workload.requests[5]).rows);
}

TEST(Etr, SameInputSameBytes) {
    Fixture a("same_a.etr"), b("same_b.etr");
    std::ifstream fa(a.path, std::ios::binary), fb(b.path, std::ios::binary);
    std::string sa((std::istreambuf_iterator<char>(fa)), {});
    std::string sb((std::istreambuf_iterator<char>(fb)), {});
    EXPECT_EQ(sa, sb);
}

TEST(Etr, ServingOrderFromTheFileEqualsHashingOnTheFly) {
    Fixture fx("serving.etr", 20);
    SchedulerConfig sched;
    sched.max_num_seqs = 5;
    sched.kv_block_size = 16;
    sched.num_kv_blocks = 400;  // some preemption
    auto from_file = trace_lookups(fx.path, sched);
    auto on_the_fly = hashed_lookups(EngramConfig::from_json(fx.engram), fx.workload, sched);
    StepBatch a, b;
    uint64_t steps = 0;
    while (on_the_fly->next(b)) {
        ASSERT_TRUE(from_file->next(a));
        ASSERT_EQ(a.step, b.step);
        ASSERT_EQ(a.tokens, b.tokens);
        ASSERT_EQ(a.rows, b.rows) << "step " << b.step;
        ++steps;
    }
    EXPECT_FALSE(from_file->next(a));
    EXPECT_GT(steps, 60u);
}

TEST(Etr, FlippedPayloadByteIsAChecksumErrorWithBlockAndOffset) {
    Fixture fx("flip.etr");
    const auto size = std::filesystem::file_size(fx.path);
    patch(fx.path, size - 10, 0x5a);  // inside the last block's payload
    TraceReader reader(fx.path);      // headers are intact
    TraceRequest r;
    const std::string e = error_of([&] {
        while (reader.next(r)) {
        }
    });
    EXPECT_NE(e.find("block 0 at byte offset"), std::string::npos) << e;
    EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
}

TEST(Etr, MultiBlockFlipNamesTheRightBlock) {
    Fixture fx("flip2.etr", 9);
    // Remake with 2 requests per block: 5 blocks.
    TraceWriter w(fx.path, fx.engram, json::object(), 2);
    const RequestHasher hash(EngramConfig::from_json(fx.engram));
    for (const auto& req : fx.workload.requests) w.add(hash(req));
    w.finish();
    TraceReader clean(fx.path);
    EXPECT_EQ(clean.header().blocks, 5u);
    const auto size = std::filesystem::file_size(fx.path);
    patch(fx.path, size - 3, 0x01);
    TraceReader reader(fx.path);
    const std::string e = error_of([&] { reader.request(8); });
    EXPECT_NE(e.find("block 4 at byte offset"), std::string::npos) << e;
    EXPECT_NO_THROW(reader.request(1));  // earlier blocks still read
}

TEST(Etr, CorruptHeaderIsDetected) {
    Fixture fx("header.etr");
    patch(fx.path, 70, 0x20);  // inside the metadata JSON
    EXPECT_NE(error_of([&] { TraceReader r(fx.path); }).find("header checksum mismatch"),
              std::string::npos);
    Fixture fy("magic.etr");
    patch(fy.path, 0, 0x01);
    EXPECT_NE(error_of([&] { TraceReader r(fy.path); }).find("not an EngramSim trace"),
              std::string::npos);
}

TEST(Etr, TruncationIsDetectedWithTheBlockAndOffset) {
    Fixture fx("trunc.etr");
    const auto size = std::filesystem::file_size(fx.path);
    std::filesystem::resize_file(fx.path, size - 100);
    const std::string e = error_of([&] { TraceReader r(fx.path); });
    EXPECT_NE(e.find("truncated: block 0 at byte offset"), std::string::npos) << e;
    EXPECT_NE(e.find("the file ends at " + std::to_string(size - 100)), std::string::npos) << e;
    std::filesystem::resize_file(fx.path, 30);
    EXPECT_NE(error_of([&] { TraceReader r(fx.path); }).find("truncated: the header"),
              std::string::npos);
}

TEST(Etr, UnfinishedWriterLeavesAnIncompleteTrace) {
    const json engram = config::load("demo-v1")["engram"];
    const std::string path = ::testing::TempDir() + "incomplete.etr";
    {
        TraceWriter w(path, engram, json::object(), 1);
        Workload wl = nano_vllm_workload(2);
        const RequestHasher hash(EngramConfig::from_json(engram));
        w.add(hash(wl.requests[0]));
        w.add(hash(wl.requests[1]));
        // destroyed without finish(): as if the process died
    }
    EXPECT_NE(error_of([&] { TraceReader r(path); }).find("incomplete trace"), std::string::npos);
}

TEST(Etr, TraceForAnotherConfigIsRefusedByName) {
    Fixture fx("config.etr");
    TraceReader reader(fx.path);
    EXPECT_NO_THROW(reader.require_engram(EngramConfig::from_json(fx.engram), "demo-v1"));
    json other = fx.engram;
    other["seed"] = 1;
    const std::string e = error_of(
        [&] { reader.require_engram(EngramConfig::from_json(other), "my-seed-1"); });
    EXPECT_NE(e.find("trace was made for Engram config 'demo-v1'"), std::string::npos) << e;
    EXPECT_NE(e.find("not for 'my-seed-1'"), std::string::npos) << e;
    // dtype does not change row ids, so it does not change the hash
    other = fx.engram;
    other["dtype"] = "fp8_e4m3";
    EXPECT_NO_THROW(reader.require_engram(EngramConfig::from_json(other), "fp8"));
}

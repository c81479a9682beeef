// Hostile but plausible input, as a new user types it: every case gets exit status 1, the
// `engramsim: error:` prefix on stderr and a message that names the problem (the key's JSON path,
// the option, the file), never a crash, a silent wrong result or an ignored option. One test per
// case of issue 15, and more of the same kinds.
#include <gtest/gtest.h>

#include <cstdio>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/cli_runner.h"

namespace {

using Result = engramsim::test::CliResult;

Result run(const std::string& args) {
    return engramsim::test::run_engramsim(args);
}

// The files written, removed when the test program exits (they were left in /tmp, a few
// hundred a run).
struct Written {
    std::vector<std::string> paths;
    ~Written() {
        for (const auto& p : paths) std::remove(p.c_str());
    }
};
Written written;

// A file in the test temp folder holding `bytes`, unique per process.
std::string write(const std::string& name, const std::string& bytes) {
    const std::string path =
        ::testing::TempDir() + "hostile_" + std::to_string(getpid()) + "_" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    written.paths.push_back(path);
    return path;
}

// A small run config with `extra` sections merged in (JSON text after the common ones).
std::string run_config(const std::string& name, const std::string& extra) {
    return write(name, R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 8})" +
                           (extra.empty() ? std::string() : ", " + extra) + "}");
}

// The refusal every hostile input must get: status 1, nothing on stdout, one prefixed error
// that contains each of `needles`.
void expect_refused(const Result& r, const std::vector<std::string>& needles) {
    EXPECT_EQ(r.status, 1) << "stdout: " << r.out.substr(0, 400) << "\nstderr: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 400);
    EXPECT_EQ(r.err.rfind("engramsim: error: ", 0), 0u) << r.err;
    for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << n << "\n" << r.err;
}

}  // namespace

// ---- A crash: empty token files (the summary printer read past an empty vector) -------------

TEST(HostileInputs, EmptyTokenFilesAreRefusedInEveryFormat) {
    for (const char* name : {"empty.u32.bin", "empty.u16.bin", "empty.bin"}) {
        const std::string path = write(name, "");
        expect_refused(run("trace hash --engram demo-v1 --tokens " + path),
                       {path, "no token ids", "empty file"});
        expect_refused(run("trace hash --engram demo-v1 --tokens " + path + " --json"),
                       {path, "no token ids"});
    }
    const std::string json = write("empty.json", "[]");
    expect_refused(run("trace hash --engram demo-v1 --tokens " + json),
                   {json, "no token ids", "empty array"});
}

// ---- Silent wrong answers --------------------------------------------------------------------

TEST(HostileInputs, CapacitiesPastSixtyFourBitsAreRefused) {
    const std::string in = "--engram demo-v1 --workload nano-vllm-512";
    expect_refused(run("replay " + in + " --capacity 1e17GiB"),
                   {"capacity '1e17GiB'", "does not fit 64-bit bytes"});
    expect_refused(run("replay " + in + " --capacity 100000000000000000000000"),
                   {"capacity '100000000000000000000000'", "more rows than 64 bits"});
    expect_refused(run("replay " + in + " --capacity 1e30rows"), {"more rows than 64 bits"});
    const std::string cfg =
        run_config("cap30.json", R"("placement": {"hbm_capacity": "1e30 GiB"})");
    expect_refused(run("run " + cfg), {"placement.hbm_capacity", "does not fit 64-bit bytes"});
    expect_refused(run("config show " + cfg), {"placement.hbm_capacity"});
}

TEST(HostileInputs, OddLengthSixteenBitTokenFilesAreRefusedNotTruncated) {
    const std::string path = write("odd.u16.bin", std::string("\x01\x00\x02", 3));
    expect_refused(run("trace hash --engram demo-v1 --tokens " + path),
                   {path, "3 bytes is not a whole number of 2-byte ids"});
}

TEST(HostileInputs, RowBytesMustBeAFinitePositiveNumber) {
    const std::string ids = write("ids.u64", std::string(16, '\0'));
    for (const char* v : {"nan", "inf", "-1", "0", "1e400"}) {
        const Result r = run("replay --ids " + ids + " --capacity 1 --row-bytes " + v);
        expect_refused(r, {"--row-bytes"});
        EXPECT_LT(r.err.size(), 400u) << "a short message, not DBL_MAX in digits: " << r.err;
    }
    expect_refused(run("replay --engram demo-v1 --workload nano-vllm-512 --row-bytes 160"),
                   {"--row-bytes is for --ids only"});
}

TEST(HostileInputs, LatenciesAboveASecondAreRefusedWithTheirKey) {
    const std::string cfg = run_config(
        "lat.json", R"("hardware": {"base": "h800-pcie5", "host_link": {"latency": "1e30 s"}})");
    expect_refused(run("run " + cfg), {"hardware.host_link.latency", "out of range", "1 s"});
    expect_refused(run("config show " + cfg), {"hardware.host_link.latency"});
}

// ---- Exit codes and prefixes -----------------------------------------------------------------

TEST(HostileInputs, ParseErrorsExitOneWithThePrefixAndNameTheOption) {
    expect_refused(run("run"), {"config is required"});
    expect_refused(run("run --bogus x.json"), {"--bogus"});
    expect_refused(run("replay --mrc-points 0 --engram demo-v1 --workload nano-vllm-512"),
                   {"--mrc-points"});
    expect_refused(run("sweep x.json -j 0"), {"--jobs"});
    expect_refused(run("no-such-command"), {"no-such-command"});
    // Help and version still exit 0.
    EXPECT_EQ(run("--help").status, 0);
    EXPECT_EQ(run("--version").status, 0);
    EXPECT_EQ(run("run --help").status, 0);
}

// ---- Options ignored without a word ----------------------------------------------------------

TEST(HostileInputs, PaperTable4RefusesSweepOptionsItWouldIgnore) {
    const std::string dir = engramsim::test::temp_path("hostile", "t4");
    for (const char* opt : {"--plot", "-j 2", "--resume", "--list"}) {
        expect_refused(run("study run paper-table4 --no-sensitivity -o " + dir + " " + opt),
                       {"paper-table4 is not a sweep"});
        EXPECT_FALSE(std::filesystem::exists(dir)) << "nothing is written when refused: " << opt;
    }
    expect_refused(run("study run zipf-hierarchy --no-sensitivity --list"),
                   {"--no-sensitivity is for paper-table4 only"});
}

TEST(HostileInputs, PaperTable4WritesResultsWhereMinusOSays) {
    const std::string dir = engramsim::test::temp_path("hostile", "t4out");
    const Result r = run("study run paper-table4 --no-sensitivity -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string doc = engramsim::test::read_file(dir + "/results.json");
    EXPECT_NE(doc.find("\"rows\""), std::string::npos) << doc.substr(0, 400);
    std::filesystem::remove_all(dir);
}

TEST(HostileInputs, HelpTextsSayWhatTheOptionsDo) {
    Result r = run("study run --help");
    EXPECT_NE(r.out.find("study-NAME"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("sweep-NAME"), std::string::npos) << r.out;
    r = run("run --help");
    EXPECT_NE(r.out.find("needs -o DIR"), std::string::npos) << r.out;
    expect_refused(run("run dense-4b --timeline"), {"--timeline", "-o"});
}

// ---- Resource guard --------------------------------------------------------------------------

TEST(HostileInputs, WorkloadsBeyondThisMachinesMemoryAreRefusedUpFront) {
    const std::string cfg = run_config(
        "huge.json", R"("workload": {"base": "nano-vllm-512", "num_requests": 4000000000})");
    expect_refused(run("run " + cfg), {"workload: needs about", "GB in memory",
                                       "4000000000 requests (num_requests)", "available"});
    const std::string longer =
        run_config("long.json", R"("workload": {"base": "nano-vllm-512", "num_requests": 8,
            "prompt_len": {"dist": "uniform", "min": 100, "max": 2000000000}})");
    expect_refused(run("run " + longer), {"workload: needs about", "2000000000 (prompt_len)"});
    const std::string too_many = run_config(
        "toomany.json", R"("workload": {"base": "nano-vllm-512", "num_requests": 5000000000})");
    expect_refused(run("config show " + too_many), {"workload.num_requests", "out of range"});
}

// ---- Messages that name the cause ------------------------------------------------------------

TEST(HostileInputs, AnHbmCacheLargerThanHbmNamesTheSizesAndTheKey) {
    const std::string cfg = run_config("hbm300.json", R"("placement": {"hbm_capacity": "300 GB"})");
    expect_refused(run("run " + cfg), {"no HBM left for the KV cache", "hardware.gpu.hbm_capacity",
                                       "placement.hbm_capacity", "GB"});
}

TEST(HostileInputs, HugeTableSizesNameTheirRange) {
    const std::string cfg = write(
        "vocab.json", R"({"engram": {"base": "demo-v1", "engram_vocab_size": [1e30, 1e30]}})");
    expect_refused(run("config show " + cfg), {"engram.engram_vocab_size[0]", "out of range"});
}

TEST(HostileInputs, AJsonFileThatIsNotASyntheticModelSaysSo) {
    int i = 0;
    for (const char* body :
         {R"({"hello": [1, 2, 3]})", "[1, 2]", "42", "{not json",
          R"({"kind": "engramsim.synthetic_model", "schema_version": 2, "corpus": 7})"}) {
        const std::string model = write("notmodel" + std::to_string(i) + ".json", body);
        const std::string cfg = run_config(
            "synth" + std::to_string(i++) + ".json",
            R"("workload": {"kind": "synthetic", "num_requests": 8, "synthetic_model": ")" + model +
                R"("})");
        const Result r = run("run " + cfg);
        expect_refused(r, {"workload.synthetic_model", model, "synthetic model"});
        EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
    }
}

TEST(HostileInputs, NegativeCapacitiesSayNegative) {
    expect_refused(run("replay --engram demo-v1 --workload nano-vllm-512 --capacity -5"),
                   {"capacity '-5'", "negative"});
}

TEST(HostileInputs, ZeroRatesAreRefusedAtResolutionWithTheirKey) {
    for (const auto& [key, value] :
         std::vector<std::pair<std::string, std::string>>{{"hbm_bandwidth", "0 TB/s"},
                                                          {"bf16_dense_flops", "0 TFLOP/s"},
                                                          {"boost_clock", "0 GHz"}}) {
        const std::string cfg =
            write("zero_" + key + ".json", R"({"hardware": {"base": "h800-pcie5", "gpu": {")" +
                                               key + R"(": ")" + value + R"("}}})");
        expect_refused(run("config show " + cfg), {"hardware.gpu." + key, "out of range"});
    }
    const std::string sim = write("zero_sim.json", R"({"sim": {"hash_rate_per_thread": 0}})");
    expect_refused(run("config show " + sim), {"sim.hash_rate_per_thread", "out of range"});
}

// ---- Small output faults ---------------------------------------------------------------------

TEST(HostileInputs, StepsCsvWritesByteCountsInFullDigits) {
    const std::string csv = engramsim::test::temp_path("hostile", "steps") + ".csv";
    const Result r =
        run("replay --engram demo-v1 --workload nano-vllm-512 --capacity 1% --steps-csv " + csv +
            " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string text = engramsim::test::read_file(csv);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.find("e+"), std::string::npos) << text.substr(0, 600);
    std::remove(csv.c_str());
}

TEST(HostileInputs, ReplayRefusesOptionsThatWouldDoNothing) {
    const std::string in = "replay --engram demo-v1 --workload nano-vllm-512 --capacity 1%";
    expect_refused(run(in + " --mrc-points 10"), {"--mrc-points does nothing here", "--mrc"});
    expect_refused(run(in + " --threads 2"), {"--threads does nothing here"});
    expect_refused(run(in + ",2% --mrc --mrc-points 10"), {"--mrc-points", "several --capacity"});
    expect_refused(run(in + " --profile-fraction 0.5"),
                   {"--profile-fraction does nothing here", "static"});
    expect_refused(run(in + " --tiers exclusive"), {"--tiers does nothing here", "--dram"});
    expect_refused(run(in + " --dram-policy lfu"), {"--dram-policy does nothing here"});
    const std::string ids = write("ids2.u64", std::string(16, '\0'));
    expect_refused(run("replay --ids " + ids + " --capacity 1 --max-num-seqs 4"),
                   {"--max-num-seqs does nothing here", "--ids"});
}

TEST(HostileInputs, DirectoriesAndEmptyIdFilesAreNamedAsSuch) {
    const std::string dir = engramsim::test::temp_path("hostile", "dir");
    std::filesystem::create_directories(dir);
    expect_refused(run("config show " + dir), {dir, "is a directory"});
    expect_refused(run("run " + dir), {dir, "is a directory"});
    expect_refused(run("trace hash --tokens " + dir + "/x.u32.bin"), {"cannot open"});
    std::filesystem::create_directories(dir + "/t.u32.bin");
    expect_refused(run("trace hash --tokens " + dir + "/t.u32.bin"), {"is a directory"});
    expect_refused(run("replay --ids " + dir + " --capacity 1"), {dir, "is a directory"});
    const std::string empty = write("empty.u64", "");
    expect_refused(run("replay --ids " + empty + " --capacity 1"), {empty, "holds no ids"});
    const std::string broken = write("broken.json", "{\n");
    const Result r = run("config show " + broken);
    expect_refused(r, {broken, "not valid JSON", "line 2"});
    EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
    std::filesystem::remove_all(dir);
}

TEST(HostileInputs, NegativeNumbersAreNotReadAsHugeUnsignedOnes) {
    const std::string etr = engramsim::test::temp_path("hostile", "neg") + ".etr";
    ASSERT_EQ(run("trace make --engram demo-v1 --workload nano-vllm-512 -q -o " + etr).status, 0);
    expect_refused(run("trace dump " + etr + " --request -1"), {"--request", "negative"});
    expect_refused(run("trace dump " + etr + " --tokens -3"), {"--tokens", "negative"});
    expect_refused(run("trace dump " + etr + " --request 99999999999999999999"),
                   {"--request", "does not fit 64 bits"});
    expect_refused(run("trace fit --seed -5"), {"--seed", "negative"});
    std::remove(etr.c_str());
}

TEST(HostileInputs, ValidationTablesBeyondMemoryOrDiskAreRefusedBeforeAnyWork) {
    expect_refused(run("validate host-fetch --table 1e30GiB"), {"--table", "does not fit 64-bit"});
    expect_refused(run("validate host-fetch --table 64PiB"),
                   {"--table", "needs about", "in memory", "available"});
    const std::string file = engramsim::test::temp_path("hostile", "nvme") + ".bin";
    expect_refused(run("validate nvme-fetch --file " + file + " --size 16383PiB"),
                   {"--size", "free"});
    EXPECT_FALSE(std::filesystem::exists(file)) << "nothing written when refused";
}

TEST(HostileInputs, ABadCompressionMapNamesItsKey) {
    const std::string map = write("map.u32.bin", "not a map");
    const std::string cfg =
        run_config("map.json",
                   R"("engram": {"base": "paper-offload-100b", "compress_map": ")" + map + R"("})");
    expect_refused(run("run " + cfg), {"engram.compress_map", map, "9 bytes"});
}

TEST(HostileInputs, SweepListRefusesOptionsForTheRun) {
    for (const char* opt : {"-j 2", "--resume", "--plot", "--json", "-o somewhere"})
        expect_refused(
            run(std::string("sweep dense-4b --axis sim.table=hbm,host-dram --list ") + opt),
            {"does nothing with --list"});
    const Result ok = run("sweep dense-4b --axis sim.table=hbm,host-dram --list");
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_NE(ok.out.find("2 points"), std::string::npos) << ok.out;
}

TEST(HostileInputs, APrefetchLayerTheBackboneDoesNotHaveIsRefused) {
    const std::string cfg = run_config("k999.json", R"("sim": {"schedule": "layer-ahead:999"})");
    expect_refused(run("run " + cfg), {"sim.schedule", "layer-ahead:999", "layers 0..35"});
}

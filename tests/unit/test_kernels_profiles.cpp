// KernelProfiles (model/kernel_profiles.h): lookup and interpolation against closed-form times
// on synthetic profiles, the profile writer's format read back, and the committed profiles/.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "kernels/profiler/profile.h"
#include "model/kernel_profiles.h"

using namespace engramsim;

namespace {

// A profile whose time is t(tokens) = fixed_s + tokens * per_token_s at the given shapes.
nlohmann::json synthetic(const std::string& kernel, const std::string& variant,
                         const std::string& dtype, std::map<std::string, double> other,
                         std::vector<double> tokens, double fixed_s, double per_token_s,
                         double bytes_per_token) {
    nlohmann::json points = nlohmann::json::array();
    for (double t : tokens) {
        auto dims = other;
        dims[KernelProfiles::primary_dim(kernel)] = t;
        points.push_back({{"dims", dims}, {"dtype", dtype}, {"bytes", bytes_per_token * t},
                          {"flops", 2 * bytes_per_token * t}, {"median_s", fixed_s + t * per_token_s}});
    }
    return {{"schema", "engramsim.kernel_profile"},
            {"version", 1},
            {"kernel", kernel},
            {"variant", variant},
            {"provenance", {{"device_kind", "cuda"}, {"device_name", "Test GPU"}, {"sm_count", 7},
                            {"commit", "abc123"}, {"date_utc", "2026-01-01T00:00:00Z"},
                            {"timing", "cupti_kernel_activity"}}},
            {"points", points}};
}

OpShape op(const std::string& kernel, std::map<std::string, double> dims,
           const std::string& dtype = "bf16", double bytes = 0, double flops = 0) {
    return OpShape{.kernel = kernel, .dims = std::move(dims), .flops = flops, .bytes = bytes,
                   .dtype = dtype};
}

}  // namespace

TEST(KernelProfiles, InterpolatesAlongTokensAndExtrapolates) {
    KernelProfiles kp;
    // t = 2 us + 1 ns per token, measured at 1K, 4K, 16K tokens.
    kp.add(synthetic("engram_gate", "cuda", "bf16", {{"hidden", 2560}, {"branches", 4}},
                     {1024, 4096, 16384}, 2e-6, 1e-9, 100),
           "mem:gate");
    const std::map<std::string, double> other = {{"hidden", 2560}, {"branches", 4}};
    auto at = [&](double tokens) {
        auto d = other;
        d["tokens"] = tokens;
        return kp.seconds(op("engram_gate", d)).value();
    };
    EXPECT_DOUBLE_EQ(at(4096), 2e-6 + 4096e-9);             // a measured shape
    EXPECT_NEAR(at(2048), 2e-6 + 2048e-9, 1e-15);            // on the line between two
    EXPECT_NEAR(at(65536), (2e-6 + 16384e-9) * 4, 1e-15);    // above: largest shape's throughput
    EXPECT_NEAR(at(512), 2e-6 + 512e-9, 1e-15);              // below: the first segment's line
    EXPECT_FALSE(kp.seconds(op("engram_conv", {{"tokens", 10}})).has_value());
    EXPECT_THROW(kp.seconds(op("engram_gate", {{"hidden", 2560}})), std::invalid_argument);
    EXPECT_NE(kp.provenance("engram_gate").find("Test GPU"), std::string::npos);
    EXPECT_NE(kp.provenance("engram_gate").find("abc123"), std::string::npos);
    EXPECT_EQ(kp.provenance("engram_conv"), "");
}

TEST(KernelProfiles, BelowTheSmallestShapeNeverBelowProportional) {
    KernelProfiles kp;
    // Negative intercept (t = -1 us + 2 ns/token): the line would go below zero near 0.
    kp.add(synthetic("router_topk", "cpu", "f32", {{"experts", 72}, {"top_k", 6}},
                     {1000, 2000}, -1e-6, 2e-9, 10),
           "mem:router");
    const double t = kp.seconds(op("router_topk", {{"tokens", 100}, {"experts", 72}, {"top_k", 6}})).value();
    EXPECT_NEAR(t, 1e-6 * 100 / 1000, 1e-15);  // t_0 * x / x_0
}

TEST(KernelProfiles, UnmeasuredOtherDimsScaleByWork) {
    KernelProfiles kp;
    kp.add(synthetic("engram_gather", "cuda/bf16", "bf16", {{"heads", 16}, {"row_bytes", 160}},
                     {1024, 4096}, 0, 1e-9, 16 * 324),
           "mem:gather-bf16");
    kp.add(synthetic("engram_gather", "cuda/fp8_e4m3", "fp8_e4m3", {{"heads", 16}, {"row_bytes", 80}},
                     {1024, 4096}, 0, 0.6e-9, 16 * 164),
           "mem:gather-fp8");
    kp.add(synthetic("engram_gather", "cuda-uva/bf16", "bf16", {{"heads", 16}, {"row_bytes", 160}},
                     {1024, 4096}, 0, 50e-9, 16 * 324),
           "mem:gather-uva");
    // dtype picks the variant; uva picks the host-memory one.
    EXPECT_NEAR(kp.seconds(op("engram_gather", {{"tokens", 2048}, {"heads", 16}, {"row_bytes", 160}})).value(),
                2048e-9, 1e-15);
    EXPECT_NEAR(kp.seconds(op("engram_gather", {{"tokens", 2048}, {"heads", 16}, {"row_bytes", 80}}, "fp8_e4m3")).value(),
                2048 * 0.6e-9, 1e-15);
    EXPECT_NEAR(kp.seconds(op("engram_gather", {{"tokens", 2048}, {"heads", 16}, {"row_bytes", 160}, {"uva", 1}})).value(),
                2048 * 50e-9, 1e-13);
    // 24 heads were never measured: the bf16 16-head curve scaled by bytes (24 / 16).
    const double bytes24 = 2048.0 * 24 * 324;
    EXPECT_NEAR(kp.seconds(op("engram_gather", {{"tokens", 2048}, {"heads", 24}, {"row_bytes", 160}}, "bf16", bytes24)).value(),
                2048e-9 * 1.5, 1e-15);
    // Without stated bytes: the ratio of the other dims' products.
    EXPECT_NEAR(kp.seconds(op("engram_gather", {{"tokens", 2048}, {"heads", 32}, {"row_bytes", 160}})).value(),
                2048e-9 * 2, 1e-15);
}

TEST(KernelProfiles, GemmInterpolatesAlongMAndScalesByFlops) {
    KernelProfiles kp;
    kp.add(synthetic("gemm", "cuda/cublas", "bf16", {{"n", 4096}, {"k", 4096}}, {256, 1024}, 5e-6,
                     1e-8, 1000),
           "mem:gemm");
    EXPECT_NEAR(kp.seconds(op("gemm", {{"m", 512}, {"n", 4096}, {"k", 4096}})).value(), 5e-6 + 512e-8, 1e-15);
    // k doubled: twice the FLOPs of the measured (n, k) at that m.
    const double flops = 2.0 * 512 * 1000 * 2;
    EXPECT_NEAR(kp.seconds(op("gemm", {{"m", 512}, {"n", 4096}, {"k", 8192}}, "bf16", 0, flops)).value(),
                (5e-6 + 512e-8) * 2, 1e-15);
}

TEST(KernelProfiles, LoadsWrittenProfilesAndRooflineMarkers) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("engramsim_kp_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    // A profile as the profiler writes it.
    profiler::KernelProfile p{.kernel = "moe_combine", .variant = "cuda"};
    p.provenance.device_kind = "cuda";
    p.provenance.device_name = "NVIDIA Test";
    p.provenance.commit = "feedbeef";
    for (double t : {1024.0, 4096.0}) {
        profiler::ProfilePoint pt{.dims = {{"tokens", t}, {"hidden", 2560}, {"top_k", 6}},
                                  .dtype = "f32", .bytes = t * 100, .flops = t * 10};
        pt.stats = profiler::SampleStats::of({t * 1e-9, t * 1.1e-9, t * 0.9e-9});
        p.points.push_back(pt);
    }
    profiler::write_profile(p, dir.string());
    std::ofstream(dir / "roofline.json") << R"({"schema": "engramsim.roofline_only", "hardware": "b200", "note": "never measured"})";
    const auto kp = KernelProfiles::load_dir(dir.string());
    EXPECT_EQ(kp.kernels(), std::vector<std::string>{"moe_combine"});
    EXPECT_NEAR(kp.seconds(op("moe_combine", {{"tokens", 2048}, {"hidden", 2560}, {"top_k", 6}})).value(),
                2048e-9, 1e-15);
    EXPECT_EQ(kp.roofline_only().size(), 1u);
    EXPECT_NE(kp.provenance("moe_combine").find("feedbeef"), std::string::npos);

    std::ofstream(dir / "broken.json") << R"({"schema": "engramsim.kernel_profile", "version": 1, "kernel": "x"})";
    try {
        KernelProfiles::load_dir(dir.string());
        FAIL() << "a profile without variant loaded";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("broken.json"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("variant"), std::string::npos) << e.what();
    }
    EXPECT_THROW(KernelProfiles::load_dir((dir / "nope").string()), std::runtime_error);
    fs::remove_all(dir);
}

TEST(KernelProfiles, CommittedProfilesLoad) {
    namespace fs = std::filesystem;
    const fs::path root = fs::path(ENGRAMSIM_SOURCE_DIR) / "profiles";
    int folders = 0;
    for (const auto& e : fs::directory_iterator(root)) {
        if (!e.is_directory()) continue;
        SCOPED_TRACE(e.path().string());
        KernelProfiles kp;
        ASSERT_NO_THROW(kp = KernelProfiles::load_dir(e.path().string()));
        ++folders;
        // At every measured shape the lookup returns that shape's median, exactly.
        for (const auto& f : fs::directory_iterator(e.path())) {
            std::ifstream in(f.path());
            const auto j = nlohmann::json::parse(in);
            if (j.at("schema") != "engramsim.kernel_profile") continue;
            for (const auto& pt : j.at("points")) {
                OpShape o{.kernel = j.at("kernel"),
                          .dims = pt.at("dims").get<std::map<std::string, double>>(),
                          .dtype = pt.at("dtype")};
                if (j.at("variant").get<std::string>().find("uva") != std::string::npos)
                    o.dims["uva"] = 1;
                EXPECT_EQ(kp.seconds(o).value(), pt.at("median_s").get<double>())
                    << f.path() << " " << pt.at("dims").dump();
            }
        }
    }
    EXPECT_GT(folders, 0);
}

// The engramsim command as a user runs it: help, presets, config show/help, trace hash, and
// errors that go to stderr with a non-zero exit.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>


#include <cstdio>
#include <fstream>

#include "tests/cli_runner.h"

namespace {

using Result = engramsim::test::CliResult;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }

std::string write(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

}  // namespace

TEST(Cli, HelpListsSubcommands) {
    Result r = run("--help");
    EXPECT_EQ(r.status, 0);
    for (const char* sub : {"presets", "config", "trace"})
        EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
    for (const char* sub : {"config --help", "config show --help", "config help --help",
                            "trace --help", "trace hash --help", "presets --help"})
        EXPECT_EQ(run(sub).status, 0) << sub;
}

TEST(Cli, PresetsListsEveryKind) {
    Result r = run("presets");
    EXPECT_EQ(r.status, 0);
    for (const char* name : {"demo-v1", "paper-offload-100b", "dense-8b", "moe-27b", "gh200", "b200"})
        EXPECT_NE(r.out.find(name), std::string::npos) << name;
}

TEST(Cli, ConfigShowPrintsResolvedJson) {
    Result r = run("config show demo-v1");
    ASSERT_EQ(r.status, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["engram"]["layer_ids"], nlohmann::json({1, 15}));
    EXPECT_EQ(j["engram"]["compress_map"], "bundled:deepseek-v3");
}

TEST(Cli, ConfigErrorsGoToStderrWithNonZeroExit) {
    const auto path = write("typo.json", R"({"engram": {"max_ngram_sise": 3}})");
    Result r = run("config show " + path);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find("engram.max_ngram_sise: unknown key; did you mean max_ngram_size?"),
              std::string::npos) << r.err;

    r = run("config show demo-v2");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("did you mean demo-v1?"), std::string::npos) << r.err;
}

TEST(Cli, ConfigHelpPrintsDeclarations) {
    Result r = run("config help engram.seed");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("default 0"), std::string::npos) << r.out;
    r = run("config help hardware.gpu");
    EXPECT_NE(r.out.find("hardware.gpu.hbm_bandwidth"), std::string::npos) << r.out;
    r = run("config help engram.sed");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("did you mean engram.seed?"), std::string::npos) << r.err;
    r = run("config help placement");
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* key : {"hbm_capacity", "policy", "policy_options", "dram_capacity",
                            "dram_policy", "dram_policy_options", "tiers", "profile_fraction"})
        EXPECT_NE(r.out.find(std::string("placement.") + key + "  ["), std::string::npos) << key;
    r = run("config help placement.hbm_capacity");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("default \"0\""), std::string::npos) << r.out;
    r = run("config help placement.hbm_capcity");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("did you mean placement.hbm_capacity?"), std::string::npos) << r.err;
}

TEST(Cli, TraceHashSummaryAndErrors) {
    const auto tokens = write("few.json", "[0, 22898, 19737, 270, 9327]");
    Result r = run("trace hash --engram engram-27b --tokens " + tokens);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("rows per token"), std::string::npos) << r.out;

    const auto bad = write("bad.json", "[0, 1, 129000]");
    r = run("trace hash --engram demo-v1 --tokens " + bad);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("token 2 has id 129000"), std::string::npos) << r.err;

    r = run("trace hash --bogus");
    EXPECT_NE(r.status, 0);
}

TEST(Cli, TraceFitWritesAModelThatASyntheticWorkloadReplays) {
    // Fit on the bundled sample, then serve a synthetic workload from the model as a user would:
    // the fit's JSON report starts at the fitted size with the slice's own rows, and a replay
    // of the workload runs; a model with other N-gram orders than the Engram config is refused.
    const std::string model = ::testing::TempDir() + "fit_model.json";
    Result r = run("trace fit --tokens bundled:handbook-en-US --json -o " + model);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto report = nlohmann::json::parse(r.out);
    EXPECT_EQ(report.at("kind"), "engramsim.synthetic_model");
    const auto& v = report.at("validation");
    EXPECT_EQ(v.at("checkpoints")[0], v.at("held_out_from_token"));
    for (const auto& o : v.at("orders"))
        EXPECT_NEAR(o.at("relative_error")[0].get<double>(), 0.0, 0.002);

    const auto workload = write("synthetic_workload.json",
                                R"({"workload": {"kind": "synthetic", "num_requests": 16,
                                    "synthetic_model": ")" +
                                    model + R"("}})");
    r = run("replay --engram demo-v1 --workload " + workload + " --capacity 1%");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("HBM cache 1%"), std::string::npos) << r.out;
    const auto bigrams_only =
        write("bigram_engram.json", R"({"engram": {"base": "demo-v1", "max_ngram_size": 2,
                                       "engram_vocab_size": [646400]}})");
    r = run("replay --engram " + bigrams_only + " --workload " + workload + " --capacity 1%");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("synthetic model has orders 2..3; the Engram config needs 2..2"),
              std::string::npos)
        << r.err;
}

// The main job: the paper's Table 4 reproduction with its sensitivity table.
TEST(Cli, DefaultJobReproducesPaperTable4) {
    Result r = run("");
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* s : {"Table 4", "dense-4b", "dense-8b", "9031.62", "6315.52", "1.92%",
                          "2.78%", "Sensitivity", "PCIe generation", "Assumptions"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

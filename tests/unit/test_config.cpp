// Config resolution: unknown keys with the nearest declared key, wrong types and units, required
// keys, presets, inheritance from a preset, and the Engram cross-key checks.
#include <gtest/gtest.h>

#include "model/config.h"
#include "model/engram_config.h"
#include "model/presets.h"

using namespace engramsim;
using nlohmann::json;

namespace {

std::string error_of(const json& doc) {
    try {
        config::resolve(doc, "test.json");
    } catch (const config::ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

std::string engram_error(const json& engram) {
    try {
        EngramConfig::from_json(config::resolve({{"engram", engram}}, "test.json")["engram"]);
    } catch (const config::ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

json minimal_hardware() {
    return config::load("h200")["hardware"];
}

}  // namespace

TEST(Config, UnknownKeyNamesPathAndNearestKey) {
    EXPECT_EQ(error_of({{"engram", {{"max_ngram_sise", 3}}}}),
              "test.json: engram.max_ngram_sise: unknown key; did you mean max_ngram_size?");
    EXPECT_EQ(error_of({{"hardware", {{"base", "h200"}, {"gpu", {{"hbm_bandwith", "1 TB/s"}}}}}}),
              "test.json: hardware.gpu.hbm_bandwith: unknown key; did you mean hbm_bandwidth?");
    EXPECT_EQ(error_of({{"engrma", json::object()}}),
              "test.json: engrma: unknown key; did you mean engram?");
}

TEST(Config, UnknownKeyFarFromAnyListsKnownKeys) {
    const std::string e = error_of({{"backbone", {{"base", "dense-4b"}, {"attention", {{"zzz", 1}}}}}});
    EXPECT_NE(e.find("backbone.attention.zzz: unknown key; known keys: kind, n_heads"),
              std::string::npos) << e;
}

TEST(Config, WrongTypesNameWhatWasExpected) {
    EXPECT_EQ(error_of({{"engram", {{"max_ngram_size", "3"}}}}),
              "test.json: engram.max_ngram_size: expected integer >= 2 and <= 8, got a string");
    EXPECT_EQ(error_of({{"engram", {{"max_ngram_size", 9}}}}),
              "test.json: engram.max_ngram_size: 9 is out of range; expected integer >= 2 and "
              "<= 8");
    EXPECT_EQ(error_of({{"engram", {{"short_conv", 1}}}}),
              "test.json: engram.short_conv: expected boolean, got an integer");
    EXPECT_EQ(error_of({{"engram", {{"dtype", "bf61"}}}}),
              "test.json: engram.dtype: 'bf61' is not one of fp32, bf16, fp16, fp8_e4m3; "
              "did you mean bf16?");
    EXPECT_EQ(error_of({{"engram", {{"layer_ids", {1, "x"}}}}}),
              "test.json: engram.layer_ids[1]: expected integer, got a string");
}

TEST(Config, WrongUnitsNameThePathAndTheAcceptedUnits) {
    json hw = minimal_hardware();
    hw["gpu"]["hbm_capacity"] = "4.8 TB/s";
    std::string e = error_of({{"hardware", hw}});
    EXPECT_EQ(e.rfind("test.json: hardware.gpu.hbm_capacity: ", 0), 0u) << e;
    EXPECT_NE(e.find("GiB"), std::string::npos) << e;

    hw = minimal_hardware();
    hw["host_link"]["latency"] = 1;
    e = error_of({{"hardware", hw}});
    EXPECT_EQ(e.rfind("test.json: hardware.host_link.latency: a bare number needs a unit", 0), 0u)
        << e;
    EXPECT_NE(e.find("\"1 us\""), std::string::npos) << e;
}

TEST(Config, RequiredKeysMustBeGiven) {
    EXPECT_EQ(error_of({{"backbone", {{"layers", 2}}}}),
              "test.json: backbone.hidden_size: required key is missing (integer >= 1)");
}

TEST(Config, DefaultsFilledAndUnitsNormalized) {
    json r = config::resolve({{"engram", json::object()}}, "t");
    EXPECT_EQ(r["engram"]["max_ngram_size"], 3);
    EXPECT_EQ(r["engram"]["engram_vocab_size"], json({646400, 646400}));
    EXPECT_FALSE(r.contains("hardware"));  // absent sections stay absent

    json hw = minimal_hardware();
    hw["gpu"]["hbm_capacity"] = "144 GiB";
    hw["gpu"]["hbm_bandwidth"] = "4800 GB/s";
    hw["host_link"]["bandwidth_per_direction"] = "512 Gbps";
    r = config::resolve({{"hardware", hw}}, "t");
    EXPECT_EQ(r["hardware"]["gpu"]["hbm_capacity"], "144 GiB");
    EXPECT_EQ(r["hardware"]["gpu"]["hbm_bandwidth"], "4.8 TB/s");
    EXPECT_EQ(r["hardware"]["host_link"]["bandwidth_per_direction"], "64 GB/s");
    // Counts with suffixes become plain numbers.
    r = config::resolve({{"engram", {{"engram_vocab_size", {"2.26M", "7.23968M"}}}}}, "t");
    EXPECT_EQ(r["engram"]["engram_vocab_size"], json({2260000, 7239680}));
}

TEST(Config, ResolvingIsIdempotent) {
    for (const auto& name : presets::names()) {
        SCOPED_TRACE(name);
        json once = config::load(name);
        EXPECT_EQ(config::resolve(once, name), once);
    }
}

TEST(Config, SectionStartsFromAPreset) {
    json r = config::resolve({{"engram", {{"base", "engram-27b"}, {"seed", 7}}}}, "t");
    EXPECT_EQ(r["engram"]["seed"], 7);
    EXPECT_EQ(r["engram"]["engram_vocab_size"], json({2262400, 2262400}));
    EXPECT_EQ(r["engram"]["base"], "engram-27b");
    // The string shorthand, and a preset that itself extends another (engram-40b -> 27b).
    r = config::resolve({{"engram", "engram-40b"}}, "t");
    EXPECT_EQ(r["engram"]["engram_vocab_size"], json({7239680, 7239680}));
    EXPECT_EQ(r["engram"]["n_embed_per_ngram"], 640);
    EXPECT_EQ(error_of({{"engram", {{"base", "demo-v2"}}}}),
              "test.json: engram.base: no engram preset named 'demo-v2'; did you mean demo-v1? "
              "(known: deepseek-v41-flash-engram, demo-v1, engram-27b, engram-40b, "
              "paper-offload-100b)");
    EXPECT_NE(error_of({{"engram", {{"base", "h200"}}}}).find("no engram preset named 'h200'"),
              std::string::npos);
    // The shorthand's error names the key the user wrote.
    EXPECT_EQ(error_of({{"engram", "demo-v2"}}).rfind("test.json: engram: no engram preset", 0),
              0u);
}

TEST(Config, EveryPresetResolves) {
    const auto all = presets::list();
    EXPECT_GE(all.size(), 12u);
    for (const auto& p : all) {
        SCOPED_TRACE(p.name);
        json r = config::load(p.name);
        ASSERT_TRUE(r.contains(p.kind));
        EXPECT_FALSE(p.description.empty());
        if (p.kind == "engram") EngramConfig::from_json(r["engram"]);
    }
    for (const char* required : {"demo-v1", "engram-27b", "engram-40b", "paper-offload-100b",
                                 "dense-4b", "dense-8b", "moe-27b", "h800-pcie5", "h100-sxm",
                                 "h200", "gh200", "b200"})
        EXPECT_TRUE(presets::document(required).has_value()) << required;
}

TEST(Config, HardwarePresetsCiteEveryNumber) {
    for (const auto& name : presets::names("hardware")) {
        SCOPED_TRACE(name);
        const json hw = config::load(name)["hardware"];
        for (const char* sec : {"gpu", "host", "host_link", "nvlink", "network", "nvme"})
            for (const auto& [key, value] : hw[sec].items()) {
                if (key == "model" || key == "cpu" || key == "kind") continue;  // names, not numbers
                if (value.is_object() && value.empty()) continue;  // no measured rates: no number
                EXPECT_TRUE(hw["sources"].contains(std::string(sec) + "." + key))
                    << "no source for " << sec << "." << key;
            }
    }
}

TEST(Config, PaperTableSizesAddUp) {
    // Engram paper Table 5 check: 2 layers x 2 orders x 8 heads x 7,239,680 x 80 = 18.53B.
    auto c40 = EngramConfig::from_json(config::load("engram-40b")["engram"]);
    EXPECT_EQ(c40.row_dim(), 80);
    EXPECT_EQ(c40.heads_per_layer(), 16);
    auto c100 = EngramConfig::from_json(config::load("paper-offload-100b")["engram"]);
    EXPECT_EQ(c100.layer_ids, std::vector<int>{1});
    EXPECT_DOUBLE_EQ(double(c100.engram_vocab_size[0]) * 16 * c100.row_dim(), 100e9);
}

TEST(EngramConfig, CrossKeyChecks) {
    EXPECT_EQ(engram_error({{"max_ngram_size", 4}}),
              "engram.engram_vocab_size: has 2 entries; max_ngram_size 4 needs one per order 2..4 "
              "(3)");
    EXPECT_EQ(engram_error({{"n_embed_per_ngram", 100}, {"n_head_per_ngram", 8}}),
              "engram.n_embed_per_ngram: 100 is not divisible by n_head_per_ngram 8");
    EXPECT_EQ(engram_error({{"layer_ids", {1, 1}}}), "engram.layer_ids: layer 1 is listed twice");
    // Table sizes are refused where the config is resolved, before EngramConfig sees them.
    EXPECT_EQ(engram_error({{"engram_vocab_size", {1, 5}}}),
              "test.json: engram.engram_vocab_size[0]: 1 is out of range; expected count in "
              "[2, 4e+09] (row ids are 32-bit: each head's table, the next prime above its base "
              "size, must stay below 2^32)");
}

TEST(Config, NearestSuggestsOnlyPlausibleTypos) {
    EXPECT_EQ(config::nearest("seeed", {"seed", "pad_id"}), "seed");
    EXPECT_EQ(config::nearest("completely_else", {"seed", "pad_id"}), std::nullopt);
}

TEST(Config, FindKeyAndDescribe) {
    const config::Key* k = config::find_key("hardware.gpu.hbm_bandwidth");
    ASSERT_NE(k, nullptr);
    EXPECT_NE(config::describe_type(*k).find("GB/s"), std::string::npos);
    EXPECT_EQ(config::find_key("hardware.gpu.nope"), nullptr);
}

TEST(Config, SimSectionHasTypedDefaults) {
    const json sim = config::resolve({{"sim", json::object()}}, "test.json")["sim"];
    EXPECT_EQ(sim["schedule"], "layer-ahead:0");
    EXPECT_EQ(sim["mechanism"], "cpu-gather");
    EXPECT_EQ(sim["table"], "host-dram");
    EXPECT_EQ(sim["max_num_seqs"], 512);
    EXPECT_EQ(sim["max_num_batched_tokens"], 16384);
    EXPECT_EQ(config::quantity(sim, "row_access_latency", units::Dim::Time), 250e-9);
    EXPECT_EQ(config::quantity(sim, "gpu_memory_utilization", units::Dim::Count), 0.9);
    EXPECT_EQ(config::quantity(sim, "backbone_time_scale", units::Dim::Count), 1.0);
    EXPECT_NE(error_of({{"sim", {{"mechanism", "dma"}}}})
                  .find("test.json: sim.mechanism: 'dma' is not one of"),
              std::string::npos);
    EXPECT_NE(error_of({{"sim", {{"gather_thread", 4}}}}).find("did you mean gather_threads?"),
              std::string::npos);
    EXPECT_NE(error_of({{"sim", {{"dma_setup", 5}}}}).find("a bare number needs a unit"),
              std::string::npos);
}

// The placement section: typed defaults, capacities checked by form (rows are counted where the
// table is known), strict keys with the nearest one, and the moved sim keys named.
TEST(Config, PlacementSectionHasTypedDefaults) {
    const json p = config::resolve({{"placement", json::object()}}, "test.json")["placement"];
    EXPECT_EQ(p["hbm_capacity"], "0");
    EXPECT_EQ(p["policy"], "lru");
    EXPECT_EQ(p["policy_options"], json::object());
    EXPECT_EQ(p["dram_capacity"], "all");
    EXPECT_EQ(p["dram_policy"], "lru");
    EXPECT_EQ(p["dram_policy_options"], json::object());
    EXPECT_EQ(p["tiers"], "inclusive");
    EXPECT_EQ(config::quantity(p, "profile_fraction", units::Dim::Count), 1.0);
    // every capacity form replay --capacity takes; a JSON integer is rows
    for (const char* c : {"0", "1%", "0.5 %", "10GiB", "1.5 TB", "2.5M rows", "1000000", "all"})
        EXPECT_EQ(config::resolve({{"placement", {{"hbm_capacity", c}}}}, "t")["placement"]
                                 ["hbm_capacity"],
                  c);
    EXPECT_EQ(config::resolve({{"placement", {{"dram_capacity", 123456}}}}, "t")["placement"]
                             ["dram_capacity"],
              "123456");
    const json opts = config::resolve(
        {{"placement", {{"policy", "sa-lru"}, {"policy_options", {{"ways", "16"}}}}}},
        "t")["placement"];
    EXPECT_EQ(opts["policy_options"], json({{"ways", "16"}}));
    ASSERT_NE(config::find_key("placement.hbm_capacity"), nullptr);
    EXPECT_NE(config::describe_type(*config::find_key("placement.dram_capacity")).find("2.5M rows"),
              std::string::npos);
}

TEST(Config, PlacementErrorsNameThePath) {
    EXPECT_EQ(error_of({{"placement", {{"hbm_capacty", "1%"}}}}),
              "test.json: placement.hbm_capacty: unknown key; did you mean hbm_capacity?");
    EXPECT_EQ(error_of({{"placement", {{"dram_polcy", "lru"}}}}),
              "test.json: placement.dram_polcy: unknown key; did you mean dram_policy?");
    EXPECT_EQ(error_of({{"placement", {{"hbm_capacity", "10 GiBs"}}}}).rfind(
                  "test.json: placement.hbm_capacity: capacity '10 GiBs': ", 0),
              0u);
    EXPECT_NE(error_of({{"placement", {{"hbm_capacity", "120%"}}}}).find("more than 100%"),
              std::string::npos);
    EXPECT_NE(error_of({{"placement", {{"dram_capacity", "many rows"}}}})
                  .find("test.json: placement.dram_capacity: capacity 'many rows'"),
              std::string::npos);
    EXPECT_EQ(error_of({{"placement", {{"hbm_capacity", -3}}}}),
              "test.json: placement.hbm_capacity: must not be negative");
    EXPECT_NE(error_of({{"placement", {{"hbm_capacity", 1.5}}}}).find("expected capacity"),
              std::string::npos);
    EXPECT_EQ(error_of({{"placement", {{"policy_options", {{"ways", 16}}}}}}),
              "test.json: placement.policy_options.ways: expected a string");
    EXPECT_NE(error_of({{"placement", {{"tiers", "exclusve"}}}}).find("did you mean exclusive?"),
              std::string::npos);
    // the HBM cache keys left the sim section: the error says where they went
    EXPECT_EQ(error_of({{"sim", {{"hbm_cache_rows", "10M"}}}}),
              "test.json: sim.hbm_cache_rows: this key has moved; write placement.hbm_capacity "
              "(a capacity: \"10M rows\", \"1%\", \"10GiB\") instead");
    EXPECT_EQ(error_of({{"sim", {{"hbm_cache_policy", "lru"}}}}),
              "test.json: sim.hbm_cache_policy: this key has moved; write placement.policy "
              "(options in placement.policy_options) instead");
}

// The real executor (executor/): its Engram module against the CPU references over whole
// sequences, and whole runs against the scheduler (the same steps and preemptions), the hashed
// lookups (the same rows) and themselves (the same tokens, however the requests are batched).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "executor/calibrate.h"
#include "executor/engram_layer.h"
#include "executor/executor.h"
#include "executor/serving_validation.h"
#include "executor_test_config.h"
#include "kernels/cpu/engram_kernels.h"
#include "model/config.h"
#include "traces/lookups.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::executor;

namespace {

EngramConfig small_engram(bool short_conv = true) {
    EngramConfig e;
    e.name = "test";
    e.engram_vocab_size = {1009, 1009};
    e.max_ngram_size = 3;
    e.n_embed_per_ngram = 32;
    e.n_head_per_ngram = 2;
    e.layer_ids = {1};
    e.hc_mult = 1;
    e.short_conv = short_conv;
    return e;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

// The module's output over a whole sequence at once, with the plain reference kernels.
std::vector<float> reference(const EngramModule& m, const std::vector<float>& h,
                             const std::vector<float>& e) {
    const size_t H = m.hidden(), T = h.size() / H;
    std::vector<float> k(T * H), v(T * H), out(T * H), alpha(T), gated(T * H);
    kernels::gemm_nt(T, H, m.d_mem(), e, m.w_k(), k);
    kernels::gemm_nt(T, H, m.d_mem(), e, m.w_v(), v);
    kernels::GateShape g{.tokens = T, .branches = 1, .dim = int(H), .signed_sqrt = m.signed_sqrt()};
    if (!m.short_conv()) {
        kernels::engram_gate(g, h, k, v, m.norm_h(), m.norm_k(), alpha, gated);
        for (size_t i = 0; i < out.size(); ++i) out[i] = h[i] + gated[i];
        return out;
    }
    kernels::ConvShape c{.tokens = T, .seq_len = T, .branches = 1, .dim = int(H),
                         .kernel = m.kernel(), .dilation = m.dilation()};
    kernels::engram_gate_conv_residual(g, c, h, k, v, m.norm_h(), m.norm_k(), m.conv_norm(),
                                       m.conv_w(), out);
    return out;
}

nlohmann::json tiny_config(int max_num_seqs, int64_t num_kv_blocks, const std::string& schedule) {
    return config::resolve(tiny_executor_doc(max_num_seqs, num_kv_blocks, schedule), "test");
}

}  // namespace

TEST(ExecutorEngram, StreamedStepsEqualTheReferenceOverTheWholeSequence) {
    for (bool conv : {true, false}) {
        const EngramConfig cfg = small_engram(conv);
        EngramModule m(cfg, 48, 7);
        kernels::ThreadTeam team(2);
        const size_t H = 48, D = m.d_mem();
        // Request 0: 23 tokens, fed as a prefill of 9 and then 14 decodes; request 1 (5 tokens)
        // shares the first decode steps, so slices of different requests sit side by side.
        const std::vector<float> h0 = random_floats(23 * H, 1), e0 = random_floats(23 * D, 2);
        const std::vector<float> h1 = random_floats(5 * H, 3), e1 = random_floats(5 * D, 4);
        std::vector<float> got0, got1;
        auto step = [&](std::vector<StepSlice> slices) {
            std::vector<float> h, e;
            for (const StepSlice& s : slices) {
                const auto& hs = s.request == 0 ? h0 : h1;
                const auto& es = s.request == 0 ? e0 : e1;
                h.insert(h.end(), hs.begin() + s.first * H, hs.begin() + (s.first + s.count) * H);
                e.insert(e.end(), es.begin() + s.first * D, es.begin() + (s.first + s.count) * D);
            }
            m.forward(slices, e, h, team);
            size_t o = 0;
            for (const StepSlice& s : slices) {
                auto& got = s.request == 0 ? got0 : got1;
                got.insert(got.end(), h.begin() + o * H, h.begin() + (o + s.count) * H);
                o += s.count;
            }
        };
        step({{0, 0, 9}, {1, 0, 1}});
        for (uint32_t p = 9; p < 23; ++p) {
            std::vector<StepSlice> s = {{0, p, 1}};
            if (p - 8 < 5) s.push_back({1, p - 8, 1});
            step(s);
        }
        const auto want0 = reference(m, h0, e0), want1 = reference(m, h1, e1);
        ASSERT_EQ(got0.size(), want0.size());
        ASSERT_EQ(got1.size(), want1.size());
        for (size_t i = 0; i < want0.size(); ++i)
            ASSERT_NEAR(got0[i], want0[i], 1e-4f * (1 + std::fabs(want0[i]))) << "conv " << conv << " at " << i;
        for (size_t i = 0; i < want1.size(); ++i)
            ASSERT_NEAR(got1[i], want1[i], 1e-4f * (1 + std::fabs(want1[i]))) << "conv " << conv << " at " << i;
    }
}

TEST(ExecutorEngram, AResumedRequestWithoutItsHistoryIsAnError) {
    EngramModule m(small_engram(), 16, 1);
    kernels::ThreadTeam team(1);
    std::vector<float> h(16), e(m.d_mem());
    const std::vector<StepSlice> s = {{3, 5, 1}};
    EXPECT_THROW(m.forward(s, e, h, team), std::logic_error);
}

TEST(ExecutorEngram, TableValuesAreFiniteAndBelowTwo) {
    for (uint32_t b = 0; b < 65536; ++b) {
        const float v = table_value(uint16_t(b));
        ASSERT_TRUE(std::isfinite(v)) << b;
        ASSERT_LT(std::fabs(v), 2.0f) << b;
    }
}

TEST(Executor, ServesTheSchedulersStepsAndTheTracesRows) {
    const nlohmann::json cfg = tiny_config(4, 9, "layer-ahead:1");
    ExecuteOptions opt;
    opt.compute_threads = 2;
    const ExecuteResult r = execute(cfg, opt);

    // The scheduler alone, and the hashed lookups, over the same workload.
    const EngramConfig engram = EngramConfig::from_json(cfg["engram"]);
    SchedulerConfig sc{.max_num_seqs = 4, .max_num_batched_tokens = 64, .kv_block_size = 4,
                       .num_kv_blocks = 9};
    auto lookups = make_lookups(engram, cfg["workload"], sc);
    StepBatch b;
    size_t i = 0;
    uint64_t digest = 0xcbf29ce484222325ULL;
    auto fnv = [&](uint64_t v) {
        for (int k = 0; k < 8; ++k) digest = (digest ^ ((v >> (8 * k)) & 0xFF)) * 0x100000001b3ULL;
    };
    while (lookups->next(b)) {
        ASSERT_LT(i, r.steps.size());
        EXPECT_EQ(r.steps[i].index, b.step);
        EXPECT_EQ(r.steps[i].prefill, b.prefill);
        EXPECT_EQ(r.steps[i].tokens, b.tokens);
        EXPECT_EQ(r.steps[i].seqs, b.slices.size());
        ASSERT_EQ(r.steps[i].engram.size(), 2u);
        for (size_t l = 0; l < 2; ++l) {
            EXPECT_EQ(r.steps[i].engram[l].lookups, b.rows[l].size());
            std::vector<uint64_t> u(b.rows[l]);
            std::sort(u.begin(), u.end());
            EXPECT_EQ(r.steps[i].engram[l].unique_rows, uint64_t(std::unique(u.begin(), u.end()) - u.begin()));
            for (uint64_t k : b.rows[l]) fnv(k);
        }
        ++i;
    }
    EXPECT_EQ(i, r.steps.size());
    EXPECT_EQ(digest, r.rows_digest);
    EXPECT_GT(r.preemptions, 0u) << "the KV cache of 9 blocks of 4 tokens should force preemptions";

    std::vector<uint32_t> pl, ol;
    request_lengths(make_workload(cfg["workload"]), pl, ol);
    Scheduler plain(sc, pl, ol);
    while (plain.next()) {
    }
    EXPECT_EQ(r.preemptions, plain.preemptions());

    // The warm-up had the shape of the largest step (the first of the most tokens), so every
    // buffer a step sizes by its tokens was touched before the clock started.
    const auto largest = std::max_element(r.steps.begin(), r.steps.end(),
                                          [](const StepRecord& a, const StepRecord& b) {
                                              return a.tokens < b.tokens;
                                          });
    EXPECT_EQ(r.warmup_tokens, largest->tokens);
    EXPECT_EQ(r.warmup_sequences, largest->seqs);

    // Times are ordered within each step, and every request got all its tokens.
    for (const StepRecord& s : r.steps) {
        EXPECT_LE(s.start_s, s.end_s);
        for (const EngramLayerRecord& e : s.engram) {
            EXPECT_LE(s.start_s, e.issue_s);
            EXPECT_LE(e.issue_s, e.ready_s);
            EXPECT_LE(e.ready_s, s.end_s);
            EXPECT_GE(e.stall_s, 0);
        }
    }
    for (size_t q = 0; q < r.requests; ++q) {
        EXPECT_GT(r.first_token_s[q], 0);
        EXPECT_LE(r.first_token_s[q], r.last_token_s[q]);
    }
}

TEST(Executor, InterleavedRunsServeWhatSeparateRunsServeEachOnItsOwnClock) {
    ExecuteOptions opt;
    opt.compute_threads = 2;
    opt.warmup_tokens = 0;  // the steps, not the set-up, take the call's time
    const nlohmann::json cfg = tiny_config(4, 9, "layer-ahead:1");
    opt.engram = true;
    const ExecuteResult engram = execute(cfg, opt);
    opt.engram = false;
    const ExecuteResult baseline = execute(cfg, opt);

    const auto t0 = std::chrono::steady_clock::now();
    const InterleavedResult both = execute_interleaved(cfg, opt);  // engram: ignored
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // The same steps, rows and tokens as each run alone.
    for (const auto& [alone, inter] : {std::pair{&engram, &both.engram}, {&baseline, &both.baseline}}) {
        ASSERT_EQ(inter->steps.size(), alone->steps.size());
        for (size_t i = 0; i < alone->steps.size(); ++i) {
            EXPECT_EQ(inter->steps[i].index, alone->steps[i].index);
            EXPECT_EQ(inter->steps[i].tokens, alone->steps[i].tokens);
            EXPECT_EQ(inter->steps[i].engram.size(), alone->steps[i].engram.size());
        }
        EXPECT_EQ(inter->output_digest, alone->output_digest);
        EXPECT_EQ(inter->rows_digest, alone->rows_digest);
        EXPECT_EQ(inter->preemptions, alone->preemptions);
    }
    EXPECT_NE(both.engram.rows_digest, both.baseline.rows_digest) << "the baseline fetches no rows";

    // Each run's clock stops while the other serves: its steps follow one another in its own
    // time, and the two runs' times together fit in the call's. (Had the clocks run on, each
    // makespan would span nearly the whole call, and the two together about twice it.)
    for (const ExecuteResult* r : {&both.engram, &both.baseline})
        for (size_t i = 1; i < r->steps.size(); ++i) EXPECT_LE(r->steps[i - 1].end_s, r->steps[i].start_s);
    EXPECT_LE(both.engram.makespan_s() + both.baseline.makespan_s(), wall);

    // The A/A control: the baseline beside itself, both computing the baseline's tokens.
    const InterleavedResult aa = execute_interleaved(cfg, opt, /*control=*/true);
    for (const ExecuteResult* r : {&aa.engram, &aa.baseline}) {
        EXPECT_EQ(r->output_digest, baseline.output_digest);
        EXPECT_EQ(r->rows_digest, baseline.rows_digest);
        EXPECT_EQ(r->steps.size(), baseline.steps.size());
    }
}

TEST(Executor, TokensDoNotDependOnBatchingPreemptionOrSchedule) {
    ExecuteOptions opt;
    opt.compute_threads = 2;
    // One request at a time with room to spare, against four at a time in a KV cache small
    // enough to preempt, with another prefetch schedule: each request's argmax ids must agree.
    const ExecuteResult alone = execute(tiny_config(1, -1, "none"), opt);
    const ExecuteResult batched = execute(tiny_config(4, 9, "layer-ahead:0"), opt);
    ASSERT_EQ(alone.preemptions, 0u);
    ASSERT_GT(batched.preemptions, 0u);
    ASSERT_EQ(alone.argmax.size(), batched.argmax.size());
    for (size_t q = 0; q < alone.argmax.size(); ++q) {
        ASSERT_EQ(alone.argmax[q].size(), alone.output_len[q]);
        // A preempted request computes again the positions it had; its last argmax ids are the
        // ones that count: the final output_len of them.
        const auto& b = batched.argmax[q];
        ASSERT_GE(b.size(), alone.argmax[q].size());
        const std::vector<uint32_t> tail(b.end() - alone.argmax[q].size(), b.end());
        EXPECT_EQ(tail, alone.argmax[q]) << "request " << q;
    }
    std::set<uint32_t> ids;  // the check means something only if the ids vary
    for (const auto& a : alone.argmax) ids.insert(a.begin(), a.end());
    EXPECT_GT(ids.size(), 10u);
    // Same config, same bytes.
    const ExecuteResult again = execute(tiny_config(4, 9, "layer-ahead:0"), opt);
    EXPECT_EQ(again.output_digest, batched.output_digest);
    EXPECT_EQ(again.rows_digest, batched.rows_digest);
}

// vLLM V1's scheduler (sim.engine vllm-v1) on the real engine: an 8-token budget cuts the
// prompts into chunks that share steps with decodes, and a KV cache of 9 blocks preempts. The
// steps are the chunked scheduler's, each request samples exactly its output length, and its
// tokens are the ones it gets served alone (a chunk attends to its earlier chunks' KV).
TEST(Executor, ChunkedPrefillServesTheSameTokensAsWholePrompts) {
    ExecuteOptions opt;
    opt.compute_threads = 2;
    nlohmann::json doc = tiny_executor_doc(4, 9, "layer-ahead:0");
    doc["sim"]["engine"] = "vllm-v1";
    doc["sim"]["max_num_batched_tokens"] = 8;
    const nlohmann::json cfg = config::resolve(doc, "test");
    const ExecuteResult chunked = execute(cfg, opt);
    const ExecuteResult alone = execute(tiny_config(1, -1, "none"), opt);

    std::vector<uint32_t> pl, ol;
    request_lengths(make_workload(cfg["workload"]), pl, ol);
    SchedulerConfig sc{.max_num_seqs = 4, .max_num_batched_tokens = 8, .kv_block_size = 4,
                       .num_kv_blocks = 9};
    sc.policy = SchedulePolicy::ChunkedPrefill;
    sc.async_scheduling = cfg["sim"]["async_scheduling"].get<bool>();  // true by default
    ASSERT_TRUE(sc.async_scheduling);
    Scheduler ref(sc, pl, ol);
    size_t i = 0, mixed = 0, unsampled = 0;
    while (auto st = ref.next()) {
        ASSERT_LT(i, chunked.steps.size());
        EXPECT_EQ(chunked.steps[i].tokens, st->tokens) << "step " << i;
        EXPECT_EQ(chunked.steps[i].seqs, st->slices.size()) << "step " << i;
        bool d = false, p = false;
        for (const StepSlice& sl : st->slices) (sl.decode ? d : p) = true, unsampled += !sl.sample;
        mixed += d && p;
        ++i;
    }
    EXPECT_EQ(i, chunked.steps.size());
    EXPECT_GT(mixed, 0u);
    EXPECT_GT(unsampled, 0u);
    EXPECT_EQ(chunked.preemptions, ref.preemptions());
    EXPECT_GT(chunked.preemptions, 0u);
    ASSERT_EQ(chunked.argmax.size(), alone.argmax.size());
    for (size_t q = 0; q < alone.argmax.size(); ++q) {
        const auto& b = chunked.argmax[q];
        ASSERT_GE(b.size(), alone.argmax[q].size());
        const std::vector<uint32_t> tail(b.end() - alone.argmax[q].size(), b.end());
        EXPECT_EQ(tail, alone.argmax[q]) << "request " << q;
        EXPECT_GT(chunked.first_token_s[q], 0);
    }
}

TEST(Executor, RefusesWhatItCannotServeNamingTheKey) {
    const auto msg = refusal_of;
    nlohmann::json c = tiny_config(4, -1, "none");
    c["sim"]["table"] = "remote-dram";
    EXPECT_NE(msg(c).find("sim.table"), std::string::npos) << msg(c);
    c = tiny_config(4, -1, "none");  // on disk, but fetched by the DRAM mechanism
    c["sim"]["table"] = "nvme";
    c["sim"]["mechanism"] = "cpu-gather";
    EXPECT_NE(msg(c).find("sim.mechanism"), std::string::npos) << msg(c);
    c = tiny_config(4, -1, "oracle");
    EXPECT_NE(msg(c).find("sim.schedule"), std::string::npos) << msg(c);
    c = tiny_config(4, -1, "layer-ahead:99");  // issued at a layer that never starts
    EXPECT_EQ(msg(c).rfind("sim.schedule: layer-ahead:99 issues at a layer", 0), 0u) << msg(c);
    c = tiny_config(4, -1, "none");  // no Engram section: nothing to compare the baseline with
    c.erase("engram");
    EXPECT_EQ(msg(c).rfind("engram: missing", 0), 0u) << msg(c);
    c = tiny_config(4, -1, "none");
    c["engram"]["hc_mult"] = 4;
    EXPECT_NE(msg(c).find("engram.hc_mult"), std::string::npos) << msg(c);
}

// The prediction prices what the executor runs: float32 weights and KV cache, whatever dtype the
// backbone names (a config that inherits dense-4b's bf16 would otherwise be priced at half the
// weight bytes the engine reads).
TEST(Executor, CalibrationPricesTheFloat32TheExecutorRuns) {
    namespace fs = std::filesystem;
    const std::string dir = ::testing::TempDir() + "apply_calibration_" + std::to_string(::getpid());
    fs::create_directories(dir);
    nlohmann::json doc = tiny_executor_doc(4, -1, "layer-ahead:0");
    doc["backbone"]["dtype"] = "bf16";
    const nlohmann::json cfg = config::resolve(doc, "test");
    std::ofstream(dir + "/hardware.json") << cfg["hardware"].dump();
    std::ofstream(dir + "/sim.json") << nlohmann::json::object().dump();
    const nlohmann::json out = apply_calibration(cfg, dir);
    EXPECT_EQ(out["backbone"]["dtype"], "fp32");
    EXPECT_EQ(out["sim"]["num_kv_blocks"], kv_blocks(cfg));
    fs::remove_all(dir);
}

// validate serving predicts every config before executing any, then executes in rounds (each
// config's next pair, interleaved execution and A/A control in turn), and hands out the
// comparison after every round but the last, with the executions done so far.
TEST(ServingValidation, PredictsAllThenExecutesInRoundsAcrossConfigsReportingEachRound) {
    namespace fs = std::filesystem;
    const std::string dir = ::testing::TempDir() + "serving_rounds_" + std::to_string(::getpid());
    std::vector<ServingCase> cases;
    for (const char* schedule : {"layer-ahead:0", "none"})
        cases.push_back({schedule[0] == 'l' ? "a" : "b", "",
                         config::resolve(tiny_executor_doc(4, -1, schedule), "test")});
    ServingOptions opt;
    opt.calibration_dir = dir;
    opt.quick = true;
    opt.repeat = 1, opt.interleaved = 2, opt.controls = 1;
    std::vector<std::string> said;
    opt.say = [&](const std::string& m) { said.push_back(m); };
    std::vector<nlohmann::json> partial;
    opt.on_round = [&](const ServingSummary& s) { partial.push_back(to_json(s, "test")); };
    const nlohmann::json done = to_json(validate_serving(cases, opt), "test");

    std::vector<std::string> order;  // what each config did, in order
    for (const std::string& m : said)
        if (m.rfind("a: ", 0) == 0 || m.rfind("b: ", 0) == 0) order.push_back(m);
    const std::vector<std::string> want = {
        "a: predicting", "b: predicting",
        "a: executing, pair 1 of 1", "a: executing interleaved, 1 of 2", "a: executing the A/A control, 1 of 1",
        "b: executing, pair 1 of 1", "b: executing interleaved, 1 of 2", "b: executing the A/A control, 1 of 1",
        "a: executing interleaved, 2 of 2", "b: executing interleaved, 2 of 2"};
    EXPECT_EQ(order, want);

    ASSERT_EQ(partial.size(), 1u);  // after round 1 of 2
    EXPECT_EQ(partial[0]["summary"]["rounds"], (nlohmann::json{{"done", 1}, {"of", 2}}));
    EXPECT_EQ(partial[0]["summary"]["complete"], false);
    EXPECT_EQ(done["summary"]["rounds"], (nlohmann::json{{"done", 2}, {"of", 2}}));
    EXPECT_EQ(done["summary"]["complete"], true);
    for (size_t i = 0; i < 2; ++i) {
        const nlohmann::json& p = partial[0]["cases"][i]["overhead_vs_no_engram_pct"];
        const nlohmann::json& d = done["cases"][i]["overhead_vs_no_engram_pct"];
        EXPECT_EQ(p["measured_interleaved"].size(), 1u);
        EXPECT_EQ(d["measured_interleaved"].size(), 2u);
        EXPECT_EQ(p["measured_interleaved"][0], d["measured_interleaved"][0]);  // kept, not redone
        EXPECT_EQ(p["measured"], p["measured_interleaved"][0]);
        EXPECT_EQ(p["a_a_control"].size(), 1u);
        EXPECT_EQ(d["a_a_control"], p["a_a_control"]);
        EXPECT_EQ(d["measured_runs"], p["measured_runs"]);
        EXPECT_EQ(d["predicted"], p["predicted"]);  // predicted once, before any execution
    }
    // The band of two runs holds the median with probability 1 - 2^-1; one run has no band.
    const nlohmann::json& band = done["summary"]["overhead_outside_measured_band"];
    EXPECT_EQ(band["of"], 2);
    EXPECT_EQ(band["band_confidence"], 0.5);
    int outside = 0;
    for (const auto& c : done["cases"]) {
        const auto& oh = c["overhead_vs_no_engram_pct"];
        const std::vector<double> runs = oh["measured_interleaved"];
        const double pred = oh["predicted"];
        outside += pred < std::min(runs[0], runs[1]) || pred > std::max(runs[0], runs[1]);
    }
    EXPECT_EQ(band["cases"], outside);
    EXPECT_EQ(partial[0]["summary"]["overhead_outside_measured_band"]["of"], 0);
    fs::remove_all(dir);
}

// The Perfetto / Chrome-trace timeline (sim/timing/results.h: write_timeline) shows the
// tensor-parallel collectives: a small TP = 2 and TP = 4 serving run (Dense-8B with one Engram
// layer on an 8-GPU h100-sxm) written to JSON and read back. Checked against what the plan holds,
// counted independently of the simulator: one slice per collective of every step's op lists
// (embedding, every layer, every Engram layer, the head), in program order, with its kind and
// bytes; every slice inside its step's slice; and, nothing else using NVLink, every slice as long
// as the collective's idle-link time (collective_seconds). TP = 1 writes no collective track.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model/config.h"
#include "sim/timing/collectives.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

Plan small_plan(int tp, const std::string& comms) {
    return make_plan(resolve_run_config(
        {{"backbone", "dense-8b"},
         {"engram", "paper-offload-100b"},
         {"hardware", {{"base", "h100-sxm"}, {"gpu", {{"count", 8}}}}},
         {"workload",
          {{"base", "nano-vllm-512"},
           {"num_requests", 4},
           {"prompt_len", {{"min", 4}, {"max", 128}}},
           {"output_len", {{"min", 4}, {"max", 8}}}}},
         {"sim", {{"tensor_parallel", tp}, {"collective_comms", comms}}}},
        "test"));
}

nlohmann::json timeline(const Plan& p, const DesResult& r) {
    std::ostringstream out;
    write_timeline(p, r, out);
    return nlohmann::json::parse(out.str());  // throws (fails the test) if it does not parse
}

// What the plan says a step runs, in program order, from its op lists alone (not from
// step_program): the embedding's collectives, then per layer the Engram module's (at an Engram
// layer) and the layer's, then the head's.
struct Expected {
    Collective c;
    std::string op;
    int layer = -1;
};
std::vector<Expected> expected_collectives(const Plan& p, const PlannedStep& st) {
    std::vector<Expected> out;
    auto add = [&](const std::vector<TpSegment>& segs, const std::string& op, int layer) {
        for (const TpSegment& s : segs)
            if (s.after.kind != Collective::Kind::None) out.push_back({s.after, op, layer});
    };
    add(st.tp_embed, "embed", -1);
    for (int l = 0; l < p.backbone.layers; ++l) {
        for (int e : p.engram_layers)
            if (e == l) add(st.tp_engram, "engram", l);
        add(st.tp_layer, "layer", l);
    }
    add(st.tp_head, "head", -1);
    return out;
}

bool is_collective_kind(const std::string& name) {
    return name == "all-reduce" || name == "all-gather" || name == "gather";
}

void check_run(int tp, const std::string& comms) {
    SCOPED_TRACE("TP=" + std::to_string(tp) + " " + comms);
    const Plan p = small_plan(tp, comms);
    ASSERT_EQ(p.tensor_parallel, tp);
    const DesResult r = simulate_forked(p);
    const nlohmann::json tl = timeline(p, r);
    ASSERT_TRUE(tl.contains("traceEvents"));

    // Step slices by index, collective slices per step in time order.
    std::map<size_t, std::pair<double, double>> step_slice;  // ts, dur (us)
    std::map<size_t, std::vector<nlohmann::json>> slices;
    size_t collectives = 0, tracks = 0;
    for (const auto& ev : tl["traceEvents"]) {
        const std::string name = ev["name"];
        if (ev["ph"] == "M" && name == "thread_name" && ev["tid"] == 3) ++tracks;
        if (ev["ph"] != "X") continue;
        if (ev["pid"] == 1 && ev["tid"] == 1) {
            const size_t i = std::stoul(name.substr(name.rfind(' ') + 1));
            step_slice[i] = {ev["ts"].get<double>(), ev["dur"].get<double>()};
        } else if (ev["pid"] == 1 && ev["tid"] == 3) {
            EXPECT_TRUE(is_collective_kind(name)) << name;
            slices[ev["args"]["step"].get<size_t>()].push_back(ev);
            ++collectives;
        }
    }
    EXPECT_EQ(tracks, 1u);  // the TP group's collectives track is named
    ASSERT_EQ(step_slice.size(), p.steps.size());

    size_t expected_total = 0, by_kind[3] = {0, 0, 0};
    double worst_rel = 0, worst_ulps = 0;
    for (size_t i = 0; i < p.steps.size(); ++i) {
        const auto want = expected_collectives(p, p.steps[i]);
        expected_total += want.size();
        const auto& got = slices[i];
        ASSERT_EQ(got.size(), want.size()) << "step " << i;
        const auto [s_ts, s_dur] = step_slice[i];
        double prev_end = s_ts;
        for (size_t k = 0; k < want.size(); ++k) {
            const auto& ev = got[k];
            const auto& a = ev["args"];
            EXPECT_EQ(ev["name"].get<std::string>(), collective_name(want[k].c.kind))
                << i << "/" << k;
            EXPECT_EQ(a["bytes"].get<double>(), want[k].c.bytes) << i << "/" << k;
            EXPECT_EQ(a["chunk_bytes"].get<uint64_t>(), collective_chunk_bytes(want[k].c, tp));
            EXPECT_EQ(a["op"].get<std::string>(), want[k].op) << i << "/" << k;
            EXPECT_EQ(a.contains("layer") ? a["layer"].get<int>() : -1, want[k].layer)
                << i << "/" << k;
            const double ts = ev["ts"].get<double>(), dur = ev["dur"].get<double>();
            // Inside its step's slice, after the previous collective (1 ps of print rounding).
            const double eps = 1e-6;
            EXPECT_GE(ts, prev_end - eps) << i << "/" << k;
            EXPECT_LE(ts + dur, s_ts + s_dur + eps) << i << "/" << k;
            EXPECT_GT(ts, s_ts) << i << "/" << k;  // the embedding runs first
            prev_end = ts + dur;
            // Idle NVLink: the closed form's time, to 1e-12 relative or to the resolution of
            // the simulated clock where the collective ends (end - start of two doubles near
            // t carries a few ulp(t): 2.05 us ending at 8.8 ms is off by 3.5e-18 s = 1.7e-12
            // relative, 1 ulp; a TP = 4 ring of 6 steps by up to about 5 ulp). 16 ulp here is
            // 3e-17 s: anything the model gets wrong (a hop's latency, a byte) is far larger.
            const double idle = collective_seconds(p.platform, p.gpus, want[k].c);
            ASSERT_GT(idle, 0);
            const double end_s = (ts + dur) * 1e-6;
            const double clock_ulp = std::nextafter(end_s, INFINITY) - end_s;
            const double err = std::abs(dur * 1e-6 - idle);
            worst_rel = std::max(worst_rel, err / idle);
            worst_ulps = std::max(worst_ulps, err / clock_ulp);
            EXPECT_LE(err, std::max(1e-12 * idle, 16 * clock_ulp))
                << i << "/" << k << ": " << dur * 1e-6 << " vs " << idle << ", ends at "
                << end_s;
            ++by_kind[size_t(want[k].c.kind) - 1];
        }
    }
    EXPECT_EQ(collectives, expected_total);
    // The run has all three kinds: all-reduces (embedding, layers), the Engram all-gather, the
    // LM head's gather; 2 all-reduces per layer plus the embedding's.
    EXPECT_EQ(by_kind[0], p.steps.size() * (1 + 2 * size_t(p.backbone.layers)));
    EXPECT_EQ(by_kind[1], p.steps.size() * p.engram_layers.size());
    EXPECT_EQ(by_kind[2], p.steps.size());
    std::printf("TP=%d %s: %zu collective slices, worst error %.3g relative, %.3g clock ulps\n",
                tp, comms.c_str(), collectives, worst_rel, worst_ulps);
    std::fflush(stdout);  // before the next fork
}

}  // namespace

TEST(TimelineCollectives, Tp2SlicesMatchThePlanAndIdleLinkTimes) {
    check_run(2, "coalesced");
    check_run(2, "ring-steps");
}

TEST(TimelineCollectives, Tp4SlicesMatchThePlanAndIdleLinkTimes) {
    check_run(4, "coalesced");
    check_run(4, "ring-steps");
}

// TP = 1: no collective runs, the timeline has no collectives track.
TEST(TimelineCollectives, Tp1HasNoCollectiveTrack) {
    const Plan p = small_plan(1, "coalesced");
    const DesResult r = simulate_forked(p);
    EXPECT_TRUE(r.collectives.empty());
    const nlohmann::json tl = timeline(p, r);
    for (const auto& ev : tl["traceEvents"]) EXPECT_NE(ev.value("tid", 0), 3) << ev.dump();
}

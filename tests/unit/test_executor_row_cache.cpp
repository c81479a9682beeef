// The executor's DRAM cache in front of a table file (executor/row_cache.h): it hands back the
// file's bytes whatever it serves from where, it hits where a brute-force LRU does, and a whole
// run through it hits where the simulator's placement replay says, step by step and layer by
// layer, producing the same tokens as a run reading every row from the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <list>
#include <random>
#include <unordered_map>

#include "executor/executor.h"
#include "executor/row_cache.h"
#include "executor_test_config.h"
#include "kernels/cpu/block_io.h"
#include "model/config.h"
#include "sim/timing/plan.h"
#include "traces/lookups.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::executor;

namespace {

// Least recently used over row keys, the plain way: the golden hits.
class BruteLru {
public:
    explicit BruteLru(size_t capacity) : capacity_(capacity) {}
    bool access(uint64_t key) {
        if (auto it = where_.find(key); it != where_.end()) {
            order_.splice(order_.begin(), order_, it->second);
            return true;
        }
        if (capacity_ == 0) return false;
        if (order_.size() == capacity_) {
            where_.erase(order_.back());
            order_.pop_back();
        }
        order_.push_front(key);
        where_[key] = order_.begin();
        return false;
    }

private:
    size_t capacity_;
    std::list<uint64_t> order_;
    std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where_;
};

// A file beside the build (a tmpfs /tmp may refuse O_DIRECT), removed at the end.
struct TempFile {
    std::string path = "row_cache_test_" + std::to_string(getpid()) + ".bin";
    ~TempFile() { std::filesystem::remove(path); }
};

std::vector<uint64_t> distinct(const std::vector<uint64_t>& keys) {
    std::vector<uint64_t> out;
    std::unordered_map<uint64_t, bool> seen;
    for (uint64_t k : keys)
        if (!seen[k]) seen[k] = true, out.push_back(k);
    return out;
}

}  // namespace

TEST(DramRowCache, ServesTheFilesBytesAndHitsWhereLruDoes) {
    constexpr size_t kRow = 128, kIo = 4096;
    constexpr uint64_t kRows = 2048;  // 64 blocks of 32 packed rows
    TempFile tmp;
    std::unique_ptr<kernels::BlockFile> file;
    try {
        file = std::make_unique<kernels::BlockFile>(tmp.path, kRows * kRow, kIo);
    } catch (const std::runtime_error& e) {
        GTEST_SKIP() << "this file system refuses direct I/O: " << e.what();
    }
    // Fetches of 40 distinct rows drawn from a skewed set of 300, so rows come back often.
    std::mt19937_64 rng(11);
    std::vector<std::vector<uint64_t>> fetches(60);
    std::vector<uint64_t> all;
    for (auto& f : fetches) {
        std::vector<uint64_t> keys;
        while (distinct(keys).size() < 40) {
            const uint64_t r = rng() % 300;
            keys.push_back(r * r % kRows);
        }
        f = distinct(keys);
        all.insert(all.end(), f.begin(), f.end());
    }
    const placement::DenseTrace trace = placement::densify_ids(all, kRow);
    for (uint64_t capacity : {0u, 1u, 37u, 120u}) {
        DramRowCache cache(trace, capacity, kRow, "lru", {});
        kernels::BlockFetchExecutor cached(*file, kRow, 4, kernels::RowLayout::Packed);
        kernels::BlockFetchExecutor direct(*file, kRow, 2, kernels::RowLayout::Packed);
        BruteLru golden(capacity);
        uint64_t hits = 0;
        for (const auto& f : fetches) {
            const CacheFetchTimes t = cache.serve(cache.ticket(), f, cached);
            uint64_t want = 0;
            for (uint64_t k : f) want += golden.access(k);
            ASSERT_EQ(t.hits, want) << "capacity " << capacity;
            ASSERT_EQ(t.hits + t.misses, f.size());
            hits += t.hits;
            direct.read(f);
            const auto got = cached.staging(), expect = direct.staging();
            ASSERT_EQ(got.size(), expect.size());
            ASSERT_TRUE(std::equal(got.begin(), got.end(), expect.begin()))
                << "capacity " << capacity << ": a row's bytes differ from the file's";
        }
        if (capacity == 0) {
            EXPECT_EQ(hits, 0u);
        } else if (capacity >= 37) {
            EXPECT_GT(hits, 0u);  // the check means something
        }
    }
}

TEST(DramRowCache, ServesFetchesInTicketOrderWhateverThreadComesFirst) {
    constexpr size_t kRow = 128, kIo = 4096;
    TempFile tmp;
    std::unique_ptr<kernels::BlockFile> file;
    try {
        file = std::make_unique<kernels::BlockFile>(tmp.path, 1024 * kRow, kIo);
    } catch (const std::runtime_error& e) {
        GTEST_SKIP() << "this file system refuses direct I/O: " << e.what();
    }
    const std::vector<uint64_t> a = {1, 2, 3, 4}, b = {3, 4, 5, 6};
    std::vector<uint64_t> all = a;
    all.insert(all.end(), b.begin(), b.end());
    const placement::DenseTrace trace = placement::densify_ids(all, kRow);
    DramRowCache cache(trace, 16, kRow, "lru", {});
    kernels::BlockFetchExecutor ea(*file, kRow, 1, kernels::RowLayout::Packed);
    kernels::BlockFetchExecutor eb(*file, kRow, 1, kernels::RowLayout::Packed);
    const uint64_t ta = cache.ticket(), tb = cache.ticket();
    // b's thread starts first but must wait for a: then 3 and 4 are hits for b.
    CacheFetchTimes rb;
    std::thread later([&] { rb = cache.serve(tb, b, eb); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const CacheFetchTimes ra = cache.serve(ta, a, ea);
    later.join();
    EXPECT_EQ(ra.hits, 0u);
    EXPECT_EQ(rb.hits, 2u);
}

namespace {

nlohmann::json disk_config(const std::string& schedule, const std::string& dram_capacity,
                           const std::string& policy) {
    nlohmann::json doc = tiny_executor_doc(4, -1, schedule);
    // Short prompts over a small vocabulary: n-grams repeat, so a small cache hits.
    doc["workload"]["max_token_id"] = 5;
    doc["sim"].update({{"table", "nvme"}, {"mechanism", "nvme"}, {"nvme_queue_depth", 3}});
    doc["placement"] = {{"dram_capacity", dram_capacity}, {"dram_policy", policy}};
    return config::resolve(doc, "test");
}

}  // namespace

TEST(ExecutorDramCache, HitsWhereThePlacementReplaySays) {
    TempFile tmp;
    ExecuteOptions opt;
    opt.compute_threads = 2;
    opt.table_file = tmp.path;
    opt.digest_fetched_rows = true;
    ExecuteResult uncached;
    try {
        uncached = execute(disk_config("none", "0", "lru"), opt);
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).find("direct") == std::string::npos) throw;
        GTEST_SKIP() << "this file system refuses direct I/O: " << e.what();
    }
    for (const char* schedule : {"none", "layer-ahead:1"})
        for (const char* policy : {"lru", "s3fifo", "sa-lru"}) {
            SCOPED_TRACE(std::string(schedule) + ", " + policy);
            const nlohmann::json cfg = disk_config(schedule, "60 rows", policy);
            const ExecuteResult r = execute(cfg, opt);
            EXPECT_EQ(r.dram_cache_rows, 60u);
            // The same bytes and tokens as every row read from the file.
            EXPECT_EQ(r.fetched_digest, uncached.fetched_digest);
            EXPECT_EQ(r.output_digest, uncached.output_digest);
            EXPECT_EQ(r.rows_digest, uncached.rows_digest);
            // Step by step and layer by layer, the hits the simulator's replay predicts.
            const sim::Plan plan = sim::make_plan(cfg);
            ASSERT_EQ(plan.steps.size(), r.steps.size());
            uint64_t hits = 0, unique = 0;
            for (size_t i = 0; i < r.steps.size(); ++i) {
                ASSERT_EQ(plan.steps[i].fetch.size(), r.steps[i].engram.size());
                for (size_t e = 0; e < r.steps[i].engram.size(); ++e) {
                    const auto& got = r.steps[i].engram[e];
                    const auto& want = plan.steps[i].fetch[e];
                    ASSERT_EQ(got.unique_rows, want.unique_rows) << "step " << i << " layer " << e;
                    ASSERT_EQ(got.cache_hits, want.dram_rows) << "step " << i << " layer " << e;
                    hits += got.cache_hits, unique += got.unique_rows;
                }
            }
            EXPECT_GT(hits, 0u);  // the cache hit, and missed
            EXPECT_LT(hits, unique);
            if (std::string(policy) != "lru") continue;
            // And where a brute-force LRU over the trace's rows does.
            const EngramConfig engram = EngramConfig::from_json(cfg["engram"]);
            const Workload work = make_workload(cfg["workload"]);
            SchedulerConfig sc{.max_num_seqs = 4, .max_num_batched_tokens = 64, .kv_block_size = 4,
                               .num_kv_blocks = kv_blocks(cfg)};
            auto lookups = hashed_lookups(engram, work, sc);
            BruteLru golden(60);
            StepBatch b;
            size_t i = 0;
            while (lookups->next(b)) {
                for (size_t e = 0; e < b.rows.size(); ++e) {
                    uint64_t want = 0;
                    for (uint64_t k : distinct(b.rows[e])) want += golden.access(k);
                    ASSERT_EQ(r.steps[i].engram[e].cache_hits, want) << "step " << i;
                }
                ++i;
            }
            EXPECT_EQ(i, r.steps.size());
        }
}

// Every row of the table file cached (placement.dram_capacity "all", the default): the rows are
// gathered from DRAM, as the simulator's nvme mechanism times them, and nothing is read.
TEST(ExecutorDramCache, TheWholeTableCachedIsServedFromDram) {
    ExecuteOptions opt;
    opt.compute_threads = 2;
    opt.digest_fetched_rows = true;
    opt.table_file = "never_written_" + std::to_string(getpid()) + ".bin";
    nlohmann::json in_dram = tiny_executor_doc(4, -1, "none");
    in_dram["workload"]["max_token_id"] = 5;
    const ExecuteResult want = execute(config::resolve(in_dram, "test"), opt);
    for (const char* all : {"all", "100%"}) {
        const ExecuteResult got = execute(disk_config("none", all, "lru"), opt);
        EXPECT_NE(got.table.find("host DRAM"), std::string::npos) << got.table;
        EXPECT_EQ(got.dram_cache_rows, 0u);
        EXPECT_EQ(got.fetched_digest, want.fetched_digest);
        EXPECT_EQ(got.output_digest, want.output_digest);
        EXPECT_FALSE(std::filesystem::exists(opt.table_file));
    }
}

TEST(ExecutorDramCache, RefusesCachesItCannotBuildNamingTheKey) {
    const auto msg = refusal_of;
    auto has = [&](nlohmann::json cfg, const std::string& key) {
        const std::string m = msg(cfg);
        EXPECT_EQ(m.rfind(key + ":", 0), 0u) << m;
    };
    has(disk_config("none", "60 rows", "static"), "placement.dram_policy");
    has(disk_config("none", "60 rows", "belady"), "placement.dram_policy");
    nlohmann::json c = disk_config("none", "60 rows", "lru");
    c["placement"]["dram_policy_options"] = {{"lookahead", "4"}};
    has(c, "placement.dram_policy_options.lookahead");
    c = disk_config("none", "60 rows", "lru");
    c["placement"]["warmup_requests"] = 8;
    has(c, "placement.warmup_requests");
    c = disk_config("none", "60 rows", "lru");
    c["placement"]["hbm_capacity"] = "1000 rows";
    has(c, "placement.hbm_capacity");
}

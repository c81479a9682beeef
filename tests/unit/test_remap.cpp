// Remapping keys to dense ids (sim/placement/remap.h) against a plain hash map numbering keys as
// they come: the same ids bit for bit, whatever the threads and partitions; the grouped and the
// streamed numberings are bijections of the keys; the id file is mapped and refused by name.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "sim/placement/dense_trace.h"
#include "sim/placement/id_file.h"
#include "sim/placement/policy_util.h"
#include "sim/placement/remap.h"

namespace {

using namespace engramsim::placement;

// The brute-force numbering: first sight, one hash map.
struct Brute {
    std::vector<uint64_t> keys;
    std::vector<uint32_t> requests;
    explicit Brute(const std::vector<uint64_t>& ids) {
        std::unordered_map<uint64_t, uint32_t> id;
        for (uint64_t k : ids) {
            auto [it, fresh] = id.emplace(k, uint32_t(keys.size()));
            if (fresh) keys.push_back(k);
            requests.push_back(it->second);
        }
    }
};

// Sequences with what could break a partitioned numbering: a few keys or all distinct, long
// repeats, every key in one partition, the extreme keys 0 and UINT64_MAX.
std::vector<std::vector<uint64_t>> sequences() {
    std::vector<std::vector<uint64_t>> out;
    out.push_back({});
    out.push_back({42});
    out.push_back({0, UINT64_MAX, 0, 7, UINT64_MAX, 7});
    std::mt19937_64 rng(3);
    for (uint64_t n : {1000ull, 70000ull, 300000ull}) {
        std::vector<uint64_t> few, skewed, distinct;
        for (uint64_t i = 0; i < n; ++i) {
            few.push_back(rng() % 5);
            const uint64_t r = rng() % 2000;
            skewed.push_back(r * r * 7919 + 1);
            distinct.push_back(rng());
        }
        out.push_back(few);
        out.push_back(skewed);
        out.push_back(distinct);
    }
    std::vector<uint64_t> same(200000, 123456789);  // one key: one partition gets every request
    out.push_back(same);
    // Many keys, all in one of 256 partitions (their hashes' top 8 bits 0): its table, sized for
    // a partition's share, doubles again and again.
    std::vector<uint64_t> crowded;
    for (uint64_t k = 1; crowded.size() < 30000; ++k)
        if (detail::fmix64(k) >> 56 == 0) crowded.push_back(k);
    for (int i = 0; i < 3; ++i) out.push_back(crowded);  // seen again, after the growths
    std::vector<uint64_t> joined;
    for (const auto& part : {crowded, crowded, crowded}) joined.insert(joined.end(), part.begin(), part.end());
    out.push_back(joined);
    return out;
}

TEST(Remap, FirstSightIdsEqualAHashMapsWhateverThreadsAndPartitions) {
    for (const auto& ids : sequences()) {
        const Brute want(ids);
        for (unsigned threads : {1u, 2u, 3u, 8u})
            for (unsigned partitions : {0u, 1u, 2u, 16u, 256u}) {
                SCOPED_TRACE("n " + std::to_string(ids.size()) + " threads " +
                             std::to_string(threads) + " partitions " + std::to_string(partitions));
                std::vector<uint64_t> keys;
                std::vector<uint32_t> requests;
                remap_keys(ids, keys, requests, threads, partitions);
                ASSERT_EQ(requests, want.requests);
                ASSERT_EQ(keys, want.keys);
                EXPECT_EQ(number_keys(ids, threads, partitions).total_distinct(),
                          want.keys.size());
            }
    }
}

// Grouped ids (an id file for an order-only replay) and the streamed numbering (the one-pass
// replay) name each key by one id and each id by one key, and depend on the keys alone.
TEST(Remap, GroupedAndStreamedIdsAreBijectionsOfTheKeys) {
    for (const auto& ids : sequences()) {
        SCOPED_TRACE("n " + std::to_string(ids.size()));
        const Brute want(ids);
        std::vector<uint32_t> first_streamed;
        for (unsigned threads : {1u, 2u, 4u}) {
            const NumberedKeys numbered = number_keys(ids, threads);
            std::vector<uint64_t> keys;
            std::vector<uint32_t> requests;
            grouped_ids(ids, numbered, keys, requests);
            ASSERT_EQ(requests.size(), ids.size());
            ASSERT_EQ(keys.size(), want.keys.size());
            std::set<uint64_t> every(keys.begin(), keys.end());
            EXPECT_EQ(every.size(), keys.size());  // each id one key
            for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(keys[requests[i]], ids[i]);

            std::vector<uint32_t> streamed;
            each_numbered_id(numbered, [&](std::span<const uint32_t> s, uint64_t first) {
                ASSERT_EQ(first, streamed.size());
                streamed.insert(streamed.end(), s.begin(), s.end());
            });
            ASSERT_EQ(streamed.size(), ids.size());
            std::map<uint32_t, uint64_t> key_of;
            std::map<uint64_t, uint32_t> id_of;
            for (size_t i = 0; i < ids.size(); ++i) {
                ASSERT_LT(streamed[i], numbered.numbered_universe());
                EXPECT_EQ(key_of.emplace(streamed[i], ids[i]).first->second, ids[i]);
                EXPECT_EQ(id_of.emplace(ids[i], streamed[i]).first->second, streamed[i]);
            }
            EXPECT_EQ(id_of.size(), want.keys.size());
            EXPECT_LE(numbered.numbered_universe(), want.keys.size() + want.keys.size() / 4 + 4096);
            if (threads == 1) first_streamed = streamed;
            EXPECT_EQ(streamed, first_streamed);  // threads change nothing
        }
    }
}

TEST(Remap, AnIdFileIsMappedOrRefusedByName) {
    const std::string path = testing::TempDir() + "remap_ids.u64";
    const std::vector<uint64_t> ids = {5, UINT64_MAX, 5, 9};
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 8));
    }
    {
        const IdFile file(path);
        EXPECT_EQ(std::vector<uint64_t>(file.ids().begin(), file.ids().end()), ids);
        const DenseTrace grouped = densify_id_file(path, 8, IdOrder::Grouped);
        const DenseTrace first = densify_id_file(path, 8);
        EXPECT_EQ(first.requests, (std::vector<uint32_t>{0, 1, 0, 2}));
        EXPECT_EQ(first.keys, (std::vector<uint64_t>{5, UINT64_MAX, 9}));
        ASSERT_EQ(grouped.requests.size(), 4u);
        for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(grouped.keys[grouped.requests[i]], ids[i]);
        EXPECT_EQ(grouped.universe(), 3u);
    }
    auto error_of = [](const std::string& p) {
        try {
            IdFile file(p);
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    EXPECT_NE(error_of(testing::TempDir()).find("is a directory"), std::string::npos);
    std::remove(path.c_str());
    EXPECT_NE(error_of(path).find("cannot open"), std::string::npos);
}

}  // namespace

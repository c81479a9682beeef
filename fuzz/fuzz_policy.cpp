// Cache policy options and capacity lists: parse_policy_options and make_policy (every
// registered policy, with the parsed options, driven over a short request sequence), and
// parse_capacity_rows over a comma-separated list as `engramsim replay --capacity` takes it.
//
// Input: byte 0 picks the policy, byte 1 the capacity in rows, byte 2 the universe, byte 3 the
// row size and table size for the capacity texts; then the options text up to a newline, the
// capacity list up to a second newline, and the rest is the request sequence (one byte per id).
// Contract: options, a policy and capacities, or a PolicyError / std::invalid_argument (any
// std::exception); a policy answers hit exactly when the row is resident and never holds more
// rows than its capacity; a capacity is at most the table for "all" and percentages.
#include <cmath>

#include "fuzz/fuzz_util.h"
#include "sim/placement/cache_policy.h"
#include "sim/placement/replay.h"

using namespace engramsim;
using namespace engramsim::placement;

namespace {

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4 || size > 4096) return 0;
    const auto& all = policies();
    const std::string name = all[data[0] % all.size()].name;
    const uint64_t capacity = data[1] % 40;
    const uint32_t universe = 1 + data[2] % 64;
    static const double kRowBytes[] = {80, 1, 160, 4096, 0.5, 1e-3, 1e9, 3};
    static const uint64_t kTableRows[] = {1000, 0, 1, 646400, 1ull << 40, 7, UINT64_MAX, 100};
    const double row_bytes = kRowBytes[data[3] & 7];
    const uint64_t table_rows = kTableRows[(data[3] >> 3) & 7];
    const std::string rest(reinterpret_cast<const char*>(data + 4), size - 4);
    const size_t nl1 = rest.find('\n');
    const std::string options_text = rest.substr(0, nl1);
    const size_t nl2 = nl1 == std::string::npos ? nl1 : rest.find('\n', nl1 + 1);
    const std::string capacities =
        nl1 == std::string::npos ? std::string() : rest.substr(nl1 + 1, nl2 - nl1 - 1);
    const std::string sequence = nl2 == std::string::npos ? std::string() : rest.substr(nl2 + 1);

    // The capacity list, split on commas as the CLI does.
    for (size_t start = 0; start <= capacities.size();) {
        size_t end = capacities.find(',', start);
        if (end == std::string::npos) end = capacities.size();
        const std::string item = capacities.substr(start, end - start);
        start = end + 1;
        try {
            const uint64_t rows = parse_capacity_rows(item, row_bytes, table_rows);
            if (trim(item) == "all" || (!trim(item).empty() && trim(item).back() == '%'))
                FUZZ_CHECK(rows <= table_rows, "capacity '" + item + "' exceeds the table");
        } catch (const std::exception&) {
        }
        if (capacities.empty()) break;
    }

    std::map<std::string, std::string> options;
    try {
        options = parse_policy_options(options_text);
    } catch (const std::exception&) {
        return 0;
    }

    std::vector<uint32_t> ids;
    for (unsigned char c : sequence) ids.push_back(c % universe);
    std::vector<uint32_t> next_use(ids.size(), kNever);
    {
        std::vector<uint32_t> seen(universe, kNever);
        for (size_t t = ids.size(); t-- > 0;) {
            next_use[t] = seen[ids[t]];
            seen[ids[t]] = uint32_t(t);
        }
    }
    std::vector<uint64_t> keys(universe), counts(universe, 0);
    for (uint32_t i = 0; i < universe; ++i) keys[i] = uint64_t(i) * 0x9E3779B97F4A7C15ull;
    for (uint32_t id : ids) ++counts[id];
    PolicyContext ctx;
    ctx.capacity_rows = capacity;
    ctx.universe = universe;
    ctx.keys = keys;
    ctx.next_use = next_use;
    if (name == "static") ctx.profile_counts = counts;
    ctx.options = options;
    std::unique_ptr<CachePolicy> policy;
    try {
        policy = make_policy(name, ctx);
    } catch (const std::exception&) {
        return 0;
    }
    FUZZ_CHECK(policy != nullptr, "make_policy returned null");
    for (size_t t = 0; t < ids.size(); ++t) {
        const bool resident = policy->contains(ids[t]);
        const bool hit = policy->access(ids[t], uint32_t(t));
        FUZZ_CHECK(hit == resident, name + ": hit " + std::to_string(hit) + " for a row resident " +
                                        std::to_string(resident));
        FUZZ_CHECK(policy->size() <= capacity, name + ": holds more rows than its capacity");
    }
    return 0;
}

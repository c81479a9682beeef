// The registry: one line per policy. Keep the table sorted by name.
#include <algorithm>
#include <charconv>

#include "sim/placement/cache_policy.h"
#include "sim/placement/policy_util.h"

namespace engramsim::placement {

// Factories, one per file (sim/placement/<policy>.cpp).
std::unique_ptr<CachePolicy> make_belady(const PolicyContext&);
std::unique_ptr<CachePolicy> make_lfu(const PolicyContext&);
std::unique_ptr<CachePolicy> make_lru(const PolicyContext&);
std::unique_ptr<CachePolicy> make_s3fifo(const PolicyContext&);
std::unique_ptr<CachePolicy> make_sa_lfu(const PolicyContext&);
std::unique_ptr<CachePolicy> make_sa_lru(const PolicyContext&);
std::unique_ptr<CachePolicy> make_sieve(const PolicyContext&);
std::unique_ptr<CachePolicy> make_static(const PolicyContext&);

const std::vector<PolicyInfo>& policies() {
    static const std::vector<PolicyInfo> all = {
        {"belady", "Belady/MIN from exact next-use times; admission=bypass|always", true,
         make_belady},
        {"lfu",
         "LFU with dynamic aging (LFU-DA), ties to LRU; aging=dynamic|none, lookahead=W keeps "
         "rows needed within W steps",
         false, make_lfu},
        {"lru", "least recently used; lookahead=W keeps rows needed within W steps", false,
         make_lru},
        {"s3fifo",
         "S3-FIFO (small, main, ghost FIFOs); small=0.1, move_threshold=1, lookahead=W keeps "
         "rows needed within W steps",
         false, make_s3fifo},
        {"sa-lfu",
         "FBGEMM-style N-way set-associative LFU, hashed sets; ways=32, "
         "admission=frequency|always, lookahead=W keeps rows needed within W steps (per set)",
         false, make_sa_lfu},
        {"sa-lru",
         "FBGEMM-style N-way set-associative LRU, hashed sets; ways=32, lookahead=W keeps rows "
         "needed within W steps (per set)",
         false, make_sa_lru},
        {"sieve",
         "SIEVE (FIFO with a visited bit and a moving hand); lookahead=W keeps rows needed within "
         "W steps",
         false, make_sieve},
        {"static", "pins the most frequent rows of a profiling window or warm-up trace", false,
         make_static},
    };
    return all;
}

const PolicyInfo& policy_info(const std::string& name) {
    for (const auto& p : policies())
        if (name == p.name) return p;
    std::string known;
    for (const auto& p : policies()) known += (known.empty() ? "" : ", ") + std::string(p.name);
    throw PolicyError("unknown policy '" + name + "'; known: " + known);
}

bool decides_online(const std::string& name, const std::map<std::string, std::string>& options) {
    return !policy_info(name).needs_next_use && !options.count("lookahead") && name != "static";
}

std::unique_ptr<CachePolicy> make_policy(const std::string& name, const PolicyContext& ctx) {
    const PolicyInfo& info = policy_info(name);
    if (info.needs_next_use && ctx.capacity_rows > 0 && ctx.next_use.empty())
        throw PolicyError("policy '" + name +
                          "' needs next-use times: it can only manage the HBM cache, which sees "
                          "the trace's own request sequence");
    return info.make(ctx);
}

uint64_t CachePolicy::run(std::span<const uint32_t> ids, uint32_t t0) {
    uint64_t misses = 0;
    for (size_t i = 0; i < ids.size(); ++i) misses += !access(ids[i], t0 + uint32_t(i));
    return misses;
}

std::map<std::string, std::string> parse_policy_options(const std::string& text) {
    std::map<std::string, std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(start, end - start);
        const size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0)
            throw PolicyError("policy option '" + item + "': expected key=value");
        out[item.substr(0, eq)] = item.substr(eq + 1);
        start = end + 1;
    }
    return out;
}

namespace detail {

const std::string* OptionReader::find(const std::string& key) {
    known_.push_back(key);
    auto it = options_.find(key);
    return it == options_.end() ? nullptr : &it->second;
}

uint64_t OptionReader::integer(const std::string& key, uint64_t def, uint64_t min, uint64_t max) {
    const std::string* v = find(key);
    if (!v) return def;
    uint64_t x = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || p != v->data() + v->size() || x < min || x > max)
        throw PolicyError("policy " + policy_ + ": option " + key + "='" + *v +
                          "': expected an integer in [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
    return x;
}

double OptionReader::fraction(const std::string& key, double def) {
    const std::string* v = find(key);
    if (!v) return def;
    double x = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || p != v->data() + v->size() || !(x >= 0 && x <= 1))
        throw PolicyError("policy " + policy_ + ": option " + key + "='" + *v +
                          "': expected a number in [0, 1]");
    return x;
}

std::string OptionReader::choice(const std::string& key, const std::vector<std::string>& choices) {
    const std::string* v = find(key);
    if (!v) return choices.front();
    if (std::find(choices.begin(), choices.end(), *v) != choices.end()) return *v;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    throw PolicyError("policy " + policy_ + ": option " + key + "='" + *v + "'; known: " + list);
}

void OptionReader::finish() const {
    for (const auto& [key, value] : options_) {
        if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        throw PolicyError("policy " + policy_ + ": unknown option '" + key +
                          "'; known: " + (list.empty() ? "(none)" : list));
    }
}

}  // namespace detail
}  // namespace engramsim::placement

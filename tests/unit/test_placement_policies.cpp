// Every cache policy against a brute-force reference written from its definition (lists and
// linear scans, O(n * capacity)): identical hit/miss sequences on random small traces, at many
// capacities. Belady has no more misses than any policy on every trace (property test).
// The references of lru, lfu, s3fifo, sieve, sa-lru and sa-lfu also take the lookahead=W rule
// (Window): with and without steps, at several W and capacities, they match the policies request
// by request.
#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <random>

#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"

using namespace engramsim::placement;

namespace {

// ---- Random traces ----------------------------------------------------------------------------

struct Trace {
    std::vector<uint32_t> ids;
    std::vector<uint64_t> keys;  // dense id -> key (spread out, as table rows are)
    uint32_t universe = 0;
};

// Skewed ids (u^skew), a few hundred distinct, as Engram row popularity is.
Trace random_trace(uint64_t seed, size_t n, uint32_t universe, double skew) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    Trace t;
    std::vector<uint64_t> raw;
    for (size_t i = 0; i < n; ++i)
        raw.push_back(uint64_t(std::pow(u(rng), skew) * universe) * 7919 + 13);
    DenseTrace d = densify_ids(raw);
    t.ids = d.requests;
    t.keys = d.keys;
    t.universe = d.universe();
    return t;
}

// ---- Lookahead window, by brute force -----------------------------------------------------------

// The rows needed at request t under lookahead=W: those requested at positions t+1 .. end-1,
// where end is the first position of the step W+1 steps after t's (without steps, every request
// is one: end = t + W + 1). Off (seq null): no row is needed.
struct Window {
    const std::vector<uint32_t>* seq = nullptr;
    std::vector<uint64_t> step_first;  // empty: every request is a step
    uint64_t w = 0;
    uint32_t universe = 0;
    bool on() const { return seq != nullptr; }
    uint64_t end(size_t t) const {
        if (step_first.empty()) return t + w + 1;
        size_t s = 0;
        while (s + 1 < step_first.size() && step_first[s + 1] <= t) ++s;
        return s + w + 1 < step_first.size() ? step_first[s + w + 1] : UINT64_MAX;
    }
    struct Needed {
        std::vector<bool> rows;  // empty: lookahead off
        bool operator[](uint32_t r) const { return !rows.empty() && rows[r]; }
    };
    Needed needed_at(size_t t) const {
        Needed need;
        if (!seq) return need;
        need.rows.assign(universe, false);
        const uint64_t e = end(t);
        for (size_t k = t + 1; k < seq->size() && k < e; ++k) need.rows[(*seq)[k]] = true;
        return need;
    }
};

// ---- Brute-force references -------------------------------------------------------------------

struct Reference {
    virtual ~Reference() = default;
    virtual bool access(uint32_t id, size_t t) = 0;
};

// Lookahead: the least recently used row not needed; when all are needed, the LRU row.
struct RefLru : Reference {
    size_t cap;
    Window win;
    std::list<uint32_t> l;  // front = most recent
    explicit RefLru(size_t c, Window w = {}) : cap(c), win(std::move(w)) {}
    bool access(uint32_t id, size_t t) override {
        auto it = std::find(l.begin(), l.end(), id);
        if (it != l.end()) {
            l.erase(it);
            l.push_front(id);
            return true;
        }
        if (cap == 0) return false;
        if (l.size() == cap) {
            const auto need = win.needed_at(t);
            auto v = std::prev(l.end());
            for (auto r = l.rbegin(); r != l.rend(); ++r)
                if (!need[*r]) {
                    v = std::prev(r.base());
                    break;
                }
            l.erase(v);
        }
        l.push_front(id);
        return false;
    }
};

struct RefLfuDa : Reference {
    struct E {
        uint32_t id;
        uint64_t prio, freq;
        size_t last;
    };
    size_t cap;
    bool aging;
    Window win;
    uint64_t L = 0;
    std::vector<E> v;
    RefLfuDa(size_t c, bool a, Window w = {}) : cap(c), aging(a), win(std::move(w)) {}
    bool access(uint32_t id, size_t t) override {
        for (auto& e : v)
            if (e.id == id) {
                e.freq++;
                e.prio = L + e.freq;
                e.last = t;
                return true;
            }
        if (cap == 0) return false;
        if (v.size() == cap) {
            // lookahead: the lowest (prio, last) among rows not needed; when all are, among all
            const auto need = win.needed_at(t);
            const bool any_free =
                std::any_of(v.begin(), v.end(), [&](const E& e) { return !need[e.id]; });
            size_t m = SIZE_MAX;
            for (size_t i = 0; i < v.size(); ++i) {
                if (any_free && need[v[i].id]) continue;
                if (m == SIZE_MAX || v[i].prio < v[m].prio ||
                    (v[i].prio == v[m].prio && v[i].last < v[m].last))
                    m = i;
            }
            if (aging) L = v[m].prio;
            v.erase(v.begin() + ptrdiff_t(m));
        }
        v.push_back({id, L + 1, 1, t});
        return false;
    }
};

struct RefBelady : Reference {
    size_t cap;
    bool bypass;
    const std::vector<uint32_t>& seq;
    std::vector<uint32_t> in;
    RefBelady(size_t c, bool b, const std::vector<uint32_t>& s) : cap(c), bypass(b), seq(s) {}
    uint64_t next(uint32_t id, size_t t) const {
        for (size_t k = t + 1; k < seq.size(); ++k)
            if (seq[k] == id) return k;
        return UINT64_MAX;
    }
    bool access(uint32_t id, size_t t) override {
        if (std::find(in.begin(), in.end(), id) != in.end()) return true;
        if (cap == 0) return false;
        if (in.size() == cap) {
            size_t far = 0;
            for (size_t i = 1; i < in.size(); ++i) {
                const uint64_t a = next(in[i], t), b = next(in[far], t);
                if (a > b || (a == b && in[i] < in[far])) far = i;
            }
            if (bypass && next(id, t) >= next(in[far], t)) return false;
            in.erase(in.begin() + ptrdiff_t(far));
        }
        in.push_back(id);
        return false;
    }
};

struct RefStatic : Reference {
    std::vector<uint32_t> pinned;
    RefStatic(size_t cap, const std::vector<uint64_t>& counts, const std::vector<uint64_t>& keys) {
        std::vector<uint32_t> ids;
        for (uint32_t i = 0; i < counts.size(); ++i)
            if (counts[i]) ids.push_back(i);
        std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) {
            return counts[a] != counts[b] ? counts[a] > counts[b] : keys[a] < keys[b];
        });
        ids.resize(std::min(cap, ids.size()));
        pinned = ids;
    }
    bool access(uint32_t id, size_t) override {
        return std::find(pinned.begin(), pinned.end(), id) != pinned.end();
    }
};

// SIEVE as in the paper's pseudocode: list head = newest; the hand walks from the tail toward
// the head and wraps.
struct RefSieve : Reference {
    struct E {
        uint32_t id;
        bool visited;
    };
    size_t cap;
    Window win;
    std::list<E> l;  // front = head (newest)
    std::list<E>::iterator hand;
    bool hand_set = false;
    explicit RefSieve(size_t c, Window w = {}) : cap(c), win(std::move(w)) {}
    bool access(uint32_t id, size_t t) override {
        for (auto& e : l)
            if (e.id == id) {
                e.visited = true;
                return true;
            }
        if (cap == 0) return false;
        if (l.size() == cap) {
            auto o = hand_set ? hand : std::prev(l.end());
            // lookahead: the hand also passes needed rows (clearing bits as it goes), unless
            // every row is needed: then plain SIEVE
            const auto need = win.needed_at(t);
            const bool any_free =
                std::any_of(l.begin(), l.end(), [&](const E& e) { return !need[e.id]; });
            while (o->visited || (any_free && need[o->id])) {
                o->visited = false;
                o = o == l.begin() ? std::prev(l.end()) : std::prev(o);
            }
            hand_set = o != l.begin();
            if (hand_set) hand = std::prev(o);
            l.erase(o);
        }
        l.push_front({id, false});
        return false;
    }
};

// S3-FIFO as specified in sim/placement/s3fifo.cpp, with plain lists.
// Lookahead (when some resident row is not needed): a needed row S would evict moves to M
// (counter 0), a needed row M would evict goes back to M (counter 0), and S is evicted from also
// when every row of M is needed with counter 0. When every resident row is needed: plain.
struct RefS3Fifo : Reference {
    size_t cap, small_cap, ghost_cap;
    unsigned threshold;
    Window win;
    std::list<uint32_t> S, M, G;  // back = newest, front = oldest
    std::vector<unsigned> freq;
    RefS3Fifo(size_t c, double small, unsigned th, uint32_t universe, Window w = {})
        : cap(c), threshold(th), win(std::move(w)), freq(universe, 0) {
        small_cap = std::max<size_t>(1, size_t(std::floor(small * double(c))));
        ghost_cap = c - std::min(c, small_cap);
    }
    static bool has(const std::list<uint32_t>& l, uint32_t id) {
        return std::find(l.begin(), l.end(), id) != l.end();
    }
    void evict(size_t now) {
        const auto need = win.needed_at(now);
        auto free = [&](uint32_t r) { return !need[r]; };
        const bool la = win.on() && (std::any_of(S.begin(), S.end(), free) ||
                                     std::any_of(M.begin(), M.end(), free));
        while (true) {
            const bool m_stuck = la && std::all_of(M.begin(), M.end(), [&](uint32_t r) {
                                     return need[r] && freq[r] == 0;
                                 });
            if (S.size() >= small_cap || M.empty() || m_stuck) {
                uint32_t t = S.front();
                S.pop_front();
                if (freq[t] >= threshold || (la && need[t])) {
                    freq[t] = 0;
                    M.push_back(t);
                    continue;
                }
                if (ghost_cap) {
                    G.push_back(t);
                    if (G.size() > ghost_cap) G.pop_front();
                }
                return;
            }
            uint32_t t = M.front();
            M.pop_front();
            if (freq[t] > 0) {
                --freq[t];
                M.push_back(t);
                continue;
            }
            if (la && need[t]) {
                M.push_back(t);
                continue;
            }
            return;
        }
    }
    bool access(uint32_t id, size_t t) override {
        if (has(S, id) || has(M, id)) {
            freq[id] = std::min(3u, freq[id] + 1);
            return true;
        }
        if (cap == 0) return false;
        if (S.size() + M.size() == cap) evict(t);
        freq[id] = 0;
        if (has(G, id)) {
            G.remove(id);
            M.push_back(id);
        } else {
            S.push_back(id);
        }
        return false;
    }
};

uint64_t ref_fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

// Lookahead: within the row's set, the victim is the lowest (count, last use) (sa-lfu) or the
// least recently used (sa-lru) way whose row is not needed; when every way is needed, the plain
// victim. sa-lfu's admission=frequency compares the new row with that victim.
struct RefSetAssoc : Reference {
    struct E {
        uint32_t id;
        size_t stamp;
    };
    bool lfu, admit_by_count;
    size_t ways, sets;
    std::vector<std::vector<E>> set;
    std::vector<uint64_t> count;
    const std::vector<uint64_t>& keys;
    Window win;
    RefSetAssoc(bool is_lfu, bool admission, size_t w, size_t cap, const std::vector<uint64_t>& k,
                uint32_t universe, Window wi = {})
        : lfu(is_lfu),
          admit_by_count(admission),
          ways(w),
          count(universe, 0),
          keys(k),
          win(std::move(wi)) {
        if (cap == 0)
            sets = 0;
        else if (cap < ways)
            ways = cap, sets = 1;
        else
            sets = cap / ways;
        set.resize(sets);
    }
    bool access(uint32_t id, size_t t) override {
        ++count[id];
        if (sets == 0) return false;
        auto& s = set[ref_fmix64(keys[id]) % sets];
        for (auto& e : s)
            if (e.id == id) {
                e.stamp = t;
                return true;
            }
        if (s.size() < ways) {
            s.push_back({id, t});
            return false;
        }
        const auto need = win.needed_at(t);
        const bool any_free =
            std::any_of(s.begin(), s.end(), [&](const E& e) { return !need[e.id]; });
        auto key = [&](size_t j) { return std::make_pair(lfu ? count[s[j].id] : 0, s[j].stamp); };
        size_t m = SIZE_MAX;
        for (size_t i = 0; i < s.size(); ++i) {
            if (any_free && need[s[i].id]) continue;
            if (m == SIZE_MAX || key(i) < key(m)) m = i;
        }
        if (lfu && admit_by_count && count[id] <= count[s[m].id]) return false;
        s[m] = {id, t};
        return false;
    }
};

// ---- Harness ----------------------------------------------------------------------------------

struct Case {
    std::string policy;
    std::map<std::string, std::string> options;
};

// `win`: the lookahead window when the case has lookahead=W (lru, lfu, s3fifo, sieve, sa-lru,
// sa-lfu).
std::unique_ptr<Reference> reference(const Case& c, size_t cap, const Trace& tr,
                                     const std::vector<uint64_t>& profile, const Window& win = {}) {
    auto opt = [&](const std::string& k, const std::string& def) {
        auto it = c.options.find(k);
        return it == c.options.end() ? def : it->second;
    };
    if (c.policy == "lru") return std::make_unique<RefLru>(cap, win);
    if (c.policy == "lfu")
        return std::make_unique<RefLfuDa>(cap, opt("aging", "dynamic") == "dynamic", win);
    if (c.policy == "belady")
        return std::make_unique<RefBelady>(cap, opt("admission", "bypass") == "bypass", tr.ids);
    if (c.policy == "static") return std::make_unique<RefStatic>(cap, profile, tr.keys);
    if (c.policy == "sieve") return std::make_unique<RefSieve>(cap, win);
    if (c.policy == "s3fifo")
        return std::make_unique<RefS3Fifo>(cap, std::stod(opt("small", "0.1")),
                                           unsigned(std::stoul(opt("move_threshold", "1"))),
                                           tr.universe, win);
    if (c.policy == "sa-lru" || c.policy == "sa-lfu")
        return std::make_unique<RefSetAssoc>(
            c.policy == "sa-lfu", opt("admission", "frequency") == "frequency",
            std::stoul(opt("ways", "32")), cap, tr.keys, tr.universe, win);
    throw std::logic_error("no reference for " + c.policy);
}

const std::vector<Case>& cases() {
    static const std::vector<Case> all = {
        {"lru", {}},
        {"lfu", {}},
        {"lfu", {{"aging", "none"}}},
        {"belady", {}},
        {"belady", {{"admission", "always"}}},
        {"static", {}},
        {"sieve", {}},
        {"s3fifo", {}},
        {"s3fifo", {{"small", "0.25"}, {"move_threshold", "2"}}},
        {"sa-lru", {{"ways", "4"}}},
        {"sa-lru", {}},
        {"sa-lfu", {{"ways", "4"}}},
        {"sa-lfu", {{"ways", "8"}, {"admission", "always"}}},
    };
    return all;
}

std::string label(const Case& c) {
    std::string s = c.policy;
    for (const auto& [k, v] : c.options) s += " " + k + "=" + v;
    return s;
}

}  // namespace

TEST(PlacementPolicies, EveryPolicyMatchesItsBruteForceReferenceRequestByRequest) {
    const std::vector<uint64_t> capacities = {0, 1, 2, 3, 5, 8, 17, 40, 64, 100, 1000};
    uint64_t compared = 0;
    for (uint64_t seed = 1; seed <= 6; ++seed) {
        const Trace tr = random_trace(seed, 1500 + 200 * seed, 60 + 40 * uint32_t(seed),
                                      1.0 + 0.5 * double(seed % 4));
        const auto next = next_uses(tr.ids, tr.universe);
        // static profiles the first half of the trace
        const auto profile =
            request_counts(std::span(tr.ids).first(tr.ids.size() / 2), tr.universe);
        for (const Case& c : cases()) {
            for (uint64_t cap : capacities) {
                PolicyContext ctx{.capacity_rows = cap,
                                  .universe = tr.universe,
                                  .keys = tr.keys,
                                  .next_use = next,
                                  .profile_counts = profile,
                                  .options = c.options};
                auto fast = make_policy(c.policy, ctx);
                auto ref = reference(c, cap, tr, profile);
                uint64_t fast_misses = 0, ref_misses = 0;
                for (size_t t = 0; t < tr.ids.size(); ++t) {
                    const bool a = fast->access(tr.ids[t], uint32_t(t));
                    const bool b = ref->access(tr.ids[t], t);
                    ASSERT_EQ(a, b)
                        << label(c) << " capacity " << cap << " seed " << seed << " request " << t;
                    fast_misses += !a;
                    ref_misses += !b;
                    ASSERT_LE(fast->size(), cap);
                }
                EXPECT_EQ(fast_misses, ref_misses);
                // run() (the batch loop) gives the same misses as access() one by one
                auto batch = make_policy(c.policy, ctx);
                EXPECT_EQ(batch->run(tr.ids, 0), fast_misses) << label(c) << " capacity " << cap;
                ++compared;
            }
        }
    }
    EXPECT_EQ(compared, 6u * cases().size() * capacities.size());
}

// MIN (with bypass) is optimal among caches that start empty and may decline rows.
TEST(PlacementPolicies, BeladyHasNoMoreMissesThanAnyPolicyOnEveryTrace) {
    for (uint64_t seed = 100; seed < 130; ++seed) {
        const Trace tr =
            random_trace(seed, 3000, 50 + uint32_t(seed % 7) * 60, 1.0 + double(seed % 5));
        const auto next = next_uses(tr.ids, tr.universe);
        const auto profile = request_counts(tr.ids, tr.universe);  // oracle static
        for (uint64_t cap : {1u, 4u, 16u, 33u, 128u}) {
            auto misses = [&](const Case& c) {
                PolicyContext ctx{.capacity_rows = cap,
                                  .universe = tr.universe,
                                  .keys = tr.keys,
                                  .next_use = next,
                                  .profile_counts = profile,
                                  .options = c.options};
                auto p = make_policy(c.policy, ctx);
                // static starts with its rows loaded; count that load (every pinned row the
                // trace requests) so it is compared as a cache that starts empty, like MIN
                uint64_t preload = 0;
                for (uint32_t id = 0; id < tr.universe; ++id) preload += p->contains(id);
                return p->run(tr.ids, 0) + preload;
            };
            const uint64_t opt = misses({"belady", {}});
            for (const Case& c : cases())
                EXPECT_LE(opt, misses(c)) << label(c) << " capacity " << cap << " seed " << seed;
            for (const char* p : {"lru", "lfu", "s3fifo", "sieve", "sa-lru", "sa-lfu"})
                for (const char* w : {"0", "2", "50"})
                    EXPECT_LE(opt, misses({p, {{"lookahead", w}}})) << p << " lookahead " << w;
        }
    }
}

// LRU with lookahead=W: the least recently used row not requested again before the end of the
// step W steps after the current one; when all are, the least recently used.
TEST(PlacementPolicies, LookaheadLruMatchesItsReference) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        const Trace tr = random_trace(seed + 40, 2500, 150, 1.5);
        const auto next = next_uses(tr.ids, tr.universe);
        std::vector<uint64_t> step_first;  // steps of 1..12 requests
        std::mt19937_64 rng(seed);
        for (uint64_t p = 0; p < tr.ids.size(); p += 1 + rng() % 12) step_first.push_back(p);
        auto step_of = [&](size_t t) {
            return size_t(std::upper_bound(step_first.begin(), step_first.end(), t) -
                          step_first.begin()) -
                   1;
        };
        for (const bool steps : {true, false})
            for (uint64_t w : {0u, 1u, 3u, 10u})
                for (uint64_t cap : {1u, 4u, 20u, 60u}) {
                    PolicyContext ctx{.capacity_rows = cap,
                                      .universe = tr.universe,
                                      .next_use = next,
                                      .step_first = steps ? std::span<const uint64_t>(step_first)
                                                          : std::span<const uint64_t>(),
                                      .options = {{"lookahead", std::to_string(w)}}};
                    auto p = make_policy("lru", ctx);
                    std::list<uint32_t> l;  // front = most recent
                    for (size_t t = 0; t < tr.ids.size(); ++t) {
                        const uint32_t id = tr.ids[t];
                        bool hit = std::find(l.begin(), l.end(), id) != l.end();
                        if (hit) {
                            l.remove(id);
                        } else if (l.size() == cap) {
                            uint64_t end = t + w + 1;
                            if (steps) {
                                const size_t last = step_of(t) + w + 1;
                                end = last < step_first.size() ? step_first[last] : UINT64_MAX;
                            }
                            auto needed = [&](uint32_t r) {
                                for (size_t k = t + 1; k < tr.ids.size() && k < end; ++k)
                                    if (tr.ids[k] == r) return true;
                                return false;
                            };
                            auto v = std::prev(l.end());
                            while (needed(*v) && v != l.begin()) --v;
                            if (needed(*v)) v = std::prev(l.end());
                            l.erase(v);
                        }
                        l.push_front(id);
                        ASSERT_EQ(p->access(id, uint32_t(t)), hit)
                            << "w " << w << " cap " << cap << " t " << t << " steps " << steps;
                    }
                }
    }
}

// lookahead=W for lru, lfu, s3fifo, sieve, sa-lru and sa-lfu against the references with the
// same window rule, request by request: 4 traces x steps or none x W = 0, 1, 3, 10 x 5
// capacities.
TEST(PlacementPolicies, LookaheadMatchesTheReferencesRequestByRequest) {
    const std::vector<Case> lookahead_cases = {
        {"lru", {}},
        {"lfu", {}},
        {"lfu", {{"aging", "none"}}},
        {"s3fifo", {}},
        {"s3fifo", {{"small", "0.25"}, {"move_threshold", "2"}}},
        {"sieve", {}},
        {"sa-lru", {{"ways", "4"}}},
        {"sa-lru", {}},
        {"sa-lfu", {{"ways", "4"}}},
        {"sa-lfu", {{"ways", "8"}, {"admission", "always"}}},
    };
    const std::vector<uint64_t> capacities = {1, 2, 4, 20, 60};
    const std::vector<uint64_t> windows = {0, 1, 3, 10};
    uint64_t compared = 0, differs_from_plain = 0;
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        const Trace tr = random_trace(seed + 60, 2000, 120 + 20 * uint32_t(seed), 1.5);
        const auto next = next_uses(tr.ids, tr.universe);
        std::vector<uint64_t> step_first;  // steps of 1..12 requests
        std::mt19937_64 rng(seed);
        for (uint64_t p = 0; p < tr.ids.size(); p += 1 + rng() % 12) step_first.push_back(p);
        for (const bool steps : {true, false})
            for (uint64_t w : windows)
                for (Case c : lookahead_cases) {
                    c.options["lookahead"] = std::to_string(w);
                    for (uint64_t cap : capacities) {
                        PolicyContext ctx{.capacity_rows = cap,
                                          .universe = tr.universe,
                                          .keys = tr.keys,
                                          .next_use = next,
                                          .step_first = steps
                                                            ? std::span<const uint64_t>(step_first)
                                                            : std::span<const uint64_t>(),
                                          .options = c.options};
                        Window win{.seq = &tr.ids,
                                   .step_first = steps ? step_first : std::vector<uint64_t>(),
                                   .w = w,
                                   .universe = tr.universe};
                        auto fast = make_policy(c.policy, ctx);
                        auto ref = reference(c, cap, tr, {}, win);
                        Case plain_case = c;
                        plain_case.options.erase("lookahead");
                        auto plain = reference(plain_case, cap, tr, {});
                        uint64_t fast_misses = 0, ref_misses = 0, plain_misses = 0;
                        for (size_t t = 0; t < tr.ids.size(); ++t) {
                            const bool a = fast->access(tr.ids[t], uint32_t(t));
                            const bool b = ref->access(tr.ids[t], t);
                            ASSERT_EQ(a, b) << label(c) << " capacity " << cap << " seed " << seed
                                            << " steps " << steps << " request " << t;
                            fast_misses += !a;
                            ref_misses += !b;
                            plain_misses += !plain->access(tr.ids[t], t);
                        }
                        EXPECT_EQ(fast_misses, ref_misses);
                        differs_from_plain += fast_misses != plain_misses;
                        auto batch = make_policy(c.policy, ctx);
                        EXPECT_EQ(batch->run(tr.ids, 0), fast_misses)
                            << label(c) << " capacity " << cap;
                        ++compared;
                    }
                }
    }
    EXPECT_EQ(compared, 4u * 2 * windows.size() * lookahead_cases.size() * capacities.size());
    // the option changes what the policies do (the comparison is not of plain policies)
    EXPECT_GT(differs_from_plain, compared / 2);
}

TEST(PlacementPolicies, HandWorkedSequences) {
    // capacity 2, a b a c b a: LRU misses a b c b a (a hits once) = 5
    const std::vector<uint32_t> seq = {0, 1, 0, 2, 1, 0};
    const std::vector<uint64_t> keys = {10, 11, 12};
    const auto next = next_uses(seq, 3);
    auto run = [&](const std::string& p, std::map<std::string, std::string> o = {}) {
        PolicyContext ctx{.capacity_rows = 2,
                          .universe = 3,
                          .keys = keys,
                          .next_use = next,
                          .options = std::move(o)};
        return make_policy(p, ctx)->run(seq, 0);
    };
    EXPECT_EQ(run("lru"), 5u);
    // MIN: a b (hit a) c evicts b? next(a)=5, next(b)=4 -> evict a; b hits; a misses = 4
    EXPECT_EQ(run("belady", {{"admission", "always"}}), 4u);
    // with bypass c (never used again) is not admitted: a b hit, c miss, b hit, a hit = 3
    EXPECT_EQ(run("belady"), 3u);
}

TEST(PlacementPolicies, EraseAndContainsKeepTheCacheConsistent) {
    const Trace tr = random_trace(7, 4000, 300, 2.0);
    const auto next = next_uses(tr.ids, tr.universe);
    const auto profile = request_counts(tr.ids, tr.universe);
    for (const Case& c : cases()) {
        PolicyContext ctx{.capacity_rows = 40,
                          .universe = tr.universe,
                          .keys = tr.keys,
                          .next_use = next,
                          .profile_counts = profile,
                          .options = c.options};
        auto p = make_policy(c.policy, ctx);
        std::vector<bool> in(tr.universe, false);
        uint64_t n = 0;
        for (uint32_t id = 0; id < tr.universe; ++id)
            if (p->contains(id)) in[id] = true, ++n;  // static starts loaded
        for (size_t t = 0; t < tr.ids.size(); ++t) {
            const uint32_t id = tr.ids[t];
            const bool hit = p->access(id, uint32_t(t));
            ASSERT_EQ(hit, bool(in[id])) << label(c) << " t " << t;
            if (!hit && p->contains(id)) in[id] = true, ++n;
            if (p->victim() != kNoRow && !hit) {
                ASSERT_TRUE(in[p->victim()]);
                in[p->victim()] = false, --n;
            }
            if (t % 7 == 3) {  // drop another row now and then
                const uint32_t other = tr.ids[t / 2];
                ASSERT_EQ(p->erase(other), bool(in[other])) << label(c);
                if (in[other]) in[other] = false, --n;
            }
            ASSERT_EQ(p->size(), n) << label(c) << " t " << t;
            ASSERT_EQ(p->contains(id), bool(in[id]));
        }
    }
}

TEST(PlacementPolicies, UnknownNamesAndOptionsListTheKnownOnes) {
    PolicyContext ctx{.capacity_rows = 4, .universe = 4};
    try {
        make_policy("lur", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "unknown policy 'lur'; known: belady, lfu, lru, s3fifo, sa-lfu, sa-lru, sieve, "
                  "static");
    }
    ctx.options = {{"agin", "none"}};
    try {
        make_policy("lfu", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "policy lfu: unknown option 'agin'; known: aging, lookahead");
    }
    ctx.options = {};
    EXPECT_THROW(make_policy("belady", ctx), PolicyError);  // no next-use times
    EXPECT_EQ(parse_policy_options("ways=16,admission=always"),
              (std::map<std::string, std::string>{{"admission", "always"}, {"ways", "16"}}));
    EXPECT_THROW(parse_policy_options("ways"), PolicyError);
}

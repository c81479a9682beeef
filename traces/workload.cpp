#include "traces/workload.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "model/config.h"
#include "model/resources.h"
#include "traces/python_random.h"
#include "traces/tokens.h"

namespace engramsim {

uint64_t Workload::prompt_tokens() const {
    uint64_t n = 0;
    for (const auto& r : requests) n += r.prompt.size();
    return n;
}

uint64_t Workload::output_tokens() const {
    uint64_t n = 0;
    for (const auto& r : requests) n += r.output.size();
    return n;
}

Workload nano_vllm_workload(size_t num_seqs, uint64_t seed, int min_len, int max_input_len,
                            int max_output_len, uint32_t max_token_id) {
    Workload w;
    w.seed = seed;
    w.description = "nano-vLLM bench.py: " + std::to_string(num_seqs) + " sequences, prompt ids "
                    "uniform in [0, " + std::to_string(max_token_id) + "], input and output "
                    "lengths uniform in [" + std::to_string(min_len) + ", " +
                    std::to_string(max_input_len) + "] / [" + std::to_string(min_len) + ", " +
                    std::to_string(max_output_len) + "], seed " + std::to_string(seed);
    python::Random rng(seed);
    // Same draw order as bench.py: all prompts (length first, then its ids), then all max_tokens.
    for (size_t i = 0; i < num_seqs; ++i) {
        Request r;
        r.id = uint32_t(i);
        const auto len = rng.randint(min_len, max_input_len);
        for (int64_t t = 0; t < len; ++t) r.prompt.push_back(uint32_t(rng.randint(0, max_token_id)));
        w.requests.push_back(std::move(r));
    }
    std::vector<int64_t> max_tokens;
    for (size_t i = 0; i < num_seqs; ++i) max_tokens.push_back(rng.randint(min_len, max_output_len));
    python::Random out_rng(seed + 1);
    for (size_t i = 0; i < num_seqs; ++i)
        for (int64_t t = 0; t < max_tokens[i]; ++t)
            w.requests[i].output.push_back(uint32_t(out_rng.randint(0, max_token_id)));
    return w;
}

namespace {

// A length distribution from a resolved {"dist", "value", "min", "max", "file"} section.
class LengthDraw {
public:
    LengthDraw(const nlohmann::json& spec, const std::string& path) : path_(path) {
        dist_ = spec.at("dist").get<std::string>();
        value_ = spec.at("value").get<int64_t>();
        min_ = spec.at("min").get<int64_t>();
        max_ = spec.at("max").get<int64_t>();
        if (dist_ == "uniform" && min_ > max_)
            throw config::ConfigError(path + ": min " + std::to_string(min_) + " > max " +
                                      std::to_string(max_));
        if (dist_ == "file") {
            const std::string file = spec.at("file").get<std::string>();
            std::ifstream in(file);
            if (!in) throw config::ConfigError(path + ".file: cannot read '" + file + "'");
            for (int64_t v; in >> v;) {
                if (v < 1 || v > INT32_MAX)
                    throw config::ConfigError(path + ".file: length " + std::to_string(v) +
                                              " is outside [1, 2^31 - 1] in '" + file + "'");
                from_file_.push_back(v);
            }
            if (!in.eof())
                throw config::ConfigError(path + ".file: '" + file + "' holds something other "
                                                 "than whitespace-separated integers");
            if (from_file_.empty()) throw config::ConfigError(path + ".file: '" + file + "' is empty");
        }
    }

    // The longest length this distribution draws.
    int64_t longest() const {
        if (dist_ == "fixed") return value_;
        if (dist_ == "uniform") return max_;
        return *std::max_element(from_file_.begin(), from_file_.end());
    }

    // The i-th request's length; uniform draws come from `rng`.
    int64_t draw(size_t i, python::Random& rng) const {
        if (dist_ == "fixed") return value_;
        if (dist_ == "uniform") return rng.randint(min_, max_);
        return from_file_[i % from_file_.size()];
    }

private:
    std::string path_, dist_;
    int64_t value_ = 0, min_ = 0, max_ = 0;
    std::vector<int64_t> from_file_;
};

// Refuses, before anything is drawn, a workload whose requests would not fit in this machine's
// memory: per request its bookkeeping and, with tokens, 4 B per prompt and output token (twice,
// for the vectors' growth and what the schedule and lookups keep per token), at the longest
// lengths the distributions draw.
void require_workload_memory(const nlohmann::json& s, bool with_tokens) {
    const double n = double(s.at("num_requests").get<uint64_t>());
    const LengthDraw p(s.at("prompt_len"), "workload.prompt_len");
    const LengthDraw o(s.at("output_len"), "workload.output_len");
    const double tokens = double(p.longest()) + double(o.longest());
    const double per_request = with_tokens ? 128.0 + 8.0 * 4.0 * tokens : 64.0;
    resources::require_memory(
        n * per_request, "workload",
        s.at("num_requests").dump() + " requests (num_requests)" +
            (with_tokens ? " of up to " + std::to_string(p.longest()) + " (prompt_len) + " +
                               std::to_string(o.longest()) + " (output_len) tokens"
                         : "") +
            "; lower num_requests or the lengths");
}

Workload corpus_workload(const nlohmann::json& s) {
    const std::string tokens = s.at("tokens").get<std::string>();
    const auto [ids, starts] = read_token_documents(tokens, s.at("bos_id").get<uint32_t>());

    Workload w;
    w.seed = s.at("seed").get<uint64_t>();
    const size_t n = s.at("num_requests").get<size_t>();
    w.description = std::to_string(n) + " requests over " + tokens +
                    " (document windows; output = the real continuation)";
    python::Random rng(w.seed);
    const LengthDraw prompt_len(s.at("prompt_len"), "workload.prompt_len");
    const LengthDraw output_len(s.at("output_len"), "workload.output_len");
    // Requests walk the documents in order, wrapping around the file.
    size_t doc = 0;
    for (size_t i = 0; i < n; ++i) {
        const auto p = size_t(prompt_len.draw(i, rng));
        const auto o = size_t(output_len.draw(i, rng));
        if (p + o > ids.size())
            throw config::ConfigError("workload: a request of " + std::to_string(p + o) +
                                      " tokens does not fit in " + tokens + " (" +
                                      std::to_string(ids.size()) + " tokens)");
        size_t begin = starts[doc % starts.size()];
        if (begin + p + o > ids.size()) begin = ids.size() - p - o;  // last documents: shift back
        Request r;
        r.id = uint32_t(i);
        r.prompt.assign(ids.begin() + long(begin), ids.begin() + long(begin + p));
        r.output.assign(ids.begin() + long(begin + p), ids.begin() + long(begin + p + o));
        w.requests.push_back(std::move(r));
        ++doc;
    }
    return w;
}

}  // namespace

void request_lengths(const Workload& workload, std::vector<uint32_t>& prompt_len,
                     std::vector<uint32_t>& output_len) {
    prompt_len.clear();
    output_len.clear();
    for (const auto& r : workload.requests) {
        prompt_len.push_back(uint32_t(r.prompt.size()));
        output_len.push_back(uint32_t(r.output.size()));
    }
}

void workload_lengths(const nlohmann::json& s, std::vector<uint32_t>& prompt_len,
                      std::vector<uint32_t>& output_len) {
    if (s.at("kind") != "synthetic")
        return request_lengths(make_workload(s), prompt_len, output_len);
    require_workload_memory(s, false);
    prompt_len.clear();
    output_len.clear();
    python::Random rng(s.at("seed").get<uint64_t>());
    const LengthDraw p(s.at("prompt_len"), "workload.prompt_len");
    const LengthDraw o(s.at("output_len"), "workload.output_len");
    for (size_t i = 0; i < s.at("num_requests").get<size_t>(); ++i) {
        prompt_len.push_back(uint32_t(p.draw(i, rng)));
        output_len.push_back(uint32_t(o.draw(i, rng)));
    }
}

Workload make_workload(const nlohmann::json& s) {
    const std::string kind = s.at("kind").get<std::string>();
    if (kind != "synthetic") require_workload_memory(s, true);
    if (kind == "nano-vllm") {
        const auto& p = s.at("prompt_len");
        const auto& o = s.at("output_len");
        if (p.at("dist") != "uniform" || o.at("dist") != "uniform" || p.at("min") != o.at("min"))
            throw config::ConfigError("workload: kind nano-vllm draws uniform lengths with one "
                                      "minimum (bench.py); use kind corpus for other shapes");
        return nano_vllm_workload(s.at("num_requests").get<size_t>(), s.at("seed").get<uint64_t>(),
                                  p.at("min").get<int>(), p.at("max").get<int>(),
                                  o.at("max").get<int>(), s.at("max_token_id").get<uint32_t>());
    }
    if (kind == "synthetic")
        throw config::ConfigError("workload: kind synthetic has no tokens; it streams lookups "
                                  "(use it where lookups are consumed, not to make a trace)");
    return corpus_workload(s);
}

}  // namespace engramsim

// Writes the generated seed files of the fuzz corpus (fuzz/README.md):
//   OUT/fuzz_etr/demo.etr        a 3-request demo-v1 trace, prefixed with mode byte 0 (as is)
//   OUT/fuzz_etr/demo-raw.etr    the same with uncompressed payloads, mode byte 1 (fix-up mode)
//   OUT/fuzz_etr/small*.etr      the same for a small Engram config (fast to open)
//   OUT/fuzz_synthetic/*.json    models fitted on the bundled sample (mode byte 0 prepended)
// Usage: fuzz_make_seeds OUT
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <unordered_map>

#include "model/config.h"
#include "traces/synthetic.h"
#include "traces/trace_make.h"

using namespace engramsim;
using nlohmann::json;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
void write(const std::string& path, char mode, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.put(mode);
    out << bytes;
}
uint64_t le(const std::string& s, size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
    return v;
}

// The .etr with each block's payload decompressed (block header's payload size = raw size).
std::string decompressed(const std::string& etr) {
    const size_t meta_len = le(etr, 56, 4);
    std::string out = etr.substr(0, 64 + meta_len);
    size_t at = 64 + meta_len;
    for (uint64_t b = 0, blocks = le(etr, 40, 8); b < blocks; ++b) {
        std::string head = etr.substr(at, 32);
        const size_t lengths = le(head, 8, 4) * 8, payload = le(head, 16, 8), raw = le(head, 24, 8);
        std::string bytes(raw, '\0');
        ZSTD_decompress(bytes.data(), raw, etr.data() + at + 32 + lengths, payload);
        for (int i = 0; i < 8; ++i) head[16 + i] = head[24 + i];
        out += head + etr.substr(at + 32, lengths) + bytes;
        at += 32 + lengths + payload;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_make_seeds OUT\n";
        return 2;
    }
    const std::string out = argv[1];
    std::filesystem::create_directories(out + "/fuzz_etr");
    std::filesystem::create_directories(out + "/fuzz_synthetic");

    // A small Engram config (one layer, two heads per order, small tables) keeps the reader's
    // setup cheap, so the fuzzer runs many inputs a second; the demo-v1 trace is the real thing.
    json small_doc = {{"engram", {{"base", "demo-v1"},
                                  {"engram_vocab_size", {1000, 1000}},
                                  {"n_head_per_ngram", 2},
                                  {"n_embed_per_ngram", 4},
                                  {"layer_ids", {0}}}}};
    const json small = config::resolve(small_doc, "fuzz seed")["engram"];
    const json demo = config::load("demo-v1")["engram"];
    json spec = config::load("handbook-en")["workload"];
    spec["num_requests"] = 3;
    spec["prompt_len"] = {{"dist", "uniform"}, {"min", 2}, {"max", 6}, {"value", 1}, {"file", ""}};
    spec["output_len"] = {{"dist", "uniform"}, {"min", 1}, {"max", 4}, {"value", 1}, {"file", ""}};
    const Workload workload = make_workload(spec);
    const std::string tmp = out + "/fuzz_etr/.tmp.etr";
    for (const auto& [name, engram] : {std::pair{"demo", demo}, std::pair{"small", small}}) {
        make_trace(tmp, engram, workload, spec);
        const std::string etr = slurp(tmp);
        std::filesystem::remove(tmp);
        write(out + "/fuzz_etr/" + name + ".etr", 0, etr);
        write(out + "/fuzz_etr/" + name + "-raw.etr", 1, decompressed(etr));
    }

    // Synthetic models over the first tokens of the bundled sample, ids renumbered by first
    // appearance so the vocabulary is small.
    const std::vector<uint32_t> raw = read_tokens("bundled:handbook-en-US");
    std::unordered_map<uint32_t, uint32_t> dense;
    std::vector<uint32_t> ids;
    for (size_t i = 0; i < 1000 && i < raw.size(); ++i)
        ids.push_back(dense.emplace(raw[i], uint32_t(dense.size())).first->second);
    for (int n : {2, 3}) {
        SyntheticModel m = fit_synthetic(ids, 1000, n, 0, uint32_t(dense.size()) + 8);
        m.corpus = "bundled:handbook-en-US (first 1000 tokens)";
        write(out + "/fuzz_synthetic/fit-n" + std::to_string(n) + ".json", 0, to_json(m).dump());
    }
    return 0;
}

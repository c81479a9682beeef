#include "traces/tokens.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "model/embedded.h"

namespace engramsim {

namespace {

constexpr std::string_view kBundled = "bundled:";

std::string read_file_bytes(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw TokenError(path + ": is a directory, not a token file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TokenError(path + ": cannot open: " + std::strerror(errno));
    return std::string(std::istreambuf_iterator<char>(in), {});
}

template <typename Word>
std::vector<uint32_t> decode_le(std::string_view bytes, const std::string& what) {
    if (bytes.size() % sizeof(Word) != 0)
        throw TokenError(what + ": " + std::to_string(bytes.size()) + " bytes is not a whole "
                         "number of " + std::to_string(sizeof(Word)) + "-byte ids (truncated?)");
    std::vector<uint32_t> out(bytes.size() / sizeof(Word));
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    for (size_t i = 0; i < out.size(); ++i) {
        uint32_t v = 0;
        for (size_t b = 0; b < sizeof(Word); ++b) v |= uint32_t(p[i * sizeof(Word) + b]) << (8 * b);
        out[i] = v;
    }
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

// One id of a JSON document; `where` names it in the error ("element 5", "line 3, element 5").
uint32_t token_id(const nlohmann::json& v, const std::string& spec, const std::string& where) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > UINT32_MAX)
        throw TokenError(spec + ": " + where +
                         " is not a token id (a non-negative 32-bit integer)");
    return v.get<uint32_t>();
}

// A bare *.bin: an llm.c shard (a header of 256 little-endian int32: magic 20240520, version 1
// for uint16 ids or 2 for uint32, the token count) or a nanoGPT train.bin / val.bin (uint16 ids,
// no header). 32-bit ids in a bare .bin would read as pairs of 16-bit ones, so a stream whose
// every second 16-bit word is 0 or 1 (the high half of ids below 2^17) is refused, not misread.
std::vector<uint32_t> read_bare_bin(const std::string& spec) {
    const std::string bytes = read_file_bytes(spec);
    auto i32 = [&](size_t k) {
        return decode_le<uint32_t>(std::string_view(bytes).substr(4 * k, 4), spec)[0];
    };
    constexpr uint32_t kLlmcMagic = 20240520;
    constexpr size_t kLlmcHeader = 256 * 4;
    if (bytes.size() >= 4 && i32(0) == kLlmcMagic) {
        if (bytes.size() < kLlmcHeader)
            throw TokenError(spec + ": an llm.c shard's header is 1024 bytes; the file has " +
                             std::to_string(bytes.size()) + " (truncated?)");
        const uint32_t version = i32(1), count = i32(2);
        if (version != 1 && version != 2)
            throw TokenError(spec + ": llm.c shard version " + std::to_string(version) +
                             " (known: 1, uint16 ids; 2, uint32 ids)");
        const size_t width = version == 1 ? 2 : 4;
        const size_t want = kLlmcHeader + size_t(count) * width;
        if (bytes.size() != want)
            throw TokenError(spec + ": the llm.c header says " + std::to_string(count) +
                             " tokens (" + std::to_string(want) + " bytes with it), the file has " +
                             std::to_string(bytes.size()) + " bytes (truncated?)");
        const std::string_view ids = std::string_view(bytes).substr(kLlmcHeader);
        return width == 2 ? decode_le<uint16_t>(ids, spec) : decode_le<uint32_t>(ids, spec);
    }
    std::vector<uint32_t> ids = decode_le<uint16_t>(bytes, spec);
    const size_t pairs = std::min<size_t>(ids.size() / 2, 4096);
    bool high_halves = pairs >= 16;
    for (size_t k = 0; high_halves && k < pairs; ++k) high_halves = ids[2 * k + 1] <= 1;
    if (high_halves)
        throw TokenError(spec +
                         ": every second 16-bit id is 0 or 1: these look like 32-bit ids; "
                         "name the file *.u32.bin (a bare .bin is read as nanoGPT's uint16 "
                         "ids or an llm.c shard)");
    return ids;
}

TokenDocuments read_jsonl(const std::string& spec) {
    std::ifstream in(spec, std::ios::binary);
    if (!in) throw TokenError(spec + ": cannot open: " + std::strerror(errno));
    TokenDocuments d;
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string at = "line " + std::to_string(n);
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
            throw TokenError(spec + ": " + at + ": not valid JSON (truncated?): " + e.what());
        }
        if (!doc.is_array())
            throw TokenError(spec + ": " + at + ": expected a JSON array of token ids");
        if (doc.empty()) continue;
        d.starts.push_back(d.ids.size());
        for (size_t i = 0; i < doc.size(); ++i)
            d.ids.push_back(token_id(doc[i], spec, at + ", element " + std::to_string(i)));
    }
    if (in.bad()) throw TokenError(spec + ": read error");
    if (d.ids.empty())
        throw TokenError(spec + ": no token ids (every line blank or an empty array)");
    return d;
}

}  // namespace

std::vector<std::string> bundled_samples() {
    std::vector<std::string> out;
    for (std::string_view name : embedded::names("traces/samples/")) {
        name.remove_prefix(std::string_view("traces/samples/").size());
        out.emplace_back(name.substr(0, name.find(".u32.bin")));
    }
    return out;
}

namespace {

// The ids of a token file in any format, none at all included.
std::vector<uint32_t> read_any_tokens(const std::string& spec) {
    if (spec.starts_with(kBundled)) {
        const std::string name = spec.substr(kBundled.size());
        auto bytes = embedded::find("traces/samples/" + name + ".u32.bin");
        if (!bytes) {
            std::string known;
            for (const auto& s : bundled_samples()) known += (known.empty() ? "" : ", ") + s;
            throw TokenError(spec + ": no such bundled sample (bundled: " + known + ")");
        }
        return decode_le<uint32_t>(*bytes, spec);
    }
    if (ends_with(spec, ".json")) {
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(read_file_bytes(spec));
        } catch (const nlohmann::json::parse_error& e) {
            throw TokenError(spec + ": not valid JSON: " + e.what());
        }
        if (!doc.is_array()) throw TokenError(spec + ": expected a JSON array of token ids");
        std::vector<uint32_t> out;
        out.reserve(doc.size());
        for (size_t i = 0; i < doc.size(); ++i)
            out.push_back(token_id(doc[i], spec, "element " + std::to_string(i)));
        return out;
    }
    if (ends_with(spec, ".jsonl")) return read_jsonl(spec).ids;
    if (ends_with(spec, ".u16.bin")) return decode_le<uint16_t>(read_file_bytes(spec), spec);
    if (ends_with(spec, ".u32.bin")) return decode_le<uint32_t>(read_file_bytes(spec), spec);
    if (ends_with(spec, ".bin")) return read_bare_bin(spec);
    throw TokenError(spec +
                     ": unknown token file type; expected *.u32.bin, *.u16.bin, *.bin (nanoGPT "
                     "or llm.c), *.json, *.jsonl or bundled:NAME");
}

}  // namespace

std::vector<uint32_t> read_tokens(const std::string& spec) {
    std::vector<uint32_t> ids = read_any_tokens(spec);
    if (ids.empty())
        throw TokenError(spec + ": holds no token ids (" +
                         (ends_with(spec, ".json") ? "an empty array" : "an empty file") + ")");
    return ids;
}

TokenDocuments read_token_documents(const std::string& spec, uint32_t bos_id) {
    if (!spec.starts_with(kBundled) && ends_with(spec, ".jsonl")) return read_jsonl(spec);
    TokenDocuments d{.ids = read_tokens(spec), .starts = {}};
    for (size_t i = 0; i < d.ids.size(); ++i)
        if (d.ids[i] == bos_id) d.starts.push_back(i);
    if (d.starts.empty()) d.starts.push_back(0);
    return d;
}

CompressMap::CompressMap(std::vector<uint32_t> table) : table_(std::move(table)) {
    if (table_.empty()) throw TokenError("compression map is empty");
    uint32_t max_id = *std::max_element(table_.begin(), table_.end());
    // N raw ids cover at most N canonical ids, so the first unused id is at most N: flags past
    // it would only cost memory (a 4-byte map holding 0xffffffff asked for 512 MiB of them).
    const size_t span = std::min<size_t>(max_id, table_.size()) + 1;
    std::vector<bool> used(span);
    for (uint32_t c : table_)
        if (c < span) used[c] = true;
    auto missing = std::find(used.begin(), used.end(), false);
    if (missing != used.end())
        throw TokenError("compression map: canonical id " +
                         std::to_string(missing - used.begin()) + " is never used (ids must be "
                         "dense, 0.." + std::to_string(max_id) + ")");
    canonical_vocab_ = max_id + 1;
}

CompressMap CompressMap::load(const std::string& spec) {
    if (spec == "bundled:deepseek-v3") {
        return CompressMap(decode_le<uint32_t>(
            *embedded::find("traces/deepseek_v3_compress_map.u32.bin"), spec));
    }
    // Every caller reads the map an Engram config names: errors carry that key.
    try {
        if (spec.starts_with(kBundled))
            throw TokenError(spec + ": no such bundled compression map (bundled: deepseek-v3)");
        return CompressMap(decode_le<uint32_t>(read_file_bytes(spec), spec));
    } catch (const TokenError& e) {
        throw TokenError(std::string("engram.compress_map: ") + e.what());
    }
}

std::vector<uint32_t> CompressMap::compress(std::span<const uint32_t> raw) const {
    std::vector<uint32_t> out(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] >= table_.size())
            throw TokenError("token " + std::to_string(i) + " has id " + std::to_string(raw[i]) +
                             ", outside the compression map (" + std::to_string(table_.size()) +
                             " raw ids)");
        out[i] = table_[raw[i]];
    }
    return out;
}

}  // namespace engramsim

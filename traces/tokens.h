// Token streams and the tokenizer compression map.
//
// Token files hold raw tokenizer ids: little-endian uint32 (*.u32.bin), uint16 (*.u16.bin), a
// bare *.bin as nanoGPT writes it (uint16, no header) or as llm.c does (a 1 KiB header naming
// the id width and count, checked), a JSON array of ids (*.json), or JSON Lines (*.jsonl: one
// array of ids per line, one document each). "bundled:NAME" names a sample linked into the
// binary (traces/samples/NAME.u32.bin).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace engramsim {

// A token file or compression map that cannot be read as what it claims to be.
struct TokenError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Reads a token file (format from its name, see above; a JSONL file's lines end to end). Throws
// TokenError naming the file and what is wrong (no ids at all, a size that is not a whole number
// of ids, a non-integer JSON element and its line, ...).
std::vector<uint32_t> read_tokens(const std::string& path_or_bundled);

// A token file read as documents: every id end to end, and where each document starts.
struct TokenDocuments {
    std::vector<uint32_t> ids;
    std::vector<size_t> starts;  // ascending offsets into ids, at least one
};
// JSONL: one document per line (blank lines and empty arrays skipped). Other formats are one
// stream whose documents start at each `bos_id`; with none, one document starting at 0.
TokenDocuments read_token_documents(const std::string& path_or_bundled, uint32_t bos_id);

// Names of the bundled samples ("handbook-en-US", ...).
std::vector<std::string> bundled_samples();

// Raw tokenizer id -> canonical id (Engram's CompressedTokenizer lookup table).
class CompressMap {
public:
    // "bundled:deepseek-v3" or a little-endian uint32 file. Canonical ids must be dense:
    // 0..vocab-1, all used (they are numbered in first-seen order).
    static CompressMap load(const std::string& path_or_bundled);
    explicit CompressMap(std::vector<uint32_t> table);

    uint32_t raw_vocab_size() const { return static_cast<uint32_t>(table_.size()); }
    uint32_t canonical_vocab_size() const { return canonical_vocab_; }

    // Maps one raw id; precondition raw < raw_vocab_size().
    uint32_t operator()(uint32_t raw) const { return table_[raw]; }
    // The whole map: canonical id of every raw id.
    const std::vector<uint32_t>& table() const { return table_; }

    // Maps a stream; an id outside the map throws TokenError naming its position and value.
    std::vector<uint32_t> compress(std::span<const uint32_t> raw) const;

private:
    std::vector<uint32_t> table_;
    uint32_t canonical_vocab_ = 0;
};

}  // namespace engramsim

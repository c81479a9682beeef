// The lookup trace file (.etr): for each request of a serving workload, the tokens it feeds the
// model (prompt, then generated tokens) and, for every Engram layer, the row id each token reads
// in each head. The format is specified in traces/FORMAT.md.
//
// Writing streams request by request into checksummed, zstd-compressed blocks; the header's
// counts and its "complete" flag are written last, so a trace cut short is never mistaken for a
// whole one. Reading validates everything before it trusts it: a truncated or corrupt file is
// reported with the block and byte offset; a trace made for another Engram config is refused
// by name. Requests are read as the scheduler admits them and dropped when they finish, so a
// trace larger than memory replays in memory bounded by the running batch.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/engram_config.h"
#include "traces/lookups.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"
#include "traces/schedule.h"

namespace engramsim {

// A trace file that cannot be trusted: the message names the file, the block and the byte offset.
struct TraceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One request with its row ids. rows[l] holds, for Engram layer l, tokens x heads local row ids
// (token-major, then order, then head), for every token of prompt + output.
struct TraceRequest {
    uint32_t id = 0;
    uint32_t prompt_len = 0;
    uint32_t output_len = 0;
    std::vector<uint32_t> canonical;          // prompt_len + output_len canonical ids
    std::vector<std::vector<uint32_t>> rows;  // [layer][token * heads + head]
};

struct TraceHeader {
    uint32_t version = 0;
    bool complete = false;
    uint64_t requests = 0;
    uint64_t tokens = 0;
    uint64_t lookups = 0;  // tokens x heads per layer x layers
    uint64_t blocks = 0;
    uint64_t engram_hash = 0;
    nlohmann::json meta;   // engram (resolved section), workload, creator
};

// The fingerprint of everything that decides row ids: table sizes, orders, heads, layers, pad,
// seed and the compression map's contents. Two configs with the same hash give the same rows.
uint64_t engram_hash(const EngramConfig& engram);

class TraceWriter {
public:
    // `engram_section` is the resolved "engram" config section; `workload` describes the requests
    // (stored as is). Throws TraceError if the file cannot be created.
    TraceWriter(const std::string& path, const nlohmann::json& engram_section,
                const nlohmann::json& workload, size_t requests_per_block = 64);
    ~TraceWriter();  // an unfinished writer leaves the trace marked incomplete

    void add(const TraceRequest& request);
    // Writes the last block, the counts and the complete flag.
    void finish();

    uint64_t bytes_written() const { return offset_; }

private:
    void flush_block();
    void write(const void* data, size_t n);
    std::string header_bytes(bool complete) const;

    std::string path_;
    std::FILE* file_ = nullptr;
    EngramConfig engram_;
    std::vector<std::vector<int>> bits_;  // [layer][head] bits per row id
    TraceHeader header_;
    std::string meta_;
    std::vector<TraceRequest> pending_;
    size_t requests_per_block_;
    uint64_t offset_ = 0;
    bool finished_ = false;
};

class TraceReader {
public:
    // Opens and validates the header and every block header (not the payloads: those are checked
    // when read). Throws TraceError.
    explicit TraceReader(const std::string& path);
    ~TraceReader();

    const TraceHeader& header() const { return header_; }
    const EngramConfig& engram() const { return engram_; }
    // prompt and output length of every request, in file order.
    const std::vector<uint32_t>& prompt_lengths() const { return prompt_len_; }
    const std::vector<uint32_t>& output_lengths() const { return output_len_; }

    // Refuses a trace made for another Engram config, naming both.
    void require_engram(const EngramConfig& expected, const std::string& expected_name) const;

    // The next request in file order; false at the end. Verifies each block's checksum.
    bool next(TraceRequest& out);
    // Request `index` (file order), reading blocks from the start of its block.
    TraceRequest request(uint64_t index);

private:
    struct BlockIndex {
        uint64_t offset = 0;            // of the block header
        uint64_t payload_offset = 0;
        uint64_t payload_bytes = 0;
        uint64_t raw_bytes = 0;
        uint32_t requests = 0;
        uint32_t crc = 0;
        uint64_t first_request = 0;
    };
    void load_block(size_t block);
    [[noreturn]] void fail(const std::string& what) const;

    std::string path_;
    std::FILE* file_ = nullptr;
    uint64_t file_bytes_ = 0;
    TraceHeader header_;
    EngramConfig engram_;
    std::vector<std::vector<int>> bits_;
    std::vector<BlockIndex> blocks_;
    std::vector<uint32_t> prompt_len_, output_len_;
    std::vector<TraceRequest> block_requests_;
    size_t current_block_ = SIZE_MAX;
    size_t next_in_block_ = 0;
    size_t next_block_ = 0;
};

// Lookups in serving order from a trace file: the scheduler runs over the trace's request
// lengths, requests are read as they are admitted and released when they finish.
std::unique_ptr<LookupSource> trace_lookups(const std::string& path,
                                            const SchedulerConfig& scheduler);

}  // namespace engramsim

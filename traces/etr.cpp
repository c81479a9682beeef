#include "traces/etr.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <unordered_map>

#include "model/config.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

namespace engramsim {

namespace {

constexpr char kMagic[8] = {'E', 'N', 'G', 'R', 'A', 'M', 'T', 'R'};
constexpr uint32_t kBlockMagic = 0x42525445;  // "ETRB" little-endian
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kBlockHeaderBytes = 32;
constexpr uint32_t kComplete = 1;

// Little-endian scalar I/O on byte buffers (the format is little-endian on every host).
template <typename T>
void put(std::string& buf, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) buf.push_back(char((uint64_t(v) >> (8 * i)) & 0xff));
}
template <typename T>
T get(const unsigned char* p) {
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(p[i]) << (8 * i);
    return T(v);
}

uint32_t crc(const void* data, size_t n, uint32_t seed = 0) {
    return uint32_t(crc32(seed, static_cast<const Bytef*>(data), uInt(n)));
}

int bits_for(uint64_t max_value) { return max_value == 0 ? 1 : 64 - __builtin_clzll(max_value); }

std::vector<std::vector<int>> row_bits(const EngramConfig& engram) {
    const CompressMap map = CompressMap::load(engram.compress_map);
    const NgramHasher hasher(engram, map.canonical_vocab_size(), map(engram.pad_id));
    std::vector<std::vector<int>> bits;
    for (const auto& p : hasher.layers()) {
        bits.emplace_back();
        for (const auto& order : p.primes)
            for (uint64_t prime : order) bits.back().push_back(bits_for(prime - 1));
    }
    return bits;
}

// Bit-packed stream of `count` values of `width` bits (least significant bits first), padded to
// a whole byte.
void pack(std::string& out, const uint32_t* values, size_t count, size_t stride, int width) {
    uint64_t acc = 0;
    int filled = 0;
    for (size_t i = 0; i < count; ++i) {
        acc |= uint64_t(values[i * stride]) << filled;
        filled += width;
        while (filled >= 8) {
            out.push_back(char(acc & 0xff));
            acc >>= 8;
            filled -= 8;
        }
    }
    if (filled > 0) out.push_back(char(acc & 0xff));
}

size_t packed_bytes(size_t count, int width) { return (count * size_t(width) + 7) / 8; }

void unpack(const unsigned char* in, uint32_t* values, size_t count, size_t stride, int width) {
    uint64_t acc = 0;
    int filled = 0;
    const uint64_t mask = (uint64_t(1) << width) - 1;
    for (size_t i = 0; i < count; ++i) {
        while (filled < width) {
            acc |= uint64_t(*in++) << filled;
            filled += 8;
        }
        values[i * stride] = uint32_t(acc & mask);
        acc >>= width;
        filled -= width;
    }
}

}  // namespace

uint64_t engram_hash(const EngramConfig& e) {
    nlohmann::json key = {{"engram_vocab_size", e.engram_vocab_size},
                          {"max_ngram_size", e.max_ngram_size},
                          {"n_head_per_ngram", e.n_head_per_ngram},
                          {"layer_ids", e.layer_ids},
                          {"pad_id", e.pad_id},
                          {"seed", e.seed}};
    const CompressMap map = CompressMap::load(e.compress_map);
    std::string bytes = key.dump();
    for (uint32_t raw = 0; raw < map.raw_vocab_size(); ++raw) put<uint32_t>(bytes, map(raw));
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
    for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

// ---- Writer -------------------------------------------------------------------------------

TraceWriter::TraceWriter(const std::string& path, const nlohmann::json& engram_section,
                         const nlohmann::json& workload, size_t requests_per_block)
    : path_(path),
      engram_(EngramConfig::from_json(engram_section)),
      bits_(row_bits(engram_)),
      requests_per_block_(std::max<size_t>(1, requests_per_block)) {
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) throw TraceError(path + ": cannot create: " + std::strerror(errno));
    header_.version = kVersion;
    header_.engram_hash = engram_hash(engram_);
    header_.meta = {{"engram", engram_section},
                    {"workload", workload},
                    {"created_by", "engramsim"}};
    meta_ = header_.meta.dump();
    // Provisional header: counts of zero and no complete flag until finish() rewrites it, so a
    // writer that dies midway leaves a file every reader recognises as incomplete.
    const std::string head = header_bytes(false);
    write(head.data(), head.size());
    write(meta_.data(), meta_.size());
}

TraceWriter::~TraceWriter() {
    if (file_) std::fclose(file_);
}

void TraceWriter::write(const void* data, size_t n) {
    if (std::fwrite(data, 1, n, file_) != n)
        throw TraceError(path_ + ": write failed: " + std::strerror(errno));
    offset_ += n;
}

void TraceWriter::add(const TraceRequest& r) {
    const size_t tokens = size_t(r.prompt_len) + r.output_len;
    if (r.canonical.size() != tokens || r.rows.size() != bits_.size())
        throw std::invalid_argument("TraceWriter::add: request sizes disagree with its lengths");
    for (const auto& layer : r.rows)
        if (layer.size() != tokens * size_t(engram_.heads_per_layer()))
            throw std::invalid_argument("TraceWriter::add: rows must be tokens x heads per layer");
    pending_.push_back(r);
    header_.requests += 1;
    header_.tokens += tokens;
    header_.lookups += tokens * size_t(engram_.heads_per_layer()) * bits_.size();
    if (pending_.size() >= requests_per_block_) flush_block();
}

void TraceWriter::flush_block() {
    if (pending_.empty()) return;
    std::string lengths, raw;
    const size_t heads = size_t(engram_.heads_per_layer());
    for (const auto& r : pending_) {
        put<uint32_t>(lengths, r.prompt_len);
        put<uint32_t>(lengths, r.output_len);
        put<uint32_t>(raw, r.id);
        put<uint32_t>(raw, r.prompt_len);
        put<uint32_t>(raw, r.output_len);
        for (uint32_t c : r.canonical) put<uint32_t>(raw, c);
        const size_t tokens = r.canonical.size();
        for (size_t l = 0; l < bits_.size(); ++l)
            for (size_t h = 0; h < heads; ++h)
                pack(raw, r.rows[l].data() + h, tokens, heads, bits_[l][h]);
    }
    std::string payload(ZSTD_compressBound(raw.size()), '\0');
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
    const size_t n = ZSTD_compress2(cctx, payload.data(), payload.size(), raw.data(), raw.size());
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(n)) throw TraceError(path_ + ": zstd: " + ZSTD_getErrorName(n));
    payload.resize(n);

    std::string head;
    put<uint32_t>(head, kBlockMagic);
    put<uint32_t>(head, uint32_t(header_.blocks));
    put<uint32_t>(head, uint32_t(pending_.size()));
    put<uint32_t>(head, crc(payload.data(), payload.size(), crc(lengths.data(), lengths.size())));
    put<uint64_t>(head, payload.size());
    put<uint64_t>(head, raw.size());
    write(head.data(), head.size());
    write(lengths.data(), lengths.size());
    write(payload.data(), payload.size());
    header_.blocks += 1;
    pending_.clear();
}

std::string TraceWriter::header_bytes(bool complete) const {
    std::string head(kMagic, sizeof kMagic);
    put<uint32_t>(head, kVersion);
    put<uint32_t>(head, complete ? kComplete : 0);
    put<uint64_t>(head, header_.requests);
    put<uint64_t>(head, header_.tokens);
    put<uint64_t>(head, header_.lookups);
    put<uint64_t>(head, header_.blocks);
    put<uint64_t>(head, header_.engram_hash);
    put<uint32_t>(head, uint32_t(meta_.size()));
    put<uint32_t>(head, crc(meta_.data(), meta_.size(), crc(head.data(), head.size())));
    return head;
}

void TraceWriter::finish() {
    if (finished_) return;
    flush_block();
    const std::string head = header_bytes(true);
    if (std::fflush(file_) != 0 || std::fseek(file_, 0, SEEK_SET) != 0 ||
        std::fwrite(head.data(), 1, head.size(), file_) != head.size() || std::fclose(file_) != 0) {
        file_ = nullptr;
        throw TraceError(path_ + ": write failed: " + std::strerror(errno));
    }
    file_ = nullptr;
    finished_ = true;
}

// ---- Reader -------------------------------------------------------------------------------

void TraceReader::fail(const std::string& what) const { throw TraceError(path_ + ": " + what); }

TraceReader::TraceReader(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail(std::string("cannot open: ") + std::strerror(errno));
    // A constructor that throws runs no destructor: the file is closed here, or every refused
    // trace would leak a descriptor (a process checking many files runs out of them).
    try {
        std::fseek(file_, 0, SEEK_END);
        file_bytes_ = uint64_t(std::ftell(file_));
        std::fseek(file_, 0, SEEK_SET);

        auto read_at = [&](uint64_t offset, uint64_t n, const std::string& what) {
            // Checked before allocating: a length field is never trusted beyond the file's size.
            if (offset > file_bytes_ || n > file_bytes_ - offset)
                fail("truncated: " + what + " at byte offset " + std::to_string(offset) +
                     " needs " + std::to_string(n) + " bytes, the file ends at " +
                     std::to_string(file_bytes_));
            std::string buf(n, '\0');
            std::fseek(file_, long(offset), SEEK_SET);
            if (std::fread(buf.data(), 1, n, file_) != n)
                fail("read failed at " + std::to_string(offset));
            return buf;
        };

        const std::string head = read_at(0, kHeaderBytes, "the header");
        const auto* h = reinterpret_cast<const unsigned char*>(head.data());
        if (std::memcmp(h, kMagic, sizeof kMagic) != 0) fail("not an EngramSim trace (bad magic)");
        header_.version = get<uint32_t>(h + 8);
        if (header_.version != kVersion)
            fail("format version " + std::to_string(header_.version) +
                 "; this build reads version " + std::to_string(kVersion));
        const uint32_t flags = get<uint32_t>(h + 12);
        header_.complete = (flags & kComplete) != 0;
        if (!header_.complete)
            fail("incomplete trace: the writer did not finish (interrupted `trace make`?)");
        header_.requests = get<uint64_t>(h + 16);
        header_.tokens = get<uint64_t>(h + 24);
        header_.lookups = get<uint64_t>(h + 32);
        header_.blocks = get<uint64_t>(h + 40);
        header_.engram_hash = get<uint64_t>(h + 48);
        const uint32_t meta_len = get<uint32_t>(h + 56);
        const uint32_t stored_crc = get<uint32_t>(h + 60);
        const std::string meta = read_at(kHeaderBytes, meta_len, "the header's metadata");
        if (crc(meta.data(), meta.size(), crc(head.data(), 60)) != stored_crc)
            fail("header checksum mismatch (bytes 0.." + std::to_string(kHeaderBytes + meta_len) +
                 " are corrupt)");
        try {
            header_.meta = nlohmann::json::parse(meta);
            // The section is validated as a config would be (bounds included) before it is used.
            const nlohmann::json engram =
                config::resolve({{"engram", header_.meta.at("engram")}}, "trace metadata")
                    .at("engram");
            engram_ = EngramConfig::from_json(engram);
        } catch (const std::exception& e) {
            fail(std::string("header metadata unreadable: ") + e.what());
        }
        bits_ = row_bits(engram_);

        // Walk the block headers (not the payloads) to index the file and learn every length.
        uint64_t offset = kHeaderBytes + meta_len;
        uint64_t first = 0, tokens = 0;
        for (uint64_t b = 0; b < header_.blocks; ++b) {
            const std::string bh = read_at(offset, kBlockHeaderBytes, "block " + std::to_string(b));
            const auto* p = reinterpret_cast<const unsigned char*>(bh.data());
            if (get<uint32_t>(p) != kBlockMagic || get<uint32_t>(p + 4) != b)
                fail("block " + std::to_string(b) + " at byte offset " + std::to_string(offset) +
                     ": bad block header (corrupt)");
            BlockIndex bi;
            bi.offset = offset;
            bi.requests = get<uint32_t>(p + 8);
            bi.crc = get<uint32_t>(p + 12);
            bi.payload_bytes = get<uint64_t>(p + 16);
            bi.raw_bytes = get<uint64_t>(p + 24);
            bi.first_request = first;
            const uint64_t lengths_bytes = uint64_t(bi.requests) * 8;
            bi.payload_offset = offset + kBlockHeaderBytes + lengths_bytes;
            if (bi.payload_offset > file_bytes_ ||
                bi.payload_bytes > file_bytes_ - bi.payload_offset)
                fail("truncated: block " + std::to_string(b) + " at byte offset " +
                     std::to_string(offset) + " needs " + std::to_string(kBlockHeaderBytes) +
                     " + " + std::to_string(lengths_bytes) + " + " +
                     std::to_string(bi.payload_bytes) + " bytes, the file ends at " +
                     std::to_string(file_bytes_));
            const std::string lengths = read_at(offset + kBlockHeaderBytes, lengths_bytes,
                                                "block " + std::to_string(b) + " lengths");
            const auto* lp = reinterpret_cast<const unsigned char*>(lengths.data());
            // The payload's size follows from the lengths (see flush_block): a block whose header
            // says otherwise is refused here, before anything is allocated for it.
            unsigned __int128 want_raw = 0;
            for (uint32_t i = 0; i < bi.requests; ++i) {
                prompt_len_.push_back(get<uint32_t>(lp + 8 * i));
                output_len_.push_back(get<uint32_t>(lp + 8 * i + 4));
                const uint64_t t = uint64_t(prompt_len_.back()) + output_len_.back();
                want_raw += 12 + 4 * (unsigned __int128)t;
                for (const auto& layer : bits_)
                    for (int width : layer) want_raw += packed_bytes(t, width);
                tokens += t;
            }
            if (want_raw != bi.raw_bytes)
                fail("block " + std::to_string(b) + " at byte offset " + std::to_string(offset) +
                     ": its header says " + std::to_string(bi.raw_bytes) +
                     " bytes uncompressed, its requests' lengths need " +
                     (want_raw > UINT64_MAX ? std::string("more than 2^64")
                                            : std::to_string(uint64_t(want_raw))) +
                     " (corrupt)");
            first += bi.requests;
            offset = bi.payload_offset + bi.payload_bytes;
            blocks_.push_back(bi);
        }
        if (first != header_.requests)
            fail("header says " + std::to_string(header_.requests) + " requests, blocks hold " +
                 std::to_string(first) + " (corrupt)");
        const uint64_t per_token = uint64_t(engram_.heads_per_layer()) * bits_.size();
        if (tokens != header_.tokens || (unsigned __int128)tokens * per_token != header_.lookups)
            fail("header says " + std::to_string(header_.tokens) + " tokens and " +
                 std::to_string(header_.lookups) + " lookups, the blocks' lengths give " +
                 std::to_string(tokens) + " tokens (corrupt)");
        if (offset != file_bytes_)
            fail(std::to_string(file_bytes_ - offset) + " unexpected bytes after the last block at "
                 "byte offset " + std::to_string(offset));

    } catch (...) {
        std::fclose(file_);
        file_ = nullptr;
        throw;
    }
}

TraceReader::~TraceReader() {
    if (file_) std::fclose(file_);
}

void TraceReader::require_engram(const EngramConfig& expected, const std::string& name) const {
    const uint64_t want = engram_hash(expected);
    if (want == header_.engram_hash) return;
    char got_hex[17], want_hex[17];
    std::snprintf(got_hex, sizeof got_hex, "%016llx", (unsigned long long)header_.engram_hash);
    std::snprintf(want_hex, sizeof want_hex, "%016llx", (unsigned long long)want);
    const std::string made_for = header_.meta["engram"].value("name", std::string("unnamed"));
    fail("trace was made for Engram config '" + made_for + "' (hash " + got_hex +
         "), not for '" + name + "' (hash " + want_hex + "); remake it with trace make");
}

void TraceReader::load_block(size_t b) {
    const BlockIndex& bi = blocks_[b];
    const std::string where =
        "block " + std::to_string(b) + " at byte offset " + std::to_string(bi.offset);
    const uint64_t lengths_bytes = uint64_t(bi.requests) * 8;
    std::string buf(lengths_bytes + bi.payload_bytes, '\0');
    std::fseek(file_, long(bi.offset + kBlockHeaderBytes), SEEK_SET);
    if (std::fread(buf.data(), 1, buf.size(), file_) != buf.size()) fail(where + ": read failed");
    if (crc(buf.data() + lengths_bytes, bi.payload_bytes, crc(buf.data(), lengths_bytes)) != bi.crc)
        fail(where + ": checksum mismatch (corrupt)");
    // The frame states its size: it must be the one checked against the lengths at open.
    const unsigned long long content =
        ZSTD_getFrameContentSize(buf.data() + lengths_bytes, bi.payload_bytes);
    if (content != bi.raw_bytes) fail(where + ": payload does not decompress (corrupt)");
    std::string raw(bi.raw_bytes, '\0');
    const size_t n = ZSTD_decompress(raw.data(), raw.size(), buf.data() + lengths_bytes,
                                     bi.payload_bytes);
    if (ZSTD_isError(n) || n != raw.size())
        fail(where + ": payload does not decompress (corrupt)");

    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    const auto* end = p + raw.size();
    const size_t heads = size_t(engram_.heads_per_layer());
    block_requests_.assign(bi.requests, {});
    for (auto& r : block_requests_) {
        auto need = [&](size_t bytes) {
            if (size_t(end - p) < bytes) fail(where + ": payload shorter than its requests (corrupt)");
        };
        need(12);
        r.id = get<uint32_t>(p);
        r.prompt_len = get<uint32_t>(p + 4);
        r.output_len = get<uint32_t>(p + 8);
        p += 12;
        const size_t k = size_t(bi.first_request) + size_t(&r - block_requests_.data());
        if (r.prompt_len != prompt_len_[k] || r.output_len != output_len_[k])
            fail(where + ": request " + std::to_string(k) + " has lengths " +
                 std::to_string(r.prompt_len) + " + " + std::to_string(r.output_len) +
                 " in the payload, " + std::to_string(prompt_len_[k]) + " + " +
                 std::to_string(output_len_[k]) + " in the block header (corrupt)");
        const size_t tokens = size_t(r.prompt_len) + r.output_len;
        need(tokens * 4);
        r.canonical.resize(tokens);
        for (size_t t = 0; t < tokens; ++t) r.canonical[t] = get<uint32_t>(p + 4 * t);
        p += tokens * 4;
        r.rows.assign(bits_.size(), std::vector<uint32_t>(tokens * heads));
        for (size_t l = 0; l < bits_.size(); ++l)
            for (size_t h = 0; h < heads; ++h) {
                const size_t bytes = packed_bytes(tokens, bits_[l][h]);
                need(bytes);
                unpack(p, r.rows[l].data() + h, tokens, heads, bits_[l][h]);
                p += bytes;
            }
    }
    if (p != end) fail(where + ": payload longer than its requests (corrupt)");
    current_block_ = b;
    next_in_block_ = 0;
}

bool TraceReader::next(TraceRequest& out) {
    while (current_block_ == SIZE_MAX || next_in_block_ >= block_requests_.size()) {
        if (next_block_ >= blocks_.size()) return false;
        load_block(next_block_++);
    }
    out = std::move(block_requests_[next_in_block_++]);
    return true;
}

TraceRequest TraceReader::request(uint64_t index) {
    if (index >= header_.requests)
        fail("no request " + std::to_string(index) + " (the trace holds " +
             std::to_string(header_.requests) + ")");
    size_t b = 0;
    while (b + 1 < blocks_.size() && blocks_[b + 1].first_request <= index) ++b;
    load_block(b);
    next_block_ = b + 1;
    next_in_block_ = size_t(index - blocks_[b].first_request);
    TraceRequest r;
    next(r);
    return r;
}

// ---- Lookups from a trace -----------------------------------------------------------------

namespace {

class TraceLookups final : public ScheduledLookups {
public:
    TraceLookups(std::unique_ptr<TraceReader> reader, const SchedulerConfig& scheduler)
        : ScheduledLookups(lookup_layout(reader->engram()), scheduler, reader->prompt_lengths(),
                           reader->output_lengths()),
          reader_(std::move(reader)) {}

private:
    // Requests are read in file order, which is the order they are first scheduled.
    RequestRows load(uint32_t index) override {
        TraceRequest r;
        if (!reader_->next(r))
            throw TraceError("trace ended before request " + std::to_string(index));
        return std::move(r.rows);
    }

    std::unique_ptr<TraceReader> reader_;
};

}  // namespace

std::unique_ptr<LookupSource> trace_lookups(const std::string& path,
                                            const SchedulerConfig& scheduler) {
    return std::make_unique<TraceLookups>(std::make_unique<TraceReader>(path), scheduler);
}

}  // namespace engramsim

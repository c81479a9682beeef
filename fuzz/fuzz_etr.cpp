// The .etr trace reader: TraceReader (header, block index, every block's payload, random access)
// and trace_lookups (the scheduler replaying the trace). Contract: requests whose sizes agree
// with the header, or a TraceError (any std::exception); never a crash or an allocation the file
// does not justify.
//
// The first input byte picks how the rest becomes a file:
//   bit 0 clear  the bytes as they are (framing, checksums, truncation);
//   bit 0 set    an .etr whose block payloads are stored uncompressed: the target compresses each
//                payload with zstd and rewrites the checksums (and payload sizes), so mutations
//                reach the header metadata and the payload decoder instead of failing a CRC.
//                Bit 1 set keeps the block header's raw size as given (else it is the payload's).
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "fuzz/fuzz_util.h"
#include "traces/etr.h"

using namespace engramsim;

namespace {

uint64_t get_le(const std::string& s, size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && at + i < s.size(); ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
    return v;
}
void put_le(std::string& s, size_t at, uint64_t v, size_t n) {
    for (size_t i = 0; i < n && at + i < s.size(); ++i) s[at + i] = char((v >> (8 * i)) & 0xff);
}
uint32_t crc(const char* p, size_t n, uint32_t seed) {
    return uint32_t(crc32(seed, reinterpret_cast<const Bytef*>(p), uInt(n)));
}

// See the top of the file. Layout: traces/FORMAT.md (64-byte header, metadata, blocks of a
// 32-byte header, 8 bytes of lengths per request, payload).
std::string fix_up(const std::string& in, bool keep_raw_size) {
    if (in.size() < 64) return in;
    std::string out = in.substr(0, 64);
    const size_t meta_len = std::min<uint64_t>(get_le(in, 56, 4), in.size() - 64);
    out += in.substr(64, meta_len);
    put_le(out, 56, meta_len, 4);
    size_t at = 64 + meta_len;
    const uint64_t blocks = get_le(in, 40, 8);
    for (uint64_t b = 0; b < blocks && at + 32 <= in.size(); ++b) {
        std::string head = in.substr(at, 32);
        const uint64_t requests = get_le(head, 8, 4);
        const size_t lengths_bytes = std::min<uint64_t>(requests * 8, in.size() - at - 32);
        const std::string lengths = in.substr(at + 32, lengths_bytes);
        const size_t raw_at = at + 32 + lengths_bytes;
        const size_t raw_len = std::min<uint64_t>(get_le(head, 16, 8), in.size() - raw_at);
        const std::string raw = in.substr(raw_at, raw_len);
        std::string payload(ZSTD_compressBound(raw.size()), '\0');
        const size_t n = ZSTD_compress(payload.data(), payload.size(), raw.data(), raw.size(), 1);
        if (ZSTD_isError(n)) return in;
        payload.resize(n);
        put_le(head, 16, payload.size(), 8);
        if (!keep_raw_size) put_le(head, 24, raw.size(), 8);
        put_le(head, 12, crc(payload.data(), payload.size(), crc(lengths.data(), lengths.size(), 0)), 4);
        out += head + lengths + payload;
        at = raw_at + raw_len;
    }
    out += in.substr(std::min(at, in.size()));
    put_le(out, 60, crc(out.data() + 64, meta_len, crc(out.data(), 60, 0)), 4);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 256 * 1024) return 0;
    const uint8_t mode = data[0];
    std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    if (mode & 1) bytes = fix_up(bytes, mode & 2);
    fuzz::TempFile file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ".etr");

    try {
        TraceReader reader(file.path());
        const TraceHeader& h = reader.header();
        FUZZ_CHECK(reader.prompt_lengths().size() == h.requests &&
                       reader.output_lengths().size() == h.requests,
                   "length tables disagree with the header's request count");
        const size_t heads = size_t(reader.engram().heads_per_layer());
        const size_t layers = reader.engram().layer_ids.size();
        TraceRequest r;
        uint64_t n = 0;
        while (reader.next(r)) {
            FUZZ_CHECK(n < h.requests, "more requests than the header says");
            const size_t tokens = size_t(r.prompt_len) + r.output_len;
            FUZZ_CHECK(r.prompt_len == reader.prompt_lengths()[n] &&
                           r.output_len == reader.output_lengths()[n],
                       "request " + std::to_string(n) + ": payload lengths differ from the block's");
            FUZZ_CHECK(r.canonical.size() == tokens, "canonical ids");
            FUZZ_CHECK(r.rows.size() == layers, "layers");
            for (const auto& l : r.rows) FUZZ_CHECK(l.size() == tokens * heads, "rows per layer");
            ++n;
        }
        FUZZ_CHECK(n == h.requests, "fewer requests than the header says");
        if (h.requests) reader.request((mode >> 2) % h.requests);
    } catch (const std::exception&) {
        return 0;
    }
    // The scheduler over the same file (a few steps).
    try {
        auto source = trace_lookups(file.path(), SchedulerConfig{.max_num_seqs = 4,
                                                                 .max_num_batched_tokens = 64,
                                                                 .kv_block_size = 16,
                                                                 .num_kv_blocks = -1});
        StepBatch batch;
        for (int step = 0; step < 256 && source->next(batch); ++step) {
        }
    } catch (const std::exception&) {
    }
    return 0;
}

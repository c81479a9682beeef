// read_tokens / read_token_documents on every token file format: the first byte picks the file
// suffix (.u32.bin, .u16.bin, .bin, .json, .jsonl) or a compression map (CompressMap::load), the
// second the bos id for read_token_documents, the rest is the file. Contract: ids or a TokenError
// (any std::exception); fixed-width files give exactly size / width ids.
#include <cstring>

#include "fuzz/fuzz_util.h"
#include "traces/tokens.h"

using namespace engramsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2 || size > 256 * 1024) return 0;
    static const char* const kSuffix[] = {".u32.bin", ".u16.bin", ".bin", ".json", ".jsonl",
                                          ".map.u32.bin"};
    const int format = data[0] % 6;
    const uint32_t bos = data[1];
    data += 2, size -= 2;
    fuzz::TempFile file(data, size, kSuffix[format]);
    if (format == 5) {
        // A map whose largest canonical id is >= its number of entries (so it cannot be dense)
        // once allocated max_id / 8 bytes before refusing it (512 MiB for a 4-byte file; fixed,
        // tests/unit/test_fuzz_regressions.cpp): no longer skipped.
        try {
            const CompressMap map = CompressMap::load(file.path());
            FUZZ_CHECK(map.raw_vocab_size() == size / 4 && size % 4 == 0, "map size");
            FUZZ_CHECK(map.canonical_vocab_size() >= 1 &&
                           map.canonical_vocab_size() <= map.raw_vocab_size(),
                       "canonical vocabulary outside 1..raw");
            for (uint32_t r = 0; r < map.raw_vocab_size(); ++r)
                FUZZ_CHECK(map(r) < map.canonical_vocab_size(), "canonical id out of range");
        } catch (const std::exception&) {
        }
        return 0;
    }

    std::vector<uint32_t> ids;
    bool read = false;
    try {
        ids = read_tokens(file.path());
        read = true;
    } catch (const std::exception&) {
    }
    if (read && format == 0) {
        FUZZ_CHECK(size % 4 == 0 && ids.size() == size / 4, "u32 file of " + std::to_string(size) +
                   " bytes gave " + std::to_string(ids.size()) + " ids");
        for (size_t i = 0; i < ids.size(); ++i) {
            uint32_t want;
            std::memcpy(&want, data + 4 * i, 4);
            FUZZ_CHECK(ids[i] == want, "u32 id " + std::to_string(i) + " differs");
        }
    }
    if (read && format == 1)
        FUZZ_CHECK(size % 2 == 0 && ids.size() == size / 2, "u16 file of " + std::to_string(size) +
                   " bytes gave " + std::to_string(ids.size()) + " ids");

    TokenDocuments docs;
    try {
        docs = read_token_documents(file.path(), bos);
    } catch (const std::exception&) {
        return 0;
    }
    FUZZ_CHECK(!docs.starts.empty(), "no document start");
    for (size_t i = 0; i < docs.starts.size(); ++i) {
        FUZZ_CHECK(docs.starts[i] <= docs.ids.size(), "a document starts past the ids");
        if (i) FUZZ_CHECK(docs.starts[i - 1] < docs.starts[i], "document starts not ascending");
    }
    if (read && format != 4) FUZZ_CHECK(docs.ids == ids, "documents hold other ids than read_tokens");
    return 0;
}

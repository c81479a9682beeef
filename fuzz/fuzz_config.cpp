// config::resolve on arbitrary JSON documents, and config::load on a file. Contract: a resolved
// document or a ConfigError (any std::exception); resolving a resolved document changes nothing.
#include "fuzz/fuzz_util.h"
#include "model/config.h"

using namespace engramsim;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 64 * 1024) return 0;
    const bool via_file = data[0] & 1;
    ++data, --size;
    json resolved;
    if (via_file) {
        fuzz::TempFile file(data, size, ".json");
        try {
            resolved = config::load(file.path());
        } catch (const std::exception&) {
            return 0;
        }
    } else {
        const json doc = json::parse(data, data + size, nullptr, false);
        if (doc.is_discarded()) return 0;
        try {
            resolved = config::resolve(doc, "fuzz");
        } catch (const std::exception&) {
            return 0;
        }
    }
    FUZZ_CHECK(resolved.is_object(), "resolve returned " + resolved.dump());
    json again;
    try {
        again = config::resolve(resolved, "fuzz (resolved)");
    } catch (const std::exception& e) {
        fuzz::fail(std::string("a resolved document does not resolve: ") + e.what() + "\n" +
                   resolved.dump());
    }
    FUZZ_CHECK(again == resolved, "resolving twice changes the document:\n" + resolved.dump() +
                                      "\n" + again.dump());
    return 0;
}

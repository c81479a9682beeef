// Synthetic model files: synthetic_model_from_json on JSON (first byte even) or
// load_synthetic_model on a file (first byte odd). Contract: a model or an exception; a model
// that loads must drive the n-gram chain (NgramChain) without a crash or undefined behaviour.
#include "fuzz/fuzz_util.h"
#include "traces/synthetic.h"

using namespace engramsim;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 64 * 1024) return 0;
    const bool via_file = data[0] & 1;
    const uint64_t seed = data[0] >> 1;
    ++data, --size;
    SyntheticModel m;
    try {
        if (via_file) {
            fuzz::TempFile file(data, size, ".json");
            m = load_synthetic_model(file.path());
        } else {
            const json doc = json::parse(data, data + size, nullptr, false);
            if (doc.is_discarded()) return 0;
            m = synthetic_model_from_json(doc);
        }
    } catch (const std::exception&) {
        return 0;
    }
    FUZZ_CHECK(!m.orders.empty(), "a model without orders");
    FUZZ_CHECK(m.token_count.size() <= m.vocabulary, "more fitted tokens than the vocabulary");
    // The model written back reads the same.
    const json j = to_json(m);
    try {
        FUZZ_CHECK(to_json(synthetic_model_from_json(j)) == j, "to_json round trip differs");
    } catch (const std::exception& e) {
        fuzz::fail(std::string("to_json of a loaded model does not load: ") + e.what());
    }
    // Streaming: the chain's state is sized by the vocabulary (48 bytes per id), so a model with
    // a tokenizer-sized vocabulary is streamed; a larger one is only loaded.
    if (m.vocabulary > (1u << 20)) return 0;
    try {
        NgramChain chain(m, seed);
        std::vector<uint64_t> ids;
        for (int i = 0; i < 200; ++i) {
            chain.next(ids);
            FUZZ_CHECK(ids.size() == m.orders.size(), "ids per position");
        }
        FUZZ_CHECK(chain.distinct_tokens() <= m.vocabulary, "more distinct tokens than the vocabulary");
    } catch (const std::exception&) {
    }
    return 0;
}

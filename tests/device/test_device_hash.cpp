// The CUDA hash kernel against the CPU reference (NgramHasher), bit for bit, on the bundled
// English sample. Skipped, saying why, where no GPU is.
#include <gtest/gtest.h>

#include "kernels/cuda/engram_hash_cuda.h"
#include "model/config.h"
#include "traces/tokens.h"

using namespace engramsim;

TEST(DeviceHash, MatchesCpuReferenceBitForBit) {
    std::string why;
    if (!cuda::device_available(&why)) GTEST_SKIP() << "no GPU here: " << why;
    for (const char* preset : {"demo-v1", "paper-offload-100b"}) {
        SCOPED_TRACE(preset);
        const auto cfg = EngramConfig::from_json(config::load(preset)["engram"]);
        const auto map = CompressMap::load(cfg.compress_map);
        const auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
        const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
        for (size_t l = 0; l < hasher.layers().size(); ++l) {
            std::vector<uint32_t> cpu(ids.size() * size_t(hasher.heads_per_layer()));
            std::vector<uint32_t> gpu(cpu.size());
            hasher.hash_layer(l, ids, cpu);
            cuda::hash_layer(hasher, l, ids, gpu);
            EXPECT_EQ(gpu, cpu);
        }
    }
}

// Files linked into the engramsim binary: presets, the DeepSeek-V3 compression map and the
// bundled token samples, so that a fresh build runs with nothing outside the project.
// Names are relative paths such as "presets/engram/demo-v1.json" or
// "traces/deepseek_v3_compress_map.u32.bin". The bytes live for the whole program.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace engramsim::embedded {

// The bytes of an embedded file, or nullopt if no file has that name.
std::optional<std::string_view> find(std::string_view name);

// Names of the embedded files that start with `prefix`, in the order they were embedded.
std::vector<std::string_view> names(std::string_view prefix = {});

}  // namespace engramsim::embedded

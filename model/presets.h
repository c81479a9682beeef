// Presets shipped inside the binary (model/presets/<kind>/<name>.json): Engram memories,
// backbones and hardware. A preset is a config document with one section, named by its kind.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace engramsim::presets {

struct Info {
    std::string name;         // "demo-v1"
    std::string kind;         // "engram", "backbone" or "hardware"
    std::string description;  // one line
};

// All presets, ordered by kind then name.
std::vector<Info> list();

// The raw (unresolved) document of a preset, or nullopt if no preset has that name.
std::optional<nlohmann::json> document(std::string_view name);

// Preset names, for error messages listing what exists.
std::vector<std::string> names(std::string_view kind = {});

}  // namespace engramsim::presets

#include "model/presets.h"

#include <algorithm>

#include "model/embedded.h"

namespace engramsim::presets {

namespace {

constexpr std::string_view kPrefix = "presets/";

struct Entry {
    std::string name;
    std::string kind;
    std::string_view text;
};

// Embedded files are named presets/<kind>/<name>.json.
const std::vector<Entry>& entries() {
    static const std::vector<Entry> all = [] {
        std::vector<Entry> out;
        for (std::string_view file : embedded::names(kPrefix)) {
            std::string_view rest = file.substr(kPrefix.size());
            auto slash = rest.find('/');
            std::string_view stem = rest.substr(slash + 1);
            stem = stem.substr(0, stem.rfind(".json"));
            out.push_back({std::string(stem), std::string(rest.substr(0, slash)),
                           *embedded::find(file)});
        }
        std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
            return std::tie(a.kind, a.name) < std::tie(b.kind, b.name);
        });
        return out;
    }();
    return all;
}

}  // namespace

std::optional<nlohmann::json> document(std::string_view name) {
    for (const Entry& e : entries())
        if (e.name == name) return nlohmann::json::parse(e.text);
    return std::nullopt;
}

std::vector<Info> list() {
    std::vector<Info> out;
    for (const Entry& e : entries()) {
        auto doc = nlohmann::json::parse(e.text);
        out.push_back({e.name, e.kind, doc[e.kind].value("description", "")});
    }
    return out;
}

std::vector<std::string> names(std::string_view kind) {
    std::vector<std::string> out;
    for (const Entry& e : entries())
        if (kind.empty() || e.kind == kind) out.push_back(e.name);
    return out;
}

}  // namespace engramsim::presets

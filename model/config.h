// Configuration documents: declared keys, strict validation, resolution.
//
// A config document is a JSON object with up to six sections, each describing one thing:
//   "engram"   the Engram memory (the reference demo's field names),
//   "backbone" the Transformer it is attached to,
//   "hardware" the machine it runs on,
//   "workload" the requests it serves,
//   "sim"      how the timing simulator runs them (engine limits, fetch, schedule),
//   "placement" where the table's rows are served from (HBM cache, host DRAM, NVMe) and the
//              cache policies (sim/placement; engramsim replay and engramsim run).
// Every key of every section is declared once in the schema (config.cpp) with its type, unit,
// default and help. Resolution rejects unknown keys (naming the JSON path and the nearest
// declared key), wrong types and wrong units, fills defaults and rewrites every quantity in its
// canonical unit form. Nothing is ever fixed silently.
//
// A section may start from a preset: {"engram": {"base": "demo-v1", "seed": 7}}, or in short
// {"engram": "demo-v1"}.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/units.h"

namespace engramsim::config {

// A config problem. The message starts with the origin (file or preset) and the JSON path.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class Type {
    Integer,       // JSON integer, optionally bounded
    Boolean,       // JSON true/false
    String,        // free text
    Enum,          // one of `choices`
    Quantity,      // string with a unit of dimension `dim` ("80 GiB"); Count also takes numbers
    IntegerList,   // array of JSON integers
    QuantityList,  // array of quantities of dimension `dim`
    StringList,    // array of strings
    StringMap,     // object of string -> string (citations, policy options)
    Capacity,      // a cache capacity: "all", "N%", bytes with a unit, rows ("2.5M rows"); a
                   // JSON integer is rows. Resolved to its text; rows are counted where the
                   // table is known (placement::parse_capacity_rows).
    Section,       // object with declared `keys`
};

// The physically plausible values of a quantity, in its dimension's base unit (B, B/s, s, ...).
// Resolution refuses a value outside it with the key's path: a bandwidth of 0, a latency of
// 1e30 s or a capacity past 2^64 bytes is a typo or a unit slip, never a configuration.
struct Range {
    double lo = 0;
    bool lo_open = false;  // true: lo itself is refused (rates and bandwidths are > 0)
    double hi = 0;
    bool hi_open = false;  // true: hi itself is refused (2^64 does not fit 64 bits)
    std::string why;       // what the bound protects, for the error
};

struct Key {
    std::string name;
    Type type = Type::String;
    units::Dim dim = units::Dim::Count;  // Quantity and QuantityList only
    nlohmann::json default_value;        // null: the key is required
    std::string help;
    std::vector<std::string> choices;    // Enum only
    std::vector<Key> keys;               // Section only
    std::optional<int64_t> min;          // Integer only, inclusive
    std::optional<int64_t> max;          // Integer only, inclusive
    std::optional<Range> range;          // Quantity and QuantityList only
};

// 2^64 as a double: the first byte count or row count that does not fit 64 bits.
inline constexpr double kTwoTo64 = 18446744073709551616.0;

// The default plausible range of a quantity of dimension `dim`: bandwidths, FLOP rates and
// frequencies above 0 (and below 1 PB/s, 1 EFLOP/s, 100 GHz); times in [0 s, 1 s] (every time
// key is a latency or a per-operation cost); bytes and counts in [0, 2^64).
Range default_range(units::Dim dim);

// Why `value` (base unit) is outside `range`, as "1e+30 s is out of range: ...", or nothing.
std::optional<std::string> range_problem(double value, units::Dim dim, const Range& range);

// The root of the schema: a Section whose keys are the top-level sections.
const Key& schema();

// The declaration at a dotted path ("engram.seed", "hardware.gpu"), or nullptr.
const Key* find_key(std::string_view dotted_path);

// Every declared dotted path ("engram.seed", ...), with the sections ("hardware.gpu") when
// `sections`: the candidates of "did you mean" for a key path.
std::vector<std::string> declared_paths(bool sections);
// Human description of a type with its unit: "bytes (B, KB, ..., GiB)", "integer >= 2".
std::string describe_type(const Key& key);

// Validate `doc` and return it resolved (see the top of this file). Sections absent from `doc`
// stay absent. `origin` names the document in errors ("my.json", "preset demo-v1").
nlohmann::json resolve(const nlohmann::json& doc, std::string_view origin);

// Read a preset by name, or a JSON file by path, and resolve it.
nlohmann::json load(std::string_view preset_or_path);

// The JSON document in the file at `path`, unresolved; nothing when the file cannot be opened.
// Throws ConfigError for a directory or text that is not JSON (with its line and column).
std::optional<nlohmann::json> read_document(const std::string& path);

// The nearest name to `word` among `candidates` by edit distance, if it is close enough to be a
// plausible typo; used for "did you mean" hints everywhere names are looked up.
std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates);

// nlohmann's "[json.exception.parse_error.101] parse error at ..." without the bracketed tag,
// which names the library, not the problem.
std::string json_error_text(const std::string& what);

// Typed reads of a resolved section. `path` is used in errors only.
double quantity(const nlohmann::json& section, const std::string& key, units::Dim dim);

}  // namespace engramsim::config

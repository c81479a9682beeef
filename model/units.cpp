// Exact parsing and printing of quantities with units (see units.h).
//
// Every unit is an exact rational factor, an integer times a power of ten: "TB/s" is 1 * 10^12,
// "GiB" is 1073741824 * 10^0, "Gbps" is 125 * 10^6 (a bit is 125e-3 bytes). Parsing keeps the
// number as decimal digits, multiplies the digits by the integer, shifts the exponent, and only
// then rounds to a double, once, with std::from_chars. Computing 3.35 * 1e12 in floating point
// instead would round twice and can miss the nearest double.
#include "model/units.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>

namespace engramsim::units {
namespace {

// How format() may use a unit.
enum class Family {
    Base,       // the base unit; format() also counts it as the Decimal unit 10^0
    Decimal,    // powers of 1000 of the base unit (KB, us, GHz, TFLOP/s, M)
    Binary,     // powers of 1024 of the base unit (KiB); competes with Decimal in format()
    InputOnly,  // accepted by parse() but never printed (bits, µs, GFLOPS)
};

// A unit spelling worth `multiplier * 10^decimal_exponent` base units.
struct Unit {
    std::string_view symbol;
    uint64_t multiplier;  // 1, a power of 1024 (Binary) or 125 (bits); printed ones: 1 or 2^k
    int decimal_exponent;
    Family family;
};

constexpr uint64_t kKi = uint64_t{1} << 10;
constexpr uint64_t kMi = uint64_t{1} << 20;
constexpr uint64_t kGi = uint64_t{1} << 30;
constexpr uint64_t kTi = uint64_t{1} << 40;
constexpr uint64_t kPi = uint64_t{1} << 50;
constexpr uint64_t kBytesPerBitTimes1000 = 125;  // a bit is 1/8 = 125e-3 bytes

// Within a family, units go from small to large; format() walks them backwards.
constexpr Unit kByteUnits[] = {
    {"B", 1, 0, Family::Base},
    {"KB", 1, 3, Family::Decimal},    {"MB", 1, 6, Family::Decimal},
    {"GB", 1, 9, Family::Decimal},    {"TB", 1, 12, Family::Decimal},
    {"PB", 1, 15, Family::Decimal},
    {"KiB", kKi, 0, Family::Binary},  {"MiB", kMi, 0, Family::Binary},
    {"GiB", kGi, 0, Family::Binary},  {"TiB", kTi, 0, Family::Binary},
    {"PiB", kPi, 0, Family::Binary},
};

constexpr Unit kBandwidthUnits[] = {
    {"B/s", 1, 0, Family::Base},
    {"KB/s", 1, 3, Family::Decimal},    {"MB/s", 1, 6, Family::Decimal},
    {"GB/s", 1, 9, Family::Decimal},    {"TB/s", 1, 12, Family::Decimal},
    {"KiB/s", kKi, 0, Family::Binary},  {"MiB/s", kMi, 0, Family::Binary},
    {"GiB/s", kGi, 0, Family::Binary},  {"TiB/s", kTi, 0, Family::Binary},
    {"bps", kBytesPerBitTimes1000, -3, Family::InputOnly},
    {"Kbps", kBytesPerBitTimes1000, 0, Family::InputOnly},
    {"Mbps", kBytesPerBitTimes1000, 3, Family::InputOnly},
    {"Gbps", kBytesPerBitTimes1000, 6, Family::InputOnly},
    {"Tbps", kBytesPerBitTimes1000, 9, Family::InputOnly},
    {"Gb/s", kBytesPerBitTimes1000, 6, Family::InputOnly},
};

constexpr Unit kTimeUnits[] = {
    {"ps", 1, -12, Family::Decimal}, {"ns", 1, -9, Family::Decimal},
    {"us", 1, -6, Family::Decimal},  {"µs", 1, -6, Family::InputOnly},
    {"ms", 1, -3, Family::Decimal},  {"s", 1, 0, Family::Base},
};

constexpr Unit kFlopRateUnits[] = {
    {"FLOP/s", 1, 0, Family::Base},
    {"GFLOP/s", 1, 9, Family::Decimal},  {"TFLOP/s", 1, 12, Family::Decimal},
    {"PFLOP/s", 1, 15, Family::Decimal},
    {"FLOPS", 1, 0, Family::InputOnly},  {"GFLOPS", 1, 9, Family::InputOnly},
    {"TFLOPS", 1, 12, Family::InputOnly}, {"PFLOPS", 1, 15, Family::InputOnly},
};

// The empty symbol is the bare number.
constexpr Unit kCountUnits[] = {
    {"", 1, 0, Family::Base},
    {"K", 1, 3, Family::Decimal}, {"M", 1, 6, Family::Decimal},
    {"B", 1, 9, Family::Decimal}, {"T", 1, 12, Family::Decimal},
};

constexpr Unit kFrequencyUnits[] = {
    {"Hz", 1, 0, Family::Base},
    {"kHz", 1, 3, Family::Decimal}, {"MHz", 1, 6, Family::Decimal},
    {"GHz", 1, 9, Family::Decimal},
};

struct DimInfo {
    Dim dim;
    std::string_view name;         // dim_name()
    std::string_view description;  // completes "'64' is not ..."
    std::string_view base_unit;    // the symbol of its Family::Base unit
    std::string_view separator;    // between the number and the unit in printed text
    std::span<const Unit> units;
};

const DimInfo& info_of(Dim dim) {
    static const DimInfo kBytes{Dim::Bytes, "bytes", "a size in bytes", "B", " ", kByteUnits};
    static const DimInfo kBandwidth{Dim::Bandwidth, "bandwidth", "a bandwidth", "B/s", " ",
                                    kBandwidthUnits};
    static const DimInfo kTime{Dim::Time, "time", "a time", "s", " ", kTimeUnits};
    static const DimInfo kFlopRate{Dim::FlopRate, "FLOP rate", "a FLOP rate", "FLOP/s", " ",
                                   kFlopRateUnits};
    // Counts read like "2.26M" and "100B", without a space.
    static const DimInfo kCount{Dim::Count, "count", "a count", "", "", kCountUnits};
    static const DimInfo kFrequency{Dim::Frequency, "frequency", "a frequency", "Hz", " ",
                                    kFrequencyUnits};
    switch (dim) {
    case Dim::Bytes: return kBytes;
    case Dim::Bandwidth: return kBandwidth;
    case Dim::Time: return kTime;
    case Dim::FlopRate: return kFlopRate;
    case Dim::Count: return kCount;
    case Dim::Frequency: return kFrequency;
    }
    throw std::invalid_argument("units: invalid Dim value");
}

const Unit* find_unit(const DimInfo& info, std::string_view symbol) {
    for (const Unit& unit : info.units) {
        if (unit.symbol == symbol) return &unit;
    }
    return nullptr;
}

// "B, KB, MB", for errors. Count also takes a bare number, which has no symbol to list.
std::string unit_list(const DimInfo& info) {
    std::string list = info.dim == Dim::Count ? "none (a bare number)" : "";
    for (const std::string& symbol : accepted_units(info.dim)) {
        if (!list.empty()) list += ", ";
        list += symbol;
    }
    return list;
}

// "'<text>' <problem>; accepted units: <list>"
[[noreturn]] void fail(std::string_view text, const DimInfo& info, std::string_view problem) {
    throw UnitError("'" + std::string(text) + "' " + std::string(problem) +
                    "; accepted units: " + unit_list(info));
}

// An exact non-negative decimal number: digits * 10^exponent. Normalized: the digits have no
// leading or trailing zeros, and zero is the empty string with exponent 0.
struct Decimal {
    std::string digits;
    int64_t exponent = 0;
};

void normalize(Decimal& number) {
    const size_t first = number.digits.find_first_not_of('0');
    if (first == std::string::npos) {
        number = Decimal{};
        return;
    }
    const size_t last = number.digits.find_last_not_of('0');
    number.exponent += static_cast<int64_t>(number.digits.size() - 1 - last);
    number.digits = number.digits.substr(first, last + 1 - first);
}

// Exponent of the leading digit: 0 for 1 <= number < 10, negative below 1. Precondition: not 0.
int64_t scientific_exponent(const Decimal& number) {
    return number.exponent + static_cast<int64_t>(number.digits.size()) - 1;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Any written exponent beyond this is out of double range anyway (|exponent| <= 324 there);
// saturating keeps the arithmetic below from overflowing on "1e99999999999999999999".
constexpr int64_t kExponentCap = 1'000'000'000;

// Reads an unsigned decimal number ("3.35", ".5", "1.5e3", "2E-6") from the front of `text` and
// removes it from `text`; nullopt (and `text` untouched) if `text` does not start with a digit or
// a '.' followed by a digit. An incomplete exponent ("1e", "1e+") is left in `text`, where it
// fails as an unknown unit.
std::optional<Decimal> scan_number(std::string_view& text) {
    Decimal number;
    size_t pos = 0;
    bool has_digit = false;
    for (; pos < text.size() && is_digit(text[pos]); ++pos) {
        number.digits += text[pos];
        has_digit = true;
    }
    if (pos < text.size() && text[pos] == '.') {
        for (++pos; pos < text.size() && is_digit(text[pos]); ++pos) {
            number.digits += text[pos];
            --number.exponent;
            has_digit = true;
        }
    }
    if (!has_digit) return std::nullopt;
    if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
        size_t exponent_pos = pos + 1;
        const bool negative_exponent = exponent_pos < text.size() && text[exponent_pos] == '-';
        if (exponent_pos < text.size() && (text[exponent_pos] == '+' || negative_exponent)) {
            ++exponent_pos;
        }
        if (exponent_pos < text.size() && is_digit(text[exponent_pos])) {
            int64_t written_exponent = 0;
            for (; exponent_pos < text.size() && is_digit(text[exponent_pos]); ++exponent_pos) {
                written_exponent = std::min(written_exponent * 10 + (text[exponent_pos] - '0'),
                                            kExponentCap);
            }
            number.exponent += negative_exponent ? -written_exponent : written_exponent;
            pos = exponent_pos;
        }
    }
    text.remove_prefix(pos);
    normalize(number);
    return number;
}

// `number * factor`, exactly, by schoolbook multiplication of the digits. Every step stays below
// 10 * factor, which fits in 64 bits for factors up to 2^50 (PiB).
Decimal times(Decimal number, uint64_t factor) {
    if (factor == 1 || number.digits.empty()) return number;
    std::string reversed_product;
    uint64_t carry = 0;
    for (auto digit = number.digits.rbegin(); digit != number.digits.rend(); ++digit) {
        const uint64_t step = static_cast<uint64_t>(*digit - '0') * factor + carry;
        reversed_product += static_cast<char>('0' + step % 10);
        carry = step / 10;
    }
    for (; carry != 0; carry /= 10) reversed_product += static_cast<char>('0' + carry % 10);
    number.digits.assign(reversed_product.rbegin(), reversed_product.rend());
    normalize(number);
    return number;
}

// Why a number in a unit is not a valid quantity.
enum class Problem { None, FractionalBytes, TooLarge, TooSmall };

// `number` `unit` in base units, rounded once to the nearest double (ties to even) into `value`.
// Bytes must be whole before rounding; a result of infinity, or 0 from a number that is not 0, is
// out of range.
Problem to_base_unit(const Decimal& number, const Unit& unit, Dim dim, double& value) {
    Decimal exact = times(number, unit.multiplier);
    if (exact.digits.empty()) {
        value = 0.0;
        return Problem::None;
    }
    exact.exponent += unit.decimal_exponent;
    // Normalized digits have no trailing zeros, so a negative exponent means a fraction.
    if (dim == Dim::Bytes && exact.exponent < 0) return Problem::FractionalBytes;
    const std::string text = exact.digits + "e" + std::to_string(exact.exponent);
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc{}) return Problem::None;
    return scientific_exponent(exact) >= 0 ? Problem::TooLarge : Problem::TooSmall;
}

// The shortest decimal that reads back as `value`. Precondition: finite, >= 0.
Decimal shortest_decimal(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value,
                                      std::chars_format::scientific);
    std::string_view text(buffer, static_cast<size_t>(result.ptr - buffer));
    return *scan_number(text);
}

// `number` in fixed ("3.35", "1000") or scientific notation ("1.2e-06", "1e+21"), whichever is
// shorter, fixed on a tie: the choice std::to_chars makes for a double. Only the given digits are
// written; where to_chars would pad a large fixed number with the double's exact integer digits,
// this pads with zeros.
std::string render(const Decimal& number) {
    if (number.digits.empty()) return "0";
    const std::string& digits = number.digits;
    const int64_t exponent = scientific_exponent(number);
    const int64_t digit_count = static_cast<int64_t>(digits.size());

    std::string fixed;
    if (number.exponent >= 0) {
        fixed = digits + std::string(static_cast<size_t>(number.exponent), '0');
    } else if (exponent >= 0) {
        fixed = digits.substr(0, static_cast<size_t>(exponent + 1)) + "." +
                digits.substr(static_cast<size_t>(exponent + 1));
    } else {
        fixed = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }

    std::string scientific = digits.substr(0, 1);
    if (digit_count > 1) scientific.append(".").append(digits, 1);
    scientific += exponent < 0 ? "e-" : "e+";
    const int64_t exponent_magnitude = exponent < 0 ? -exponent : exponent;
    if (exponent_magnitude < 10) scientific += '0';  // at least two exponent digits, as printf
    scientific += std::to_string(exponent_magnitude);

    return fixed.size() <= scientific.size() ? fixed : scientific;
}

// std::to_chars: the shortest text that reads back as `value`.
std::string shortest_text(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, result.ptr);
}

// Throws unless `value` is something parse() can return for `info`.
void require_printable(double value, const DimInfo& info) {
    std::string problem;
    if (!std::isfinite(value)) {
        problem = "not a finite number";
    } else if (value < 0) {
        problem = "negative";
    } else if (info.dim == Dim::Bytes && value != std::floor(value)) {
        problem = "not a whole number of bytes";
    }
    if (!problem.empty()) {
        throw UnitError("cannot format " + shortest_text(value) + " as " +
                        std::string(info.description) + ": " + problem);
    }
}

// `value` (finite, > 0) in the largest unit of `family` in which the number is >= 1 and reads
// back as `value`; "" if there is none. The base unit counts as a Decimal unit: "3600 s" is
// larger than "3600000 ms", and "1234567891 B" should lose to "1.234567891 GB" on size, not win
// on length against it.
std::string format_in_family(double value, const DimInfo& info, Family family) {
    for (auto unit = info.units.rbegin(); unit != info.units.rend(); ++unit) {
        const bool in_family = unit->family == family ||
                               (family == Family::Decimal && unit->family == Family::Base);
        if (!in_family) continue;
        // Printed units have a multiplier of 1 or 2^k, so for quotients >= 1 (the only ones
        // printed) the division is exact; the power of ten is an exact shift of the digits.
        Decimal number = shortest_decimal(value / static_cast<double>(unit->multiplier));
        number.exponent -= unit->decimal_exponent;
        if (scientific_exponent(number) < 0) continue;
        // The shortest digits of value / 2^k are not always its exact value: 80e9 B is
        // 74.50580596923828 GiB only after rounding, which is not a whole number of bytes.
        double read_back = 0.0;
        if (to_base_unit(number, *unit, info.dim, read_back) != Problem::None) continue;
        if (read_back != value) continue;  // both positive: == means the same bits
        std::string text = render(number);
        text += info.separator;
        text += unit->symbol;
        return text;
    }
    return {};
}

std::string_view trim(std::string_view text) {
    const size_t first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t") + 1 - first);
}

}  // namespace

double parse(std::string_view text, Dim dim) {
    const DimInfo& info = info_of(dim);
    const std::string is_not = "is not " + std::string(info.description);
    std::string_view rest = trim(text);
    if (rest.empty()) fail(text, info, is_not + ": the text is empty");

    // The sign is checked after the unit, so that "-64 GB/s" as bytes names the wrong unit.
    const bool negative = rest.front() == '-';
    if (negative) rest.remove_prefix(1);
    const std::optional<Decimal> number = scan_number(rest);
    if (!number) fail(text, info, is_not + ": it does not start with a number");

    const std::string_view symbol = trim(rest);
    const Unit* unit = find_unit(info, symbol);
    if (unit == nullptr && symbol.empty()) {
        throw UnitError("'" + std::string(text) + "' " +
                        (negative ? "is negative (" + std::string(info.description) +
                                        " must be >= 0) and "
                                  : std::string()) +
                        "needs a unit (" + std::string(info.name) + ": " + unit_list(info) + ")");
    }
    if (unit == nullptr) fail(text, info, is_not);
    if (negative) fail(text, info, "is negative, but " + std::string(info.description) +
                                       " must be >= 0");

    double value = 0.0;
    const Problem problem = to_base_unit(*number, *unit, dim, value);
    if (problem == Problem::FractionalBytes) fail(text, info, "is not a whole number of bytes");
    if (problem == Problem::TooLarge) fail(text, info, is_not + ": it is too large for a double");
    if (problem == Problem::TooSmall) {
        fail(text, info, is_not + ": it is too small for a double (it would round to 0)");
    }
    return value;
}

std::string format(double value, Dim dim) {
    const DimInfo& info = info_of(dim);
    require_printable(value, info);
    if (value == 0) return format_base(value, dim);
    // Binary first: it keeps ties.
    std::string shortest;
    for (const Family family : {Family::Binary, Family::Decimal}) {
        std::string text = format_in_family(value, info, family);
        if (!text.empty() && (shortest.empty() || text.size() < shortest.size())) {
            shortest = std::move(text);
        }
    }
    return shortest.empty() ? format_base(value, dim) : shortest;
}

std::string format_base(double value, Dim dim) {
    const DimInfo& info = info_of(dim);
    require_printable(value, info);
    // +0.0 for -0.0, which would print a sign that parse() rejects.
    std::string text = shortest_text(value == 0 ? 0.0 : value);
    text += info.separator;
    text += info.base_unit;
    return text;
}

std::string_view dim_name(Dim dim) { return info_of(dim).name; }

std::string_view base_unit(Dim dim) { return info_of(dim).base_unit; }

std::vector<std::string> accepted_units(Dim dim) {
    std::vector<std::string> symbols;
    for (const Unit& unit : info_of(dim).units) {
        if (!unit.symbol.empty()) symbols.emplace_back(unit.symbol);
    }
    return symbols;
}

}  // namespace engramsim::units

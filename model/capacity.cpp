#include "model/capacity.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "model/config.h"
#include "model/units.h"

namespace engramsim::capacity {

namespace {

std::invalid_argument bad(const std::string& raw, const std::string& why) {
    return std::invalid_argument(
        "capacity '" + raw + "': " + why +
        "; expected all, a percentage of the table (1%), a byte size (10GiB, 1.5 TB) or rows "
        "(1000000, 2.5M rows)");
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// units::parse with its error folded into the capacity's.
double parse_quantity(const std::string& raw, const std::string& text, units::Dim dim) {
    try {
        return units::parse(text, dim);
    } catch (const units::UnitError& e) {
        throw bad(raw, e.what());
    }
}

}  // namespace

Capacity parse(const std::string& raw) {
    const size_t b = raw.find_first_not_of(" \t"), e = raw.find_last_not_of(" \t");
    const std::string text = b == std::string::npos ? std::string() : raw.substr(b, e - b + 1);
    if (text.empty()) throw bad(raw, "it is empty");
    if (text == "all") return {.kind = Kind::All};
    if (text.front() == '-') throw bad(raw, "a capacity must not be negative");
    if (text.back() == '%') {
        const double pct = parse_quantity(raw, text.substr(0, text.size() - 1), units::Dim::Count);
        if (pct > 100) throw bad(raw, "more than 100%");
        return {.kind = Kind::Percent, .percent = pct};
    }
    if (ends_with(text, "rows")) {
        const double n = parse_quantity(raw, text.substr(0, text.size() - 4), units::Dim::Count);
        if (n != std::floor(n)) throw bad(raw, "not a whole number of rows");
        if (!(n < config::kTwoTo64)) throw bad(raw, "more rows than 64 bits count");
        return {.kind = Kind::Rows, .rows = uint64_t(n)};
    }
    if (text.find_first_not_of("0123456789") == std::string::npos) {
        uint64_t n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec == std::errc::result_out_of_range) throw bad(raw, "more rows than 64 bits count");
        if (ec != std::errc() || end != text.data() + text.size()) throw bad(raw, "not a number");
        return {.kind = Kind::Rows, .rows = n};
    }
    const double bytes = parse_quantity(raw, text, units::Dim::Bytes);
    if (!(bytes < config::kTwoTo64))
        throw bad(raw, units::format(bytes, units::Dim::Bytes) + " does not fit 64-bit bytes");
    return {.kind = Kind::Bytes, .bytes = bytes};
}

uint64_t rows(const Capacity& c, double row_bytes, uint64_t table_rows, const std::string& text) {
    switch (c.kind) {
        case Kind::All:
            return table_rows;
        case Kind::Rows:
            return c.rows;
        case Kind::Percent: {
            // At most table_rows, which fits: the product of two doubles below 2^64 rounds down.
            const double r = std::floor(c.percent / 100.0 * double(table_rows));
            return r >= double(table_rows) ? table_rows : uint64_t(r);
        }
        case Kind::Bytes: {
            if (!(row_bytes > 0) || !std::isfinite(row_bytes))
                throw bad(text, "byte sizes need the row size, which this trace lacks");
            const double r = std::floor(c.bytes / row_bytes);
            if (!(r < config::kTwoTo64)) throw bad(text, "more rows than 64 bits count");
            return uint64_t(r);
        }
    }
    return 0;
}

}  // namespace engramsim::capacity

// Command-line validators that refuse what CLI11's stock ones let through. CLI::Range and
// CLI::PositiveNumber compare with < and >, so "nan" passes both, and their messages print
// DBL_MAX as 309 digits. These refuse nan and infinities and print their bounds as written.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace engramsim::cli {

// A finite real number in [lo, hi], or (lo, hi] when lo_open.
inline CLI::Validator number_in(double lo, double hi, bool lo_open = false) {
    auto shortest = [](double x) {
        char buf[32];
        return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
    };
    const std::string bounds =
        std::string(lo_open ? "(" : "[") + shortest(lo) + ", " + shortest(hi) + "]";
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double x = 0;
            const char* end = text.data() + text.size();
            const auto r = std::from_chars(text.data(), end, x);
            if (r.ec != std::errc() || r.ptr != end || !std::isfinite(x))
                return "'" + text + "' is not a finite number";
            if (lo_open ? !(x > lo) : !(x >= lo)) return text + " is not in " + bounds;
            if (!(x <= hi)) return text + " is not in " + bounds;
            return {};
        },
        "NUMBER in " + bounds);
}

// A whole number >= 0 written in digits that fits 64 bits. CLI11 reads "-1" into an unsigned
// option as 2^64 - 1 without a word; this refuses it.
inline CLI::Validator whole_number() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            uint64_t x = 0;
            const char* end = text.data() + text.size();
            const auto r = std::from_chars(text.data(), end, x);
            if (!text.empty() && text.front() == '-') return text + " is negative";
            if (r.ec == std::errc::result_out_of_range) return text + " does not fit 64 bits";
            if (r.ec != std::errc() || r.ptr != end) return "'" + text + "' is not a whole number";
            return {};
        },
        "UINT");
}

}  // namespace engramsim::cli

// Command-line validators that refuse what CLI11's stock ones let through. CLI::Range and
// CLI::PositiveNumber compare with < and >, so "nan" passes both, and their messages print
// DBL_MAX as 309 digits. These refuse nan and infinities and print their bounds as written.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
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

}  // namespace engramsim::cli

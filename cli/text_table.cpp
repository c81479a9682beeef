#include "cli/text_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>

namespace engramsim::cli {

std::string thousands(uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string pct_band(const std::vector<double>& values) {
    if (values.empty()) return "";
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    return fixed(*lo, 2) + " .. " + fixed(*hi, 2) + "%";
}

std::string fixed(double x, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, x);
    // A negative value that rounds to zero prints as 0, not -0 (a sign the digits do not show).
    if (buf[0] == '-' && std::strspn(buf + 1, "0.") == std::strlen(buf + 1)) return buf + 1;
    return buf;
}

std::string rounded(double value, units::Dim dim, int significant) {
    if (value <= 0) return units::format(0, dim);
    const double scale = std::pow(10.0, std::floor(std::log10(value)) + 1 - significant);
    double r = std::round(value / scale) * scale;
    // Re-read the decimal text so the double is the one nearest the rounded decimal.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*e", significant - 1, r);
    r = std::strtod(buf, nullptr);
    if (dim == units::Dim::Bytes) r = std::round(r);
    return units::format(r, dim);
}

TextTable::TextTable(std::vector<std::string> headers) {
    for (auto& h : headers) {
        bool left = !h.empty() && h[0] == '<';
        left_.push_back(left);
        headers_.push_back(left ? h.substr(1) : h);
    }
}

void TextTable::add(std::vector<std::string> row) {
    row.resize(headers_.size());
    rows_.push_back(std::move(row));
}

void TextTable::print(std::ostream& out, const std::string& indent) const {
    std::vector<size_t> width(headers_.size());
    auto measure = [&](const std::vector<std::string>& r) {
        for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
    };
    measure(headers_);
    for (const auto& r : rows_) measure(r);
    auto emit = [&](const std::vector<std::string>& r) {
        std::string line = indent;
        for (size_t c = 0; c < r.size(); ++c) {
            std::string pad(width[c] - r[c].size(), ' ');
            line += left_[c] ? r[c] + pad : pad + r[c];
            if (c + 1 < r.size()) line += "  ";
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << '\n';
    };
    emit(headers_);
    std::vector<std::string> rule;
    for (size_t w : width) rule.push_back(std::string(w, '-'));
    emit(rule);
    for (const auto& r : rows_) emit(r);
}

}  // namespace engramsim::cli

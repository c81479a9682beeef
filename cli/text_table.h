// Terminal output helpers: aligned text tables and thousands separators.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "model/units.h"

namespace engramsim::cli {

// "1,234,567".
std::string thousands(uint64_t n);
// Fixed-point with `digits` decimals.
std::string fixed(double x, int digits);
// A band of percentages, its lowest to its highest: "0.52 .. 1.35%".
std::string pct_band(const std::vector<double>& values);
// A quantity rounded to `significant` digits, in its readable unit: "1.32B", "2.65 GB".
std::string rounded(double value, units::Dim dim, int significant = 3);

// Columns are left-aligned when their header starts with '<', right-aligned otherwise (the
// marker is not printed).
class TextTable {
public:
    explicit TextTable(std::vector<std::string> headers);
    void add(std::vector<std::string> row);
    void print(std::ostream& out, const std::string& indent = "") const;

private:
    std::vector<std::string> headers_;
    std::vector<bool> left_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace engramsim::cli

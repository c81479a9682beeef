// Cache capacities as configs and the command line write them: "all", "N%" of the table's rows,
// rows ("1000000", "2.5M rows") or bytes with a unit ("10GiB", "1.5 TB"). One parser for the
// config schema (which checks the text without a table) and the placement replay (which counts
// rows once the table is known), so both refuse the same texts with the same words.
#pragma once

#include <cstdint>
#include <string>

namespace engramsim::capacity {

enum class Kind { All, Percent, Rows, Bytes };

struct Capacity {
    Kind kind = Kind::All;
    uint64_t rows = 0;   // Kind::Rows: exact, < 2^64
    double percent = 0;  // Kind::Percent: in [0, 100]
    double bytes = 0;    // Kind::Bytes: whole, < 2^64
};

// Parses `text` (spaces around it ignored). Throws std::invalid_argument naming the text, what is
// wrong (negative, over 100%, a fraction of a row, past 2^64 rows or bytes, an unknown unit) and
// the accepted forms.
Capacity parse(const std::string& text);

// Rows of a table of `table_rows` rows of `row_bytes` bytes each that `c` holds: all of them,
// floor(percent / 100 x table_rows), the rows given, or floor(bytes / row_bytes). Throws
// std::invalid_argument for bytes when row_bytes is not a positive finite number, or when the
// quotient does not fit 64 bits. `text` is quoted in errors.
uint64_t rows(const Capacity& c, double row_bytes, uint64_t table_rows, const std::string& text);

}  // namespace engramsim::capacity

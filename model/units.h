// Physical quantities written with units ("64 GiB", "3.35 TB/s", "1.2 us"), parsed and printed
// exactly.
//
// A quantity has a dimension (Dim) and is held as a double in that dimension's base unit: bytes,
// bytes per second, seconds, FLOP per second, a plain count, or hertz. Text is a non-negative
// decimal number (scientific notation allowed), optional spaces, then a unit; units are
// case-sensitive. Conversions round once: the number is scaled exactly in decimal and only then
// rounded to the nearest double, so parse("3.35 TB/s") == 3.35e12 and parse("1.2 us") == 1.2e-6
// bit for bit. format() picks a readable unit whose text parses back to the very same double.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace engramsim::units {

// Base units: Bytes -> B, Bandwidth -> B/s, Time -> s, FlopRate -> FLOP/s, Count -> 1 (a plain
// number), Frequency -> Hz.
enum class Dim { Bytes, Bandwidth, Time, FlopRate, Count, Frequency };

// Text that is not a valid quantity of the expected dimension, or a value that cannot be printed
// as one. The message quotes the text and lists the accepted units.
struct UnitError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The value of `text` in the base unit of `dim`, correctly rounded to the nearest double.
// Accepted units per dimension (see accepted_units):
//   Bytes      B, KB, MB, GB, TB, PB (powers of 1000), KiB, MiB, GiB, TiB, PiB (powers of 1024);
//              the exact value must be a whole number of bytes ("1.5 KiB" yes, "0.3 B" no).
//   Bandwidth  B/s, KB/s .. TB/s, KiB/s .. TiB/s, and bits per second bps, Kbps, Mbps, Gbps
//              (also Gb/s), Tbps, which are divided by 8.
//   Time       ps, ns, us (also µs), ms, s.
//   FlopRate   FLOP/s, GFLOP/s, TFLOP/s, PFLOP/s, also spelled FLOPS, GFLOPS, TFLOPS, PFLOPS.
//   Count      a bare number, or suffixed K (1e3), M (1e6), B (1e9), T (1e12): "2.26M", "100B".
//   Frequency  Hz, kHz, MHz, GHz.
// Every dimension but Count requires a unit. Throws UnitError on empty text, a missing or unknown
// unit, a negative sign (also "-0"), a number that overflows or underflows to 0 as a double
// (neither "inf" nor "nan" is a number here), and fractional bytes.
double parse(std::string_view text, Dim dim);

// The shortest readable text that parse(text, dim) turns back into exactly `value` (same bits):
// the largest unit of the dimension in which the number is >= 1 and round-trips ("3600 s",
// "1.2 us"), else the base unit ("5e-13 s"). Bytes and bandwidth try the decimal family (B, KB,
// ...) and the binary one (KiB, ...) and keep the shorter text, ties to binary: "64 GiB", "1 KB",
// "1.5 KiB", "3.35 TB/s". The number is the shortest digits, written fixed or scientific,
// whichever is shorter ("5e+06 FLOP/s"), as std::to_chars does. Bits per second and the
// alternative spellings (µs, GFLOPS) are never printed. A count has no space before its suffix
// ("2.26M"). Preconditions: `value` is finite and >= 0 (-0.0 prints as "0"), and whole for Bytes;
// otherwise throws UnitError.
std::string format(double value, Dim dim);

// `value` in the base unit, as the shortest text that reads back exactly (std::to_chars):
// "68719476736 B", "3.35e+12 B/s", "42" for a count. Same preconditions as format().
std::string format_base(double value, Dim dim);

// Name of the dimension: "bytes", "bandwidth", "time", "FLOP rate", "count", "frequency".
std::string_view dim_name(Dim dim);

// Symbol of the base unit: "B", "B/s", "s", "FLOP/s", "" (count), "Hz".
std::string_view base_unit(Dim dim);

// Every unit spelling parse() accepts for `dim`, grouped by family, smallest first; for help texts
// and errors. For Count these are the suffixes K, M, B, T; a bare number is accepted in addition.
std::vector<std::string> accepted_units(Dim dim);

}  // namespace engramsim::units

// Tests for model/units: every accepted unit, correct rounding, exact round trips of format(),
// and the errors users see.
#include "model/units.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace engramsim::units {
namespace {

constexpr Dim kAllDims[] = {Dim::Bytes,    Dim::Bandwidth, Dim::Time,
                            Dim::FlopRate, Dim::Count,     Dim::Frequency};

std::string shortest(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, result.ptr);
}

// Equality of the bits, not just ==, so that a result off by one ulp or of the wrong sign of zero
// fails with both values printed in full.
::testing::AssertionResult SameBits(double actual, double expected) {
    if (std::bit_cast<uint64_t>(actual) == std::bit_cast<uint64_t>(expected)) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << shortest(actual) << " != expected "
                                         << shortest(expected);
}

std::string joined_units(Dim dim) {
    std::string list;
    for (const std::string& unit : accepted_units(dim)) {
        list += list.empty() ? unit : ", " + unit;
    }
    return list;
}

// One text per accepted unit, with the value computed without the module: integer arithmetic for
// binary units, and for decimal ones a double literal, which the compiler rounds correctly.
struct UnitCase {
    std::string_view text;
    Dim dim;
    double expected;
};

constexpr uint64_t kKi = uint64_t{1} << 10;
constexpr uint64_t kMi = uint64_t{1} << 20;
constexpr uint64_t kGi = uint64_t{1} << 30;
constexpr uint64_t kTi = uint64_t{1} << 40;
constexpr uint64_t kPi = uint64_t{1} << 50;

const UnitCase kUnitCases[] = {
    {"100 B", Dim::Bytes, 100.0},
    {"1.5 KB", Dim::Bytes, 1500.0},
    {"2.5 MB", Dim::Bytes, 2500000.0},
    {"64 GB", Dim::Bytes, 64000000000.0},
    {"3.35 TB", Dim::Bytes, 3350000000000.0},
    {"1.25 PB", Dim::Bytes, 1250000000000000.0},
    {"1.5 KiB", Dim::Bytes, static_cast<double>(3 * kKi / 2)},
    {"3 MiB", Dim::Bytes, static_cast<double>(3 * kMi)},
    {"64 GiB", Dim::Bytes, static_cast<double>(64 * kGi)},
    {"1.75 TiB", Dim::Bytes, static_cast<double>(7 * kTi / 4)},
    {"2 PiB", Dim::Bytes, static_cast<double>(2 * kPi)},

    {"12.5 B/s", Dim::Bandwidth, 12.5},
    {"2.01 KB/s", Dim::Bandwidth, 2010.0},
    {"900 MB/s", Dim::Bandwidth, 900000000.0},
    {"25.6 GB/s", Dim::Bandwidth, 25600000000.0},
    {"3.35 TB/s", Dim::Bandwidth, 3350000000000.0},
    {"512 KiB/s", Dim::Bandwidth, static_cast<double>(512 * kKi)},
    {"1.5 MiB/s", Dim::Bandwidth, static_cast<double>(3 * kMi / 2)},
    {"32 GiB/s", Dim::Bandwidth, static_cast<double>(32 * kGi)},
    {"0.5 TiB/s", Dim::Bandwidth, static_cast<double>(kTi / 2)},
    {"12 bps", Dim::Bandwidth, 1.5},
    {"100 Kbps", Dim::Bandwidth, 12500.0},
    {"100 Mbps", Dim::Bandwidth, 12500000.0},
    {"8 Gbps", Dim::Bandwidth, 1000000000.0},
    {"400 Gb/s", Dim::Bandwidth, 50000000000.0},
    {"1.6 Tbps", Dim::Bandwidth, 200000000000.0},

    {"1.5 ps", Dim::Time, 1.5e-12},
    {"100 ns", Dim::Time, 1e-7},
    {"1.2 us", Dim::Time, 1.2e-6},
    {"2.5 µs", Dim::Time, 2.5e-6},
    {"16 ms", Dim::Time, 0.016},
    {"3600 s", Dim::Time, 3600.0},

    {"1000 FLOP/s", Dim::FlopRate, 1000.0},
    {"19.5 GFLOP/s", Dim::FlopRate, 19.5e9},
    {"989.4 TFLOP/s", Dim::FlopRate, 989.4e12},
    {"1.98 PFLOP/s", Dim::FlopRate, 1.98e15},
    {"5 FLOPS", Dim::FlopRate, 5.0},
    {"67 GFLOPS", Dim::FlopRate, 67e9},
    {"1979 TFLOPS", Dim::FlopRate, 1979e12},
    {"4 PFLOPS", Dim::FlopRate, 4e15},

    {"42", Dim::Count, 42.0},
    {"0.5", Dim::Count, 0.5},
    {"1.5K", Dim::Count, 1500.0},
    {"2.26M", Dim::Count, 2260000.0},
    {"100B", Dim::Count, 100000000000.0},
    {"2T", Dim::Count, 2000000000000.0},

    {"50 Hz", Dim::Frequency, 50.0},
    {"1.5 kHz", Dim::Frequency, 1500.0},
    {"800 MHz", Dim::Frequency, 800000000.0},
    {"1.98 GHz", Dim::Frequency, 1980000000.0},
};

// The unit of a case: what follows the number ("" for a bare count).
std::string unit_of(std::string_view text) {
    const size_t start = text.find_first_not_of("0123456789. ");
    return start == std::string_view::npos ? "" : std::string(text.substr(start));
}

TEST(Units, EveryAcceptedUnitHasACase) {
    for (const Dim dim : kAllDims) {
        std::set<std::string> covered;
        for (const UnitCase& unit_case : kUnitCases) {
            if (unit_case.dim == dim && !unit_of(unit_case.text).empty()) {
                covered.insert(unit_of(unit_case.text));
            }
        }
        const std::vector<std::string> accepted = accepted_units(dim);
        EXPECT_EQ(covered, std::set<std::string>(accepted.begin(), accepted.end()))
            << dim_name(dim);
    }
}

TEST(Units, EveryUnitParsesExactlyAndRoundTrips) {
    for (const UnitCase& unit_case : kUnitCases) {
        SCOPED_TRACE(std::string(unit_case.text));
        const double value = parse(unit_case.text, unit_case.dim);
        EXPECT_TRUE(SameBits(value, unit_case.expected));
        const std::string printed = format(value, unit_case.dim);
        EXPECT_TRUE(SameBits(parse(printed, unit_case.dim), value)) << printed;
        EXPECT_TRUE(SameBits(parse(format_base(value, unit_case.dim), unit_case.dim), value));
    }
}

TEST(Units, SpaceBeforeTheUnitIsOptional) {
    EXPECT_EQ(parse("64GiB", Dim::Bytes), static_cast<double>(64 * kGi));
    EXPECT_EQ(parse("  64   GiB  ", Dim::Bytes), static_cast<double>(64 * kGi));
    EXPECT_EQ(parse("64\tGiB", Dim::Bytes), static_cast<double>(64 * kGi));
    EXPECT_EQ(parse("1.2us", Dim::Time), 1.2e-6);
    EXPECT_EQ(parse("2.26 M", Dim::Count), 2260000.0);
}

TEST(Units, ScientificNotation) {
    EXPECT_EQ(parse("1.5e3 GB", Dim::Bytes), 1.5e12);
    EXPECT_EQ(parse("1e+3 KB", Dim::Bytes), 1e6);
    EXPECT_EQ(parse("2E-6 s", Dim::Time), 2e-6);
    EXPECT_EQ(parse("1e3", Dim::Count), 1000.0);
    EXPECT_EQ(parse(".5 GiB", Dim::Bytes), static_cast<double>(kGi / 2));
    EXPECT_EQ(parse("5.", Dim::Count), 5.0);
    EXPECT_EQ(parse("0e99999999999999999999 B", Dim::Bytes), 0.0);
}

TEST(Units, DecimalAndBinaryPrefixesDiffer) {
    const std::pair<const char*, const char*> pairs[] = {
        {"KB", "KiB"}, {"MB", "MiB"}, {"GB", "GiB"}, {"TB", "TiB"}, {"PB", "PiB"}};
    uint64_t decimal_factor = 1;
    uint64_t binary_factor = 1;
    for (const auto& [decimal, binary] : pairs) {
        decimal_factor *= 1000;
        binary_factor *= 1024;
        EXPECT_EQ(parse(std::string("1 ") + decimal, Dim::Bytes),
                  static_cast<double>(decimal_factor));
        EXPECT_EQ(parse(std::string("1 ") + binary, Dim::Bytes),
                  static_cast<double>(binary_factor));
        if (decimal_factor < 1000'000'000'000'000) {  // bandwidth stops at TB/s
            EXPECT_EQ(parse(std::string("1 ") + decimal + "/s", Dim::Bandwidth),
                      static_cast<double>(decimal_factor));
            EXPECT_EQ(parse(std::string("1 ") + binary + "/s", Dim::Bandwidth),
                      static_cast<double>(binary_factor));
        }
    }
    EXPECT_EQ(parse("1 KB", Dim::Bytes), 1000.0);
    EXPECT_EQ(parse("1 KiB", Dim::Bytes), 1024.0);
}

TEST(Units, BitsAreAnEighthOfBytes) {
    const std::pair<const char*, const char*> pairs[] = {{"bps", "B/s"},   {"Kbps", "KB/s"},
                                                         {"Mbps", "MB/s"}, {"Gbps", "GB/s"},
                                                         {"Gb/s", "GB/s"}, {"Tbps", "TB/s"}};
    const char* numbers[] = {"1", "8", "0.1", "3.35", "400", "1.07", "123456.789e-3"};
    for (const auto& [bits, bytes] : pairs) {
        for (const char* number : numbers) {
            SCOPED_TRACE(std::string(number) + " " + bits);
            // Dividing by 8 is exact, so the correctly rounded results agree exactly.
            EXPECT_TRUE(SameBits(parse(std::string(number) + " " + bits, Dim::Bandwidth),
                                 parse(std::string(number) + " " + bytes, Dim::Bandwidth) / 8));
        }
    }
    EXPECT_EQ(parse("8 Gbps", Dim::Bandwidth), 1e9);
    EXPECT_EQ(parse("1 Gbps", Dim::Bandwidth), parse("1 GB/s", Dim::Bandwidth) / 8);
}

// Multiplying the parsed number by the unit in floating point rounds twice; these texts are cases
// where that gives a different double than the correctly rounded one (checked below, so the test
// keeps proving something).
TEST(Units, ParsingRoundsOnce) {
    struct Case {
        std::string_view text;
        Dim dim;
        double number;         // the number as written
        double factor;         // the unit as a double
        double correct;        // literal of the whole quantity, rounded once by the compiler
    };
    const Case cases[] = {
        {"1.07 TB/s", Dim::Bandwidth, 1.07, 1e12, 1.07e12},
        {"0.27 TFLOP/s", Dim::FlopRate, 0.27, 1e12, 0.27e12},
        {"0.11 us", Dim::Time, 0.11, 1e-6, 0.11e-6},
        {"0.01 ns", Dim::Time, 0.01, 1e-9, 0.01e-9},
        {"0.07 ms", Dim::Time, 0.07, 1e-3, 0.07e-3},
        {"0.23 ps", Dim::Time, 0.23, 1e-12, 0.23e-12},
        {"1.07 GHz", Dim::Frequency, 1.07, 1e9, 1.07e9},
        {"2.01M", Dim::Count, 2.01, 1e6, 2.01e6},
        {"2.01 KB/s", Dim::Bandwidth, 2.01, 1e3, 2.01e3},
        {"8.56 Gbps", Dim::Bandwidth, 8.56, 1e9 / 8, 1.07e9},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(std::string(c.text));
        EXPECT_TRUE(SameBits(parse(c.text, c.dim), c.correct));
        EXPECT_NE(c.number * c.factor, c.correct) << "not a double-rounding case any more";
    }
}

TEST(Units, TiesRoundToEvenOnTheExactValue) {
    // 2^53 + 1 and 2^53 + 5 bytes lie halfway between two doubles; ties go to the even mantissa.
    EXPECT_TRUE(SameBits(parse("9.007199254740993 PB", Dim::Bytes), 9007199254740992.0));
    EXPECT_TRUE(SameBits(parse("9007.199254740997 TB", Dim::Bytes), 9007199254740996.0));
    // Just above a tie, decided by a digit far beyond what a double holds.
    EXPECT_TRUE(SameBits(parse("9007199.2547409930000000000000000001 GB/s", Dim::Bandwidth),
                         9007199254740994.0));
    // A number with more digits than a double holds still rounds once.
    EXPECT_TRUE(SameBits(parse("0.1000000000000000055511151231257827021181583404541015625 s",
                               Dim::Time),
                         0.1));
}

TEST(Units, FormatPicksTheLargestReadableUnit) {
    struct Case {
        double value;
        Dim dim;
        std::string_view text;
    };
    const Case cases[] = {
        {static_cast<double>(64 * kGi), Dim::Bytes, "64 GiB"},
        {1536.0, Dim::Bytes, "1.5 KiB"},
        {1024.0, Dim::Bytes, "1 KiB"},
        {1000.0, Dim::Bytes, "1 KB"},
        {80e9, Dim::Bytes, "80 GB"},
        {500.0, Dim::Bytes, "500 B"},
        {0.0, Dim::Bytes, "0 B"},
        {-0.0, Dim::Bytes, "0 B"},
        {3.35e12, Dim::Bandwidth, "3.35 TB/s"},
        {static_cast<double>(25 * kGi), Dim::Bandwidth, "25 GiB/s"},
        {0.125, Dim::Bandwidth, "0.125 B/s"},
        {1.2e-6, Dim::Time, "1.2 us"},
        {1.5e-3, Dim::Time, "1.5 ms"},
        {3600.0, Dim::Time, "3600 s"},
        {5e-13, Dim::Time, "5e-13 s"},
        {989.4e12, Dim::FlopRate, "989.4 TFLOP/s"},
        {5e6, Dim::FlopRate, "5e+06 FLOP/s"},  // no MFLOP/s; scientific is shorter
        {1234567891.0, Dim::Bytes, "1.234567891 GB"},
        {80e9 + 1, Dim::Bytes, "80.000000001 GB"},
        {1.5 * 1e9, Dim::FlopRate, "1.5 GFLOP/s"},
        {0.5, Dim::Time, "500 ms"},
        {2.26e6, Dim::Count, "2.26M"},
        {1e11, Dim::Count, "100B"},
        {42.0, Dim::Count, "42"},
        {1.98e9, Dim::Frequency, "1.98 GHz"},
        {1.5e3, Dim::Frequency, "1.5 kHz"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(format(c.value, c.dim), c.text);
    }
}

TEST(Units, FormatBaseIsTheShortestBaseUnitText) {
    EXPECT_EQ(format_base(static_cast<double>(64 * kGi), Dim::Bytes), "68719476736 B");
    EXPECT_EQ(format_base(3.35e12, Dim::Bandwidth), "3.35e+12 B/s");
    EXPECT_EQ(format_base(1.2e-6, Dim::Time), "1.2e-06 s");
    EXPECT_EQ(format_base(2.26e6, Dim::Count), "2260000");
    EXPECT_EQ(format_base(-0.0, Dim::Time), "0 s");
}

TEST(Units, Names) {
    EXPECT_EQ(dim_name(Dim::Bytes), "bytes");
    EXPECT_EQ(dim_name(Dim::Bandwidth), "bandwidth");
    EXPECT_EQ(dim_name(Dim::Time), "time");
    EXPECT_EQ(dim_name(Dim::FlopRate), "FLOP rate");
    EXPECT_EQ(dim_name(Dim::Count), "count");
    EXPECT_EQ(dim_name(Dim::Frequency), "frequency");
    EXPECT_EQ(base_unit(Dim::Bytes), "B");
    EXPECT_EQ(base_unit(Dim::Bandwidth), "B/s");
    EXPECT_EQ(base_unit(Dim::Time), "s");
    EXPECT_EQ(base_unit(Dim::FlopRate), "FLOP/s");
    EXPECT_EQ(base_unit(Dim::Count), "");
    EXPECT_EQ(base_unit(Dim::Frequency), "Hz");
    for (const Dim dim : kAllDims) {
        const std::string separator = dim == Dim::Count ? "" : " ";
        EXPECT_EQ(parse("7" + separator + std::string(base_unit(dim)), dim), 7.0);
    }
    EXPECT_EQ(joined_units(Dim::Bytes), "B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB");
}

TEST(Units, Extremes) {
    const double max = std::numeric_limits<double>::max();
    const double smallest_normal = std::numeric_limits<double>::min();
    const double smallest_subnormal = std::numeric_limits<double>::denorm_min();
    for (const Dim dim : kAllDims) {
        SCOPED_TRACE(std::string(dim_name(dim)));
        EXPECT_TRUE(SameBits(parse(format(max, dim), dim), max));
        EXPECT_TRUE(SameBits(parse(format(9007199254740994.0, dim), dim), 9007199254740994.0));
        if (dim == Dim::Bytes) continue;
        for (const double tiny : {smallest_normal, smallest_subnormal, 1e-300, 0.1, 1e-12}) {
            EXPECT_TRUE(SameBits(parse(format(tiny, dim), dim), tiny)) << format(tiny, dim);
        }
    }
    EXPECT_TRUE(SameBits(parse("5e-324 s", Dim::Time), smallest_subnormal));
    EXPECT_TRUE(SameBits(parse("1.7976931348623157e308 B", Dim::Bytes), max));
}

// Random values of many magnitudes, including short decimals like the ones people write, must
// print as text that parses back to the same bits, in every dimension.
TEST(Units, FormatRoundTripsRandomValues) {
    constexpr int kValuesPerDim = 100'000;
    std::mt19937_64 random(20240611);
    std::uniform_real_distribution<double> decimal_exponent(-12.0, 18.0);
    std::uniform_int_distribution<int> generator_kind(0, 3);
    std::uniform_int_distribution<int64_t> short_mantissa(1, 99'999);
    std::uniform_int_distribution<int> short_exponent(-17, 14);
    std::uniform_int_distribution<uint64_t> below_2_to_53(0, uint64_t{1} << 53);
    std::uniform_int_distribution<int> power_of_1024(1, 5);

    for (const Dim dim : kAllDims) {
        int failures = 0;
        for (int i = 0; i < kValuesPerDim; ++i) {
            double value = 0;
            switch (generator_kind(random)) {
            case 0:  // full 53-bit mantissa, log-uniform over 1e-12 .. 1e18
                value = std::pow(10.0, decimal_exponent(random));
                break;
            case 1: {  // short decimal such as 3.35e12
                const std::string text = std::to_string(short_mantissa(random)) + "e" +
                                         std::to_string(short_exponent(random));
                std::from_chars(text.data(), text.data() + text.size(), value);
                break;
            }
            case 2:  // an integer, any size up to 2^53
                value = static_cast<double>(below_2_to_53(random));
                break;
            case 3:  // a short multiple of a power of 1024, like 80 GiB
                value = static_cast<double>(short_mantissa(random)) *
                        std::ldexp(1.0, 10 * power_of_1024(random));
                break;
            }
            if (dim == Dim::Bytes) value = std::floor(value);  // sizes are whole bytes

            const std::string text = format(value, dim);
            const std::string base_text = format_base(value, dim);
            const bool ok = std::bit_cast<uint64_t>(parse(text, dim)) ==
                                std::bit_cast<uint64_t>(value) &&
                            std::bit_cast<uint64_t>(parse(base_text, dim)) ==
                                std::bit_cast<uint64_t>(value) &&
                            base_text == shortest(value) + (dim == Dim::Count ? "" : " ") +
                                             std::string(base_unit(dim)) &&
                            // A unit other than the base one is only used for numbers >= 1.
                            (text[0] != '0' || text == base_text);
            if (!ok && ++failures <= 10) {
                ADD_FAILURE() << dim_name(dim) << ": " << shortest(value) << " -> '" << text
                              << "', '" << base_text << "'";
            }
        }
        EXPECT_EQ(failures, 0) << dim_name(dim);
    }
}

// Every error quotes the text and names the dimension and the accepted units.
TEST(Units, Errors) {
    struct Case {
        std::string_view text;
        Dim dim;
        std::string_view problem;
    };
    const Case cases[] = {
        {"64", Dim::Bytes, "needs a unit (bytes: "},
        {"1.2", Dim::Time, "needs a unit (time: "},
        {"3.35", Dim::Bandwidth, "needs a unit (bandwidth: "},
        {"989", Dim::FlopRate, "needs a unit (FLOP rate: "},
        {"1.98", Dim::Frequency, "needs a unit (frequency: "},
        {"64 GB/s", Dim::Bytes, "is not a size in bytes"},
        {"64 GiB", Dim::Bandwidth, "is not a bandwidth"},
        {"1 Hz", Dim::Time, "is not a time"},
        {"1 GHz", Dim::FlopRate, "is not a FLOP rate"},
        {"5 GB", Dim::Count, "is not a count"},
        {"1 ns", Dim::Frequency, "is not a frequency"},
        {"-3 GB", Dim::Bytes, "is negative, but a size in bytes must be >= 0"},
        {"-1 s", Dim::Time, "is negative"},
        {"-0", Dim::Count, "is negative"},
        {"-2.26M", Dim::Count, "is negative"},
        {"0.3 B", Dim::Bytes, "is not a whole number of bytes"},
        {"1.0000001 KB", Dim::Bytes, "is not a whole number of bytes"},
        {"1.00000000000000000001 KB", Dim::Bytes, "is not a whole number of bytes"},
        {"0.5 KiB/s", Dim::Bandwidth, ""},  // fractions are fine outside Bytes: no error
        {"12 GiBs", Dim::Bytes, "is not a size in bytes"},
        {"GiB", Dim::Bytes, "does not start with a number"},
        {"1e", Dim::Bytes, "is not a size in bytes"},
        {"1e", Dim::Count, "is not a count"},
        {"1e+ GB", Dim::Bytes, "is not a size in bytes"},
        {"--3", Dim::Count, "does not start with a number"},
        {"+3", Dim::Count, "does not start with a number"},
        {"", Dim::Bytes, "the text is empty"},
        {"   ", Dim::Time, "the text is empty"},
        {"nan", Dim::Count, "does not start with a number"},
        {"inf s", Dim::Time, "does not start with a number"},
        {"1.2.3 GB", Dim::Bytes, "is not a size in bytes"},
        {"64 gib", Dim::Bytes, "is not a size in bytes"},
        {"1 kb", Dim::Bytes, "is not a size in bytes"},
        {"1 KHz", Dim::Frequency, "is not a frequency"},
        {"1 k", Dim::Count, "is not a count"},
        {"1 mb/s", Dim::Bandwidth, "is not a bandwidth"},
        {"1 Mb/s", Dim::Bandwidth, "is not a bandwidth"},
        {"1 PB/s", Dim::Bandwidth, "is not a bandwidth"},
        {"1 KFLOP/s", Dim::FlopRate, "is not a FLOP rate"},
        {"1e400 s", Dim::Time, "too large for a double"},
        {"2e308 B", Dim::Bytes, "too large for a double"},
        {"1e-400 s", Dim::Time, "too small for a double"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(std::string("'").append(c.text).append("' as ").append(dim_name(c.dim)));
        if (c.problem.empty()) {
            EXPECT_NO_THROW(parse(c.text, c.dim));
            continue;
        }
        try {
            parse(c.text, c.dim);
            ADD_FAILURE() << "no error";
        } catch (const UnitError& error) {
            const std::string message = error.what();
            EXPECT_EQ(message.rfind("'" + std::string(c.text) + "' ", 0), 0u) << message;
            EXPECT_NE(message.find(c.problem), std::string::npos) << message;
            EXPECT_NE(message.find(joined_units(c.dim)), std::string::npos) << message;
        }
    }
}

TEST(Units, ErrorMessagesReadWell) {
    const auto message_of = [](std::string_view text, Dim dim) -> std::string {
        try {
            parse(text, dim);
        } catch (const UnitError& error) {
            return error.what();
        }
        return "no error";
    };
    EXPECT_EQ(message_of("64 GB/s", Dim::Bytes),
              "'64 GB/s' is not a size in bytes; accepted units: B, KB, MB, GB, TB, PB, KiB, "
              "MiB, GiB, TiB, PiB");
    EXPECT_EQ(message_of("64", Dim::Bytes),
              "'64' needs a unit (bytes: B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)");
    EXPECT_EQ(message_of("5 GB", Dim::Count),
              "'5 GB' is not a count; accepted units: none (a bare number), K, M, B, T");
}

TEST(Units, FormatRejectsWhatParseCannotReturn) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double infinity = std::numeric_limits<double>::infinity();
    for (const Dim dim : kAllDims) {
        for (const double bad : {nan, infinity, -infinity, -1.0, -1e-300}) {
            EXPECT_THROW(format(bad, dim), UnitError) << shortest(bad);
            EXPECT_THROW(format_base(bad, dim), UnitError) << shortest(bad);
        }
    }
    EXPECT_THROW(format(0.5, Dim::Bytes), UnitError);
    EXPECT_THROW(format_base(1e15 + 0.5, Dim::Bytes), UnitError);
    EXPECT_EQ(format(0.5, Dim::Count), "0.5");
}

}  // namespace
}  // namespace engramsim::units

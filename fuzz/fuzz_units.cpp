// units::parse on every dimension; what parses must format and parse back to the same bits.
#include <cmath>
#include <cstring>

#include "fuzz/fuzz_util.h"
#include "model/units.h"

using namespace engramsim;
using units::Dim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 256) return 0;  // quantities are short; longer text only slows the search
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (Dim dim : {Dim::Bytes, Dim::Bandwidth, Dim::Time, Dim::FlopRate, Dim::Count, Dim::Frequency}) {
        double v;
        try {
            v = units::parse(text, dim);
        } catch (const units::UnitError&) {
            continue;
        }
        const std::string where = "'" + std::string(text) + "' as " + std::string(units::dim_name(dim));
        FUZZ_CHECK(std::isfinite(v) && v >= 0, where);
        if (dim == Dim::Bytes) FUZZ_CHECK(v == std::floor(v), where + " is not whole bytes");
        for (const std::string& printed : {units::format(v, dim), units::format_base(v, dim)}) {
            double back = -1;
            try {
                back = units::parse(printed, dim);
            } catch (const units::UnitError& e) {
                fuzz::fail(where + " printed as '" + printed + "' does not parse: " + e.what());
            }
            FUZZ_CHECK(std::memcmp(&back, &v, sizeof v) == 0,
                       where + " printed as '" + printed + "' parses to another double");
        }
    }
    // Formatting arbitrary doubles: either a UnitError (negative, non-finite, fractional bytes)
    // or text that parses back exactly.
    if (size >= 9) {
        double v;
        std::memcpy(&v, data + 1, sizeof v);
        const Dim dim = Dim(data[0] % 6);
        std::string printed;
        try {
            printed = units::format(v, dim);
        } catch (const units::UnitError&) {
            return 0;
        }
        double back = -1;
        try {
            back = units::parse(printed, dim);
        } catch (const units::UnitError& e) {
            fuzz::fail("format(" + std::to_string(v) + ") = '" + printed + "' does not parse: " + e.what());
        }
        const double want = v == 0 ? 0.0 : v;  // -0 prints as "0"
        FUZZ_CHECK(std::memcmp(&back, &want, sizeof v) == 0,
                   "format -> '" + printed + "' parses to another double");
    }
    return 0;
}

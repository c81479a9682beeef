// Order statistics shared by the profiler and the validation reports.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace engramsim {

// The q-quantile of an ascending `sorted`, by linear interpolation between order statistics
// (NumPy's default percentile); 0 for no samples.
inline double percentile_sorted(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const double pos = q * double(sorted.size() - 1);
    const size_t lo = size_t(std::floor(pos));
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

// The median of `v` (any order).
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return percentile_sorted(v, 0.5);
}

}  // namespace engramsim

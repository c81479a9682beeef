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

// The q-quantile of `v` (any order) by nearest rank: the ceil(q n)-th smallest; 0 for no samples.
// The serving metrics' p50 / p99 (TTFT, TPOT), simulated and executed alike.
inline double nearest_rank_quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t i = size_t(std::ceil(q * double(v.size())));
    return v[std::min(v.size() - 1, i ? i - 1 : 0)];
}

// The arithmetic mean, summed in order; 0 for no samples.
inline double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
}

// The median of `v` (any order).
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return percentile_sorted(v, 0.5);
}

// Kendall's tau-b of two series of equal length: (concordant - discordant) pairs over the
// square root of the pairs untied in x times those untied in y; 1 the same order, -1 reversed,
// 0 for fewer than two untied pairs. O(n^2): for the tens of configs of a validation.
inline double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
    double concordant = 0, discordant = 0, tied_x = 0, tied_y = 0;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
        for (size_t j = i + 1; j < x.size() && j < y.size(); ++j) {
            const double dx = x[i] - x[j], dy = y[i] - y[j];
            if (dx == 0 && dy == 0) continue;
            if (dx == 0)
                ++tied_x;
            else if (dy == 0)
                ++tied_y;
            else if ((dx > 0) == (dy > 0))
                ++concordant;
            else
                ++discordant;
        }
    const double n = concordant + discordant;
    const double denom = std::sqrt((n + tied_x) * (n + tied_y));
    return denom > 0 ? (concordant - discordant) / denom : 0;
}

}  // namespace engramsim

// model/statistics.h against closed forms and a published example.
#include <gtest/gtest.h>

#include <vector>

#include "model/statistics.h"

using engramsim::kendall_tau_b;

TEST(Statistics, KendallTauOfOrdersWithoutTiesIsOneLessFourInversionsOverPairs) {
    EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4, 5}, {10, 20, 30, 40, 50}), 1.0);
    EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4, 5}, {5, 4, 3, 2, 1}), -1.0);
    // One swapped neighbour among 4: tau = 1 - 4 * 1 / (4 * 3).
    EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4}, {1, 3, 2, 4}), 1.0 - 4.0 / 12.0);
}

TEST(Statistics, KendallTauBWithTiesMatchesSciPysExample) {
    // scipy.stats.kendalltau's documented example (tau-b): -0.47140452079103173, that is
    // (2 - 6) / sqrt(9 * 8): 2 concordant, 6 discordant, one pair tied in x only, one in both.
    EXPECT_NEAR(kendall_tau_b({12, 2, 1, 12, 2}, {1, 4, 7, 1, 0}), -0.47140452079103173, 1e-15);
}

TEST(Statistics, KendallTauWithoutAnOrderIsZero) {
    EXPECT_EQ(kendall_tau_b({}, {}), 0.0);
    EXPECT_EQ(kendall_tau_b({1}, {2}), 0.0);
    EXPECT_EQ(kendall_tau_b({3, 3, 3}, {1, 2, 3}), 0.0);
}

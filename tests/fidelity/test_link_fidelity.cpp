// SimGrid links, configured by sim::exact_network_options(), against closed forms. SimGrid
// allows one engine per process, so each scenario runs in a forked child that reports its
// completion times through a pipe.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include "sim/timing/link_probe.h"

using engramsim::sim::LinkSpec;
using engramsim::sim::simulate_link;
using engramsim::sim::Transfer;

namespace {

std::vector<double> in_child(const LinkSpec& link, const std::vector<Transfer>& transfers) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        auto done = simulate_link(link, transfers);
        ssize_t n = write(fds[1], done.data(), done.size() * sizeof(double));
        _exit(n == ssize_t(done.size() * sizeof(double)) ? 0 : 1);
    }
    close(fds[1]);
    std::vector<double> done(transfers.size());
    size_t got = 0;
    auto* p = reinterpret_cast<char*>(done.data());
    while (got < done.size() * sizeof(double)) {
        ssize_t n = read(fds[0], p + got, done.size() * sizeof(double) - got);
        if (n <= 0) break;
        got += size_t(n);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(got, done.size() * sizeof(double));
    return done;
}

}  // namespace

// One transfer on an idle link ends at latency + bytes / bandwidth. PCIe Gen5 x16 numbers.
TEST(LinkFidelity, IdleLinkDeliversAtLatencyPlusSizeOverBandwidth) {
    const LinkSpec pcie{.bandwidth_bytes_per_s = 63.015e9, .latency_s = 1.5e-6};
    const uint64_t bytes = 2560ull * 1024;  // one token's 16 rows x 80 values x 2 B, x 1024
    auto done = in_child(pcie, {{0.0, bytes}});
    ASSERT_EQ(done.size(), 1u);
    EXPECT_DOUBLE_EQ(done[0], 1.5e-6 + double(bytes) / 63.015e9);
}

// Two transfers that start together share the link equally and end together at
// latency + 2N / bandwidth; a later one on the idle link again costs latency + N / bandwidth.
TEST(LinkFidelity, TwoFlowsShareTheBandwidth) {
    const LinkSpec link{.bandwidth_bytes_per_s = 1e9, .latency_s = 1e-6};
    auto done = in_child(link, {{0.0, 1'000'000}, {0.0, 1'000'000}, {1.0, 500'000}});
    ASSERT_EQ(done.size(), 3u);
    EXPECT_DOUBLE_EQ(done[0], 1e-6 + 2e6 / 1e9);
    EXPECT_DOUBLE_EQ(done[1], 1e-6 + 2e6 / 1e9);
    EXPECT_DOUBLE_EQ(done[2], 1.0 + 1e-6 + 5e5 / 1e9);
}

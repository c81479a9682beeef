// The commit results name as their producer is the checkout's HEAD at build time, not the
// commit of the last CMake configure (cmake/EngramSimGitCommit.cmake runs at every build).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "build_info/build_info.h"

TEST(BuildInfo, TheCommitIsTheCheckoutsHead) {
    const std::string cmd =
        std::string("git -C '") + ENGRAMSIM_SOURCE_DIR + "' rev-parse --short=12 HEAD 2>/dev/null";
    std::string head;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[128];
        while (fgets(buf, sizeof buf, p)) head += buf;
        pclose(p);
    }
    while (!head.empty() && (head.back() == '\n' || head.back() == '\r')) head.pop_back();
    const std::string commit = engramsim::build::git_commit();
    if (head.empty()) {
        EXPECT_EQ(commit, "unknown");  // not a git checkout
        return;
    }
    // "-dirty" marks a build from a tree whose tracked files differed from HEAD.
    EXPECT_TRUE(commit == head || commit == head + "-dirty") << commit << " vs HEAD " << head;
    EXPECT_STREQ(engramsim::build::version(), ENGRAMSIM_PROJECT_VERSION);
}

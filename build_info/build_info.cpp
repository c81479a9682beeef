#include "build_info/build_info.h"

#include "engramsim_git_commit.h"  // generated at build time (cmake/EngramSimGitCommit.cmake)

namespace engramsim::build {

const char* version() { return ENGRAMSIM_VERSION; }
const char* git_commit() { return ENGRAMSIM_GIT_COMMIT; }

}  // namespace engramsim::build

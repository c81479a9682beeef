// What this build is, for provenance in result files: the version and the git commit it was
// built from (read at build time, "-dirty" when tracked files differed from the commit).
#pragma once

namespace engramsim::build {

const char* version();     // "0.1.0"
const char* git_commit();  // "1a3a8322e81f", "1a3a8322e81f-dirty" or "unknown"

}  // namespace engramsim::build

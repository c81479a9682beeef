// Running a simulation in a forked child: SimGrid allows one engine per process, so every
// simulation of a process after the first runs in a child, which sends its result back as bytes.
#pragma once

#include <functional>
#include <string>

namespace engramsim::sim {

// Runs `child` in a forked child process and returns the bytes it returned. An exception in the
// child comes back as std::runtime_error("<what> failed: <its message>"); a child that dies
// otherwise as "<what> process failed (status N)".
std::string run_in_child(const std::function<std::string()>& child, const std::string& what);

}  // namespace engramsim::sim

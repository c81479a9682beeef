// The files a command writes: result files into its -o folder, and PNG figures of its results
// (the JSON is written into the folder, then the command's plot script, embedded in the binary
// and left beside the figures to edit and rerun, reads it by key).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <string>

namespace engramsim::cli {

// Writes DIR/name (DIR created) with `fill`, whole: into DIR/name.part, then renamed over, so a
// reader never sees it half written; throws naming the path when the write fails.
void write_output(const std::string& dir, const std::string& name,
                  const std::function<void(std::ostream&)>& fill);

// Writes `data` to DIR/json_name and runs the embedded `script` (an embedded file name such as
// "traces/plot_trace_stats.py") on it with Debian's python3 + matplotlib; throws when it fails.
void write_and_plot(const nlohmann::json& data, const std::string& dir,
                    const std::string& json_name, const std::string& script);

}  // namespace engramsim::cli

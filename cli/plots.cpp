#include "cli/plots.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "model/embedded.h"

namespace engramsim::cli {

void write_output(const std::string& dir, const std::string& name,
                  const std::function<void(std::ostream&)>& fill) {
    std::filesystem::create_directories(dir);
    // Written beside, then renamed over: a file rewritten as a run goes on (validate serving's
    // rounds) is always whole, the last complete one, whenever the run stops.
    const std::string path = dir + "/" + name, part = path + ".part";
    {
        std::ofstream f(part);
        fill(f);
        if (!f.flush()) throw std::runtime_error(path + ": write failed");
    }
    std::error_code ec;
    std::filesystem::rename(part, path, ec);
    if (ec) throw std::runtime_error(path + ": write failed: " + ec.message());
}

void write_and_plot(const nlohmann::json& data, const std::string& dir,
                    const std::string& json_name, const std::string& script) {
    std::filesystem::create_directories(dir);
    const std::string json_path = dir + "/" + json_name;
    if (!(std::ofstream(json_path) << data.dump(1) << '\n'))
        throw std::runtime_error(json_path + ": cannot write");
    const std::string script_path =
        dir + "/" + std::filesystem::path(script).filename().string();
    std::ofstream(script_path) << *embedded::find(script);
    const std::string cmd = "/usr/bin/python3 '" + script_path + "' '" + json_path + "' '" + dir +
                            "'";
    if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error("plotting failed (needs python3-matplotlib): " + cmd);
}

}  // namespace engramsim::cli

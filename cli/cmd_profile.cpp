// engramsim profile: time the Engram and MoE kernels at several shapes and write one JSON profile
// per kernel (kernels/profiler/profile.h) with its provenance. On a GPU build with a device, the
// CUDA kernels (CUPTI kernel times, NVTX ranges); otherwise the CPU reference kernels, and it says
// so.
#include <algorithm>
#include <cctype>
#include <iostream>

#include "cli/commands.h"
#include "kernels/profiler/cpu_profiler.h"
#include "kernels/profiler/work.h"

#if defined(ENGRAMSIM_HAVE_CUDA)
#include "kernels/profiler/cuda_profiler.h"
#endif

namespace engramsim::cli {

namespace {

struct ProfileCliOptions {
    std::vector<std::string> kernels;
    std::string out_dir;  // default profiles/<device>/
    int samples = 30;
    bool cpu = false;
};

// "NVIDIA H200" -> "nvidia-h200": folder names under profiles/.
std::string slug(const std::string& name) {
    std::string s;
    for (char c : name) {
        if (std::isalnum(static_cast<unsigned char>(c)))
            s += char(std::tolower(static_cast<unsigned char>(c)));
        else if (!s.empty() && s.back() != '-')
            s += '-';
    }
    while (!s.empty() && s.back() == '-') s.pop_back();
    return s.empty() ? "unknown" : s;
}

void run_profile(const ProfileCliOptions& opt) {
    profiler::ProfileOptions po{.kernels = opt.kernels, .samples = opt.samples};
    profiler::validate(po);
    std::vector<profiler::KernelProfile> profiles;
    bool on_gpu = false;
#if defined(ENGRAMSIM_HAVE_CUDA)
    std::string why;
    if (!opt.cpu && profiler::cuda_available(&why)) {
        on_gpu = true;
        profiles = profiler::profile_cuda(po, std::cerr);
    } else if (!opt.cpu) {
        std::cerr << "engramsim profile: no GPU (" << why
                  << "); profiling the CPU reference kernels instead\n";
    }
#else
    if (!opt.cpu)
        std::cerr << "engramsim profile: built without CUDA; profiling the CPU reference kernels\n";
#endif
    if (!on_gpu) profiles = profiler::profile_cpu(po, std::cerr);
    if (profiles.empty()) throw std::runtime_error("profile: nothing was measured");
    const auto& pv = profiles.front().provenance;
    const std::string dir =
        opt.out_dir.empty() ? "profiles/" + (on_gpu ? slug(pv.device_name) : "cpu-" + slug(pv.host))
                            : opt.out_dir;
    for (const auto& p : profiles) std::cout << profiler::write_profile(p, dir) << '\n';
    std::cerr << "engramsim profile: " << profiles.size() << " profiles of " << pv.device_name
              << " (" << pv.timing << ") in " << dir << '\n';
    for (const auto& n : pv.notes) std::cerr << "  note: " << n << '\n';
}

}  // namespace

void add_profile_command(CLI::App& app) {
    auto opt = std::make_shared<ProfileCliOptions>();
    auto* cmd = app.add_subcommand(
        "profile",
        "Time the Engram and MoE kernels at several shapes; write one JSON profile per kernel\n"
        "with provenance (device, clocks, driver and CUDA versions, commit, date). Uses the GPU\n"
        "when there is one (CUPTI kernel times, L2 flushed between samples), else the CPU\n"
        "reference kernels.");
    std::string known;
    for (const auto& n : profiler::kernel_names()) known += (known.empty() ? "" : ", ") + n;
    cmd->add_option("--kernels", opt->kernels, "Kernels to profile (default all): " + known)
        ->delimiter(',');
    cmd->add_option("-o,--out", opt->out_dir,
                    "Output folder (default profiles/<gpu>/, or profiles/cpu-<host>/)");
    cmd->add_option("--samples", opt->samples, "Timed calls per shape (median and spread)")
        ->check(CLI::Range(1, 100000));
    cmd->add_flag("--cpu", opt->cpu, "Profile the CPU reference kernels even if a GPU is present");
    cmd->callback([opt] { run_profile(*opt); });
}

}  // namespace engramsim::cli

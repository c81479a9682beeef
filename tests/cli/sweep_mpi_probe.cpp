// A sweep run by MPI ranks with a stand-in evaluator, for test_sweep_mpi: run under mpirun, it
// sweeps one axis of 6 values into argv[1]; the process of point 3 kills itself (SIGKILL), the
// others return their index. Rank 0 prints the records (JSON array) on stdout.
#include <signal.h>

#include <iostream>

#include "model/config.h"
#include "sim/sweep/mpi_world.h"
#include "sim/timing/plan.h"
#include "sim/sweep/sweep.h"

int main(int argc, char** argv) {
    using nlohmann::json;
    namespace sim = engramsim::sim;
    try {
        sim::mpi::init(&argc, &argv);
        if (argc != 2) throw std::runtime_error("usage: sweep_mpi_probe DIR");
        sim::SweepSpec spec;
        spec.name = "probe";
        spec.base = sim::load_run_config("dense-4b");
        spec.axes.push_back(sim::parse_axis("sim.gather_threads=1,2,3,4,5,6"));
        sim::SweepOptions opt;
        opt.dir = argv[1];
        opt.producer = "sweep_mpi_probe";
        const auto records = sim::run_sweep(spec, opt, [](const json& cfg) {
            const int threads = cfg["sim"]["gather_threads"].get<int>();
            if (threads == 4) raise(SIGKILL);
            return json{{"summary", {{"throughput_tok_per_s", 1000.0 * threads}}}};
        });
        if (sim::mpi::rank() == 0) std::cout << json(records).dump() << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "sweep_mpi_probe: " << e.what() << std::endl;
        sim::mpi::abort_world(1);
        return 1;
    }
    return 0;
}

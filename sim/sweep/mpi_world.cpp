// MPI world (sim/sweep/mpi_world.h): Open MPI or any MPI-3 library through its C API, when the build
// found one (ENGRAMSIM_HAVE_MPI); otherwise a single process that refuses a multi-rank start.
#include "sim/sweep/mpi_world.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <stdexcept>

#if ENGRAMSIM_HAVE_MPI
#include <dlfcn.h>
#include <mpi.h>
#endif

namespace engramsim::sim::mpi {

namespace {

int g_rank = 0, g_size = 1;

int env_int(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : 0;
}

}  // namespace

int launcher_world_size() {
    // Open MPI's mpirun, then the PMI that MPICH's and Intel MPI's Hydra and Slurm's srun set.
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const int n = env_int(name); n > 0) return n;
    return 0;
}

bool built_with_mpi() { return ENGRAMSIM_HAVE_MPI != 0; }

#if ENGRAMSIM_HAVE_MPI

void init(int* argc, char*** argv) {
    if (launcher_world_size() < 2) return;
    // libsimgrid defines MPI_Init too (SMPI); the link order picks the real MPI. Refuse to go on
    // if a relink ever changes that, since SMPI would abort outside smpirun.
    Dl_info where{};
    if (dladdr(reinterpret_cast<void*>(&MPI_Init), &where) && where.dli_fname &&
        std::string(where.dli_fname).find("simgrid") != std::string::npos)
        throw std::runtime_error(std::string("MPI_Init resolves to ") + where.dli_fname +
                                 " (SimGrid's SMPI), not to the MPI library: link libmpi before "
                                 "libsimgrid (cli/CMakeLists.txt)");
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    // Finalised at exit, also after std::exit with a failed point's status.
    std::atexit([] {
        int done = 0;
        MPI_Finalized(&done);
        if (!done) MPI_Finalize();
    });
}

std::string processor_name() {
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (g_size > 1 && MPI_Get_processor_name(name, &len) == MPI_SUCCESS) return std::string(name, len);
    return "localhost";
}

void send(int dest, int tag, const std::string& bytes) {
    if (bytes.size() > size_t(INT32_MAX)) throw std::length_error("mpi: message over 2 GiB");
    MPI_Send(bytes.data(), int(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

std::string receive(int source, int* from, int* tag) {
    // Polls with a short sleep instead of MPI_Probe, which spins a core at 100% in Open MPI:
    // rank 0 waits for records most of the time and shares its machine with worker ranks.
    MPI_Status st;
    for (int ready = 0;;) {
        MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, MPI_ANY_TAG, MPI_COMM_WORLD, &ready, &st);
        if (ready) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    std::string bytes(size_t(count), '\0');
    MPI_Recv(bytes.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    if (from) *from = st.MPI_SOURCE;
    if (tag) *tag = st.MPI_TAG;
    return bytes;
}

void abort_world(int code) {
    if (g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

#else

void init(int*, char***) {
    if (const int n = launcher_world_size(); n > 1)
        throw std::runtime_error(
            "started by an MPI launcher with " + std::to_string(n) +
            " ranks, but this engramsim was built without MPI, so every rank would run the whole "
            "command: install libopenmpi-dev (scripts/install-deps.sh) and rebuild, or run it "
            "without mpirun");
}

std::string processor_name() { return "localhost"; }

void send(int, int, const std::string&) { throw std::logic_error("mpi: built without MPI"); }

std::string receive(int, int*, int*) { throw std::logic_error("mpi: built without MPI"); }

void abort_world(int) {}

#endif

int rank() { return g_rank; }
int size() { return g_size; }

}  // namespace engramsim::sim::mpi

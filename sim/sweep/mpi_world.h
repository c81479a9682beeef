// The MPI world of a process that an MPI launcher (mpirun, mpiexec, srun) started with several
// ranks. Only sweeps use it: their points are spread over the ranks (sim/sweep/sweep.h). MPI is
// initialised only under a launcher, so a plain `engramsim` never touches it, and a build
// without MPI (no libopenmpi-dev) runs everything in one process and refuses a multi-rank start
// by name instead of running the same sweep N times.
#pragma once

#include <string>

namespace engramsim::sim::mpi {

// The world size a launcher's environment names (Open MPI; PMI: MPICH / Intel MPI, srun), or 0 when
// no launcher started this process.
int launcher_world_size();

// Was this build compiled with MPI?
bool built_with_mpi();

// Initialises MPI when a launcher started this process with two or more ranks (finalised at
// exit); otherwise does nothing. Throws when there are several ranks and this build has no MPI.
void init(int* argc, char*** argv);

int rank();  // 0 outside a multi-rank world
int size();  // 1 outside a multi-rank world
std::string processor_name();  // this rank's host, for messages

// Point-to-point messages of bytes (rank 0 to a worker and back).
void send(int dest, int tag, const std::string& bytes);
// Waits for the next message from `source` (-1: any rank) with any tag.
std::string receive(int source, int* from, int* tag);

// Ends every rank of the world (after an error on one of them); returns only without a world.
void abort_world(int code);

}  // namespace engramsim::sim::mpi

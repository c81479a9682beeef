// Sweeps across MPI ranks (`mpirun -n N engramsim sweep ...`): the same bytes as one process,
// a killed job resumes, a point whose process dies is reported and left for a resume, ranks
// that disagree are refused, and commands that are not sweeps refuse to run N times. Skipped,
// with the reason, in a build without MPI or where mpirun is missing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/cli_runner.h"

namespace {

using nlohmann::json;
using engramsim::test::CliResult;
namespace fs = std::filesystem;

// Open MPI refuses root (CI runs as root) and oversubscription (CI has 2 cores) unless told.
std::string mpirun(int ranks) {
    return std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") +
           ENGRAMSIM_MPIEXEC + " --oversubscribe -n " + std::to_string(ranks) + " ";
}

std::string tmp(const std::string& tag) { return engramsim::test::temp_path("sweepmpi", tag); }

std::string slurp(const std::string& path) { return engramsim::test::read_file(path); }

std::string small_config() {
    const std::string path = tmp("config") + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16}})";
    return path;
}

const char* kAxes = " --axis sim.schedule=none,layer-ahead:0 --axis sim.gather_threads=1,16";

class SweepMpi : public ::testing::Test {
protected:
    void SetUp() override {
        if (!ENGRAMSIM_HAVE_MPI)
            GTEST_SKIP() << "this build has no MPI (install libopenmpi-dev and reconfigure)";
        if (access(ENGRAMSIM_MPIEXEC, X_OK) != 0)
            GTEST_SKIP() << "no MPI launcher at " << ENGRAMSIM_MPIEXEC;
    }
};

std::string binary() { return ENGRAMSIM_BINARY; }

}  // namespace

TEST_F(SweepMpi, RanksWriteTheBytesOfOneProcess) {
    const std::string cfg = small_config(), one = tmp("one"), many = tmp("many");
    CliResult a = engramsim::test::run_engramsim("sweep " + cfg + kAxes + " -o " + one);
    ASSERT_EQ(a.status, 0) << a.err;
    CliResult b = engramsim::test::run_command(mpirun(3) + binary() + " sweep " + cfg + kAxes +
                                               " -o " + many);
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_NE(b.err.find("on 2 MPI worker ranks"), std::string::npos) << b.err;
    EXPECT_NE(b.err.find("[4/4] "), std::string::npos) << b.err;
    EXPECT_EQ(b.out, a.out);  // one table, printed by rank 0 only
    for (const char* f : {"/results.json", "/results.csv", "/spec.json"})
        EXPECT_EQ(slurp(many + f), slurp(one + f)) << f;
    for (const auto& e : fs::directory_iterator(one + "/points"))
        EXPECT_EQ(slurp(many + "/points/" + e.path().filename().string()), slurp(e.path().string()))
            << e.path().filename();
}

TEST_F(SweepMpi, AKilledJobResumesToTheSameBytes) {
    const std::string cfg = small_config(), clean = tmp("clean"), dir = tmp("killed");
    ASSERT_EQ(engramsim::test::run_engramsim("sweep " + cfg + kAxes + " -o " + clean).status, 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        const std::string cmd =
            mpirun(2) + binary() + " sweep " + cfg + kAxes + " -o " + dir + " >/dev/null 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    for (int i = 0; i < 6000 && !fs::exists(dir + "/points/00000.json"); ++i) usleep(10000);
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(fs::exists(dir + "/points/00000.json"));
    for (const auto& e : fs::directory_iterator(dir + "/points")) {
        if (e.path().extension() != ".json") continue;
        EXPECT_TRUE(json::accept(slurp(e.path().string()))) << e.path();
    }
    CliResult r = engramsim::test::run_command(mpirun(3) + binary() + " sweep " + cfg + kAxes +
                                               " -o " + dir + " --resume");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err.find("[1/4]"), std::string::npos) << r.err;  // point 0 was not run again
    EXPECT_EQ(slurp(dir + "/results.json"), slurp(clean + "/results.json"));
    EXPECT_EQ(slurp(dir + "/results.csv"), slurp(clean + "/results.csv"));
}

TEST_F(SweepMpi, APointWhoseProcessDiesIsReportedAndLeftForAResume) {
    const std::string dir = tmp("probe");
    CliResult r = engramsim::test::run_command(mpirun(3) + ENGRAMSIM_SWEEP_MPI_PROBE + " " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    const json records = json::parse(r.out);
    ASSERT_EQ(records.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(records[i]["index"], i);
        if (i == 3) {
            const std::string err = records[i].value("error", "");
            EXPECT_NE(err.find("its worker on rank "), std::string::npos) << err;
            EXPECT_NE(err.find("was killed by signal 9"), std::string::npos) << err;
            EXPECT_FALSE(fs::exists(dir + "/points/00003.json"));
        } else {
            EXPECT_EQ(records[i]["summary"]["throughput_tok_per_s"], 1000.0 * double(i + 1));
            EXPECT_EQ(json::parse(slurp(dir + "/points/0000" + std::to_string(i) + ".json")),
                      records[i]);
        }
    }
}

TEST_F(SweepMpi, RanksThatRunAnotherSweepAreRefused) {
    const std::string cfg = small_config(), dir = tmp("mismatch");
    // MPMD: rank 0 and rank 1 are given different axes.
    const std::string cmd = mpirun(1) + binary() + " sweep " + cfg +
                            " --axis sim.gather_threads=1,2 -o " + dir + " : -n 1 " + binary() +
                            " sweep " + cfg + " --axis sim.gather_threads=1,3 -o " + dir;
    CliResult r = engramsim::test::run_command(cmd);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("rank 1 runs another build or another sweep than rank 0"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(dir + "/points/00000.json"));
}

TEST_F(SweepMpi, OtherCommandsAndJobsAreRefused) {
    const std::string cfg = small_config();
    CliResult r = engramsim::test::run_command(mpirun(2) + binary() + " run " + cfg);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("only `engramsim sweep` and `engramsim study run NAME` spread"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    r = engramsim::test::run_command(mpirun(2) + binary() + " study run paper-table4");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("paper-table4 is not a sweep"), std::string::npos) << r.err;
    r = engramsim::test::run_command(mpirun(2) + binary() + " sweep " + cfg + kAxes + " -j 2 -o " +
                                     tmp("jobs"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("start more ranks (mpirun -n) instead of -j 2"), std::string::npos)
        << r.err;
}

// Helpers shared by the libFuzzer targets (fuzz/README.md).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace engramsim::fuzz {

// Stops the run with a message libFuzzer reports as a crash (the input is saved).
[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "FUZZ INVARIANT BROKEN: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

#define FUZZ_CHECK(cond, what)                                        \
    do {                                                              \
        if (!(cond)) ::engramsim::fuzz::fail(std::string(#cond) + ": " + (what)); \
    } while (0)

// A file under $TMPDIR (or /tmp) named for this process, holding `data`; removed on destruction
// unless ENGRAMSIM_FUZZ_KEEP is set (to keep the exact file a parser saw, for a regression test).
class TempFile {
public:
    TempFile(const uint8_t* data, size_t size, std::string_view suffix) {
        const char* dir = std::getenv("TMPDIR");
        path_ = std::string(dir && *dir ? dir : "/tmp") + "/engramsim-fuzz-" +
                std::to_string(::getpid()) + std::string(suffix);
        std::FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f) fail("cannot create " + path_ + ": " + std::strerror(errno));
        if (size && std::fwrite(data, 1, size, f) != size) fail("cannot write " + path_);
        std::fclose(f);
    }
    ~TempFile() {
        if (!std::getenv("ENGRAMSIM_FUZZ_KEEP")) std::remove(path_.c_str());
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace engramsim::fuzz

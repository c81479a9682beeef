#include "sim/placement/id_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace engramsim::placement {

IdFile::IdFile(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw std::runtime_error(path + ": is a directory, not an id file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    const bool sized = ::fstat(fd, &st) == 0;
    const int stat_errno = errno;
    const uint64_t bytes = sized ? uint64_t(st.st_size) : 0;
    void* p = MAP_FAILED;
    if (sized && bytes % 8 == 0 && bytes > 0)  // every page read in now: one call, no faults
        p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);
    if (!sized) throw std::runtime_error(path + ": cannot read its size: " + std::strerror(stat_errno));
    if (bytes % 8 != 0)
        throw std::runtime_error(path + ": " + std::to_string(bytes) +
                                 " bytes is not a whole number of uint64 ids");
    if (bytes == 0) throw std::runtime_error(path + ": holds no ids (an empty file)");
    if (p == MAP_FAILED)
        throw std::runtime_error(path + ": cannot map it: " + std::strerror(map_errno));
    ids_ = {static_cast<const uint64_t*>(p), size_t(bytes / 8)};
}

IdFile::~IdFile() {
    ::munmap(const_cast<uint64_t*>(ids_.data()), ids_.size_bytes());
}

}  // namespace engramsim::placement

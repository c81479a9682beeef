// A file of little-endian uint64 row ids (`engramsim replay --ids`, `trace export --format u64`),
// mapped read-only: the threads that remap it read the page cache's own pages, with no copy
// (read() into a buffer moved 1.8 GB/s on the 2-core VM, a third of a remapping pass).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace engramsim::placement {

class IdFile {
public:
    // Throws std::runtime_error naming the file when it cannot be opened or mapped, is a
    // directory, is empty or is not a whole number of ids. The file must not shrink while it
    // is mapped (reading a page past its new end raises SIGBUS).
    explicit IdFile(const std::string& path);
    IdFile(const IdFile&) = delete;
    IdFile& operator=(const IdFile&) = delete;
    ~IdFile();
    std::span<const uint64_t> ids() const { return ids_; }

private:
    std::span<const uint64_t> ids_;
};

}  // namespace engramsim::placement

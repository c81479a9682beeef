// Host buffers for Engram tables and gather staging: 2 MiB aligned and advised to use
// transparent huge pages. A random row gather over a table of gigabytes misses the TLB on almost
// every row with 4 KiB pages; with 2 MiB pages a 1 GiB table needs 512 TLB entries, which the
// second-level TLB holds. Falls back silently to normal pages where THP is off (the advice is a
// hint; correctness never depends on it).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace engramsim::kernels {

class HugePageBuffer {
public:
    static constexpr size_t kHugePageBytes = size_t(2) << 20;

    HugePageBuffer() = default;
    // Allocates size_bytes (rounded up to whole huge pages) and touches every page, so page
    // faults happen here and not inside a timed kernel. Throws std::bad_alloc.
    explicit HugePageBuffer(size_t size_bytes) : size_(size_bytes) {
        const size_t rounded = (size_bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
        if (rounded == 0) return;
        data_ = static_cast<uint8_t*>(std::aligned_alloc(kHugePageBytes, rounded));
        if (!data_) throw std::bad_alloc();
        madvise(data_, rounded, MADV_HUGEPAGE);
        std::memset(data_, 0, rounded);
    }
    HugePageBuffer(const HugePageBuffer&) = delete;
    HugePageBuffer& operator=(const HugePageBuffer&) = delete;
    HugePageBuffer(HugePageBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
        o.data_ = nullptr;
        o.size_ = 0;
    }
    HugePageBuffer& operator=(HugePageBuffer&& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        return *this;
    }
    ~HugePageBuffer() { std::free(data_); }

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<uint8_t> span() const { return {data_, size_}; }

private:
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace engramsim::kernels

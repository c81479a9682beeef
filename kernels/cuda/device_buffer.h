// Owning device (or pinned, mapped host) allocation for host code: tests, benchmarks and the
// profiler. Errors throw std::runtime_error naming the call. Host-only C++; needs the CUDA
// runtime headers, so only built where CUDA is enabled.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace engramsim::cuda {

inline void check_cuda(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t count) : count_(count) {
        if (count) check_cuda(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)), "cudaMalloc");
    }
    explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(std::span<const T>(host)) {}
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) {
        o.ptr_ = nullptr;
        o.count_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(ptr_, o.ptr_);
        std::swap(count_, o.count_);
        return *this;
    }
    ~DeviceBuffer() {
        if (ptr_) cudaFree(ptr_);
    }

    T* get() const { return ptr_; }
    size_t size() const { return count_; }
    size_t size_bytes() const { return count_ * sizeof(T); }

    void upload(std::span<const T> host) {
        if (host.size() != count_) throw std::invalid_argument("DeviceBuffer::upload: size");
        if (count_)
            check_cuda(cudaMemcpy(ptr_, host.data(), size_bytes(), cudaMemcpyHostToDevice),
                       "cudaMemcpy H2D");
    }
    std::vector<T> download() const {
        std::vector<T> host(count_);
        if (count_)
            check_cuda(cudaMemcpy(host.data(), ptr_, size_bytes(), cudaMemcpyDeviceToHost),
                       "cudaMemcpy D2H");
        return host;
    }

private:
    T* ptr_ = nullptr;
    size_t count_ = 0;
};

// Page-locked host memory mapped into the device's address space (UVA): kernels read it over
// PCIe / NVLink-C2C through device_ptr() without a copy.
template <typename T>
class MappedHostBuffer {
public:
    explicit MappedHostBuffer(size_t count) : count_(count) {
        check_cuda(cudaHostAlloc(reinterpret_cast<void**>(&host_), count * sizeof(T),
                                 cudaHostAllocMapped),
                   "cudaHostAlloc");
        check_cuda(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_), host_, 0),
                   "cudaHostGetDevicePointer");
    }
    MappedHostBuffer(const MappedHostBuffer&) = delete;
    MappedHostBuffer& operator=(const MappedHostBuffer&) = delete;
    ~MappedHostBuffer() { cudaFreeHost(host_); }

    T* host() const { return host_; }
    T* device_ptr() const { return device_; }
    size_t size() const { return count_; }

private:
    T* host_ = nullptr;
    T* device_ = nullptr;
    size_t count_ = 0;
};

// A large float operand filled on the device (every byte 0x3c: each float is 0.0115, finite
// and normal), for timing: the values do not matter, and generating gigabytes on the host would
// dominate the run.
inline DeviceBuffer<float> device_filled(size_t n) {
    DeviceBuffer<float> b(n);
    check_cuda(cudaMemset(b.get(), 0x3c, b.size_bytes()), "fill");
    return b;
}

}  // namespace engramsim::cuda

#include "kernels/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace engramsim::cuda {

namespace {

// The toolkit's libcublas of the major version built against, found by the loader's search path
// (the executable's RUNPATH holds the toolkit's library folder), else in that folder itself.
void* open_cublas() {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    std::string errors;
    for (const std::string& path : {name, std::string(ENGRAMSIM_CUDA_LIBRARY_DIR) + "/" + name}) {
        if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
        errors += std::string(errors.empty() ? "" : "; ") + dlerror();
    }
    throw std::runtime_error("cuBLAS: cannot load " + name + " (" + errors + ")");
}

template <class F>
void resolve(void* lib, F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
    if (!fn) throw std::runtime_error(std::string("cuBLAS: libcublas has no ") + symbol);
}

CublasApi load() {
    void* lib = open_cublas();  // kept open for the process's life
    CublasApi api;
    resolve(lib, api.create, "cublasCreate_v2");
    resolve(lib, api.set_stream, "cublasSetStream_v2");
    resolve(lib, api.set_math_mode, "cublasSetMathMode");
    resolve(lib, api.sgemm, "cublasSgemm_v2");
    resolve(lib, api.gemm_grouped_batched_ex, "cublasGemmGroupedBatchedEx");
    return api;
}

}  // namespace

const CublasApi& cublas() {
    static const CublasApi api = load();
    return api;
}

}  // namespace engramsim::cuda

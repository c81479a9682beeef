// NVTX3 ranges in the project's domain `engramsim`: every public CUDA kernel entry point and
// every profiling phase opens one, so Nsight Systems timelines show kernels by their
// EngramSim name. NVTX3 is header-only; without a tool attached a range costs a few ns.
#pragma once

#include <nvtx3/nvToolsExt.h>

namespace engramsim::cuda {

inline nvtxDomainHandle_t nvtx_domain() {
    static const nvtxDomainHandle_t domain = nvtxDomainCreateA("engramsim");
    return domain;
}

class NvtxRange {
public:
    explicit NvtxRange(const char* name) {
        nvtxEventAttributes_t a = {};
        a.version = NVTX_VERSION;
        a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
        a.messageType = NVTX_MESSAGE_TYPE_ASCII;
        a.message.ascii = name;
        nvtxDomainRangePushEx(nvtx_domain(), &a);
    }
    ~NvtxRange() { nvtxDomainRangePop(nvtx_domain()); }
    NvtxRange(const NvtxRange&) = delete;
    NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace engramsim::cuda

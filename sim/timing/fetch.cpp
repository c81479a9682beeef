#include "sim/timing/fetch.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>

namespace engramsim::sim {

double lines_per_row(double row_bytes, double line_bytes) {
    // Row starts are multiples of row_bytes; modulo the line they take every multiple of
    // g = gcd(row, line) equally often, so on average (row + line - g) / line lines.
    const auto r = uint64_t(std::llround(row_bytes)), l = uint64_t(std::llround(line_bytes));
    const double g = double(std::gcd(r, l));
    return (row_bytes + line_bytes - g) / line_bytes;
}

namespace {

// Host threads hashing a step's lookups into row ids.
double host_hash_seconds(const FetchParams& p, double lookups) {
    return lookups / (p.hash_rate_per_thread * p.hash_threads);
}

// The step's row ids (uint32 each) where the host reads the rows (cpu-gather, nvme): hashed by
// host threads, or hashed on the GPU at the step start and copied down.
void row_ids_on_host(const FetchParams& p, const FetchInput& in, FetchWork& w) {
    if (p.hash_on_gpu) {
        w.d2h_wire_bytes += p.pcie.bulk_wire_bytes(in.lookups * 4);
        w.fixed_s += p.dma_setup_s;
    } else {
        w.host_s += host_hash_seconds(p, in.lookups);
    }
}

// The same where the GPU reads the rows (uva): free when hashed on the GPU, else hashed by host
// threads and copied up.
void row_ids_on_gpu(const FetchParams& p, const FetchInput& in, FetchWork& w) {
    if (p.hash_on_gpu) return;
    w.host_s += host_hash_seconds(p, in.lookups);
    w.h2d_wire_bytes += p.pcie.bulk_wire_bytes(in.lookups * 4);
    w.fixed_s += p.dma_setup_s;
}

}  // namespace

double gather_seconds(const FetchParams& p, double rows, double row_bytes) {
    const double latency_bound =
        rows * p.row_access_latency_s / (double(p.gather_threads) * p.outstanding_per_thread);
    const double bytes = rows * (lines_per_row(row_bytes) * 64 + row_bytes);
    return p.gather_dispatch_s + std::max(latency_bound, bytes / p.dram_bytes_per_s);
}

double dedup_seconds(const FetchParams& p, double lookups) {
    return p.dedup_rate_per_thread > 0 ? lookups / (p.dedup_rate_per_thread * p.hash_threads)
                                       : 0;
}

double nvme_read_rate(const FetchParams& p) {
    const double q = p.nvme_queue_depth;
    using Q = FetchParams::NvmeQueueing;
    if (p.nvme_queueing == Q::Linear)
        return q / (p.nvme_latency_s + (q - 1) / p.nvme_iops_per_drive);
    if (p.nvme_queueing == Q::Measured) {
        const auto& c = p.nvme_iops_at_depth;
        if (c.empty()) throw std::invalid_argument("nvme_read_rate: no measured rates");
        if (q <= c.front().first) return c.front().second * q / c.front().first;
        if (q >= c.back().first) return c.back().second;
        size_t i = 1;
        while (c[i].first < q) ++i;
        // Each read's time in the queue, depth / rate, is linear in the depth between two
        // measured depths: exact for both laws above (flat below the knee, Q / IOPS above it;
        // L + (Q - 1) / IOPS) and for any mix of their pieces.
        const auto [q0, r0] = c[i - 1];
        const auto [q1, r1] = c[i];
        const double t = (q - q0) / (q1 - q0);
        return q / (q0 / r0 + t * (q1 / r1 - q0 / r0));
    }
    return std::min(p.nvme_iops_per_drive, q / p.nvme_latency_s);
}

namespace {

class CpuGather final : public FetchMechanism {
public:
    explicit CpuGather(FetchParams p) : p_(p) {}
    std::string name() const override { return "cpu-gather"; }
    FetchWork plan(const FetchInput& in) const override {
        FetchWork w;
        if (in.unique_rows <= 0) return w;
        row_ids_on_host(p_, in, w);
        w.host_s += dedup_seconds(p_, in.lookups);
        w.host_s += gather_seconds(p_, in.unique_rows, in.row_bytes);
        w.payload_bytes = in.unique_rows * in.row_bytes;
        if (p_.rows_stay_on_host) return w;
        w.h2d_wire_bytes = p_.pcie.bulk_wire_bytes(w.payload_bytes);
        w.fixed_s += p_.dma_setup_s;
        return w;
    }

private:
    FetchParams p_;
};

class Uva final : public FetchMechanism {
public:
    explicit Uva(FetchParams p) : p_(p) {}
    std::string name() const override { return "uva"; }
    FetchWork plan(const FetchInput& in) const override {
        FetchWork w;
        if (in.unique_rows <= 0) return w;
        row_ids_on_gpu(p_, in, w);
        const double reads = in.unique_rows * lines_per_row(in.row_bytes, p_.uva_read_granularity);
        const double row_wire = p_.pcie.small_wire_bytes(reads, p_.uva_read_granularity);
        w.payload_bytes = in.unique_rows * in.row_bytes;
        w.h2d_wire_bytes += row_wire;
        w.gpu_kernel = true;
        // Little's law: `outstanding` reads in flight, each a link round trip.
        const double concurrency_s = reads * p_.link_latency_s / p_.uva_outstanding_reads;
        const double link_s = row_wire / p_.link_bytes_per_s;
        w.fixed_s += p_.kernel_floor_s + std::max(0.0, concurrency_s - link_s);
        return w;
    }

private:
    FetchParams p_;
};

class Nvme final : public FetchMechanism {
public:
    explicit Nvme(FetchParams p) : p_(p) {}
    std::string name() const override { return "nvme"; }
    FetchWork plan(const FetchInput& in) const override {
        FetchWork w;
        if (in.unique_rows <= 0) return w;
        row_ids_on_host(p_, in, w);
        w.host_s += dedup_seconds(p_, in.lookups);  // one I/O per unique row
        // Rows host DRAM holds are gathered; the rest are read from the drives.
        const double dram = std::clamp(in.dram_rows, 0.0, in.unique_rows);
        const double ssd = in.unique_rows - dram;
        // The busiest drive reads ceil(rows / drives) I/Os; its link moves their bytes, and the
        // I/O rate is nvme_read_rate's.
        const double ios = std::ceil(ssd / p_.nvme_drives);
        w.nvme_bytes_per_drive = ios * p_.nvme_io_bytes;
        w.nvme_read_bytes = ssd * p_.nvme_io_bytes;
        w.nvme_io_s = ios / nvme_read_rate(p_);
        w.nvme_cpu_s = ssd * p_.nvme_cpu_per_read_s;  // the host issues every drive's reads
        if (ssd > 0) w.fixed_s += p_.nvme_fetch_dispatch_s;
        if (dram > 0) w.host_s += gather_seconds(p_, dram, in.row_bytes);
        w.payload_bytes = in.unique_rows * in.row_bytes;
        if (p_.rows_stay_on_host) return w;  // a CPU engine reads the staging itself
        w.h2d_wire_bytes = p_.pcie.bulk_wire_bytes(w.payload_bytes);
        w.fixed_s += p_.dma_setup_s;
        return w;
    }

private:
    FetchParams p_;
};

class RemoteGather final : public FetchMechanism {
public:
    explicit RemoteGather(FetchParams p) : p_(p) {}
    std::string name() const override { return "remote-gather"; }
    FetchWork plan(const FetchInput& in) const override {
        FetchWork w;
        if (in.unique_rows <= 0) return w;
        const double m = p_.memory_nodes;
        // Row ids: hashed on the GPU node (host threads, or the GPU kernel at the step start),
        // each memory node getting its shard's ids; repeats are dropped where they are gathered.
        if (!p_.hash_on_gpu) w.host_s += host_hash_seconds(p_, in.lookups);
        w.remote_ids_from_gpu = p_.hash_on_gpu;
        w.remote_ids_bytes_per_node = std::ceil(in.lookups / m * 4);  // whole bytes
        // Each memory node gathers its share with its own threads and DRAM.
        FetchParams node = p_;
        node.dram_bytes_per_s = p_.memory_node_dram_bytes_per_s;
        w.remote_gather_s = dedup_seconds(node, in.lookups / m) +
                            gather_seconds(node, in.unique_rows / m, in.row_bytes);
        w.payload_bytes = in.unique_rows * in.row_bytes;
        w.net_bytes_per_node = std::ceil(w.payload_bytes / m);
        return w;
    }

private:
    FetchParams p_;
};

using Factory = std::function<std::unique_ptr<FetchMechanism>(const FetchParams&)>;
const std::map<std::string, Factory>& registry() {
    static const std::map<std::string, Factory> r = {
        {"cpu-gather", [](const FetchParams& p) { return std::make_unique<CpuGather>(p); }},
        {"uva", [](const FetchParams& p) { return std::make_unique<Uva>(p); }},
        {"nvme", [](const FetchParams& p) { return std::make_unique<Nvme>(p); }},
        {"remote-gather", [](const FetchParams& p) { return std::make_unique<RemoteGather>(p); }},
    };
    return r;
}

}  // namespace

std::vector<std::string> fetch_mechanism_names() {
    std::vector<std::string> n;
    for (const auto& [k, v] : registry()) n.push_back(k);
    return n;
}

std::unique_ptr<FetchMechanism> make_fetch_mechanism(const std::string& name,
                                                     const FetchParams& params) {
    auto it = registry().find(name);
    if (it == registry().end()) {
        std::string known;
        for (const auto& n : fetch_mechanism_names()) known += (known.empty() ? "" : ", ") + n;
        throw std::invalid_argument("unknown fetch mechanism '" + name + "'; known: " + known);
    }
    if (!(params.link_bytes_per_s > 0) || !(params.dram_bytes_per_s > 0))
        throw std::invalid_argument("fetch mechanism: link and DRAM bandwidth must be positive");
    if (name == "nvme" && (params.nvme_drives < 1 || !(params.nvme_iops_per_drive > 0) ||
                           !(params.nvme_read_bytes_per_s > 0) || !(params.nvme_latency_s > 0)))
        throw std::invalid_argument("fetch mechanism nvme: needs at least one drive with "
                                    "positive IOPS, bandwidth and latency");
    if (name == "remote-gather" &&
        (params.memory_nodes < 1 || !(params.memory_node_dram_bytes_per_s > 0)))
        throw std::invalid_argument("fetch mechanism remote-gather: needs at least one memory "
                                    "node with positive DRAM bandwidth");
    return it->second(params);
}

}  // namespace engramsim::sim

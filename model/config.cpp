#include "model/config.h"

#include <algorithm>
#include <functional>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/capacity.h"
#include "model/presets.h"

namespace engramsim::config {

using nlohmann::json;
using units::Dim;

namespace {

// ---- Declarations -------------------------------------------------------------------------

Key integer(std::string name, json def, std::string help, std::optional<int64_t> min = {},
            std::optional<int64_t> max = {}) {
    Key k{.name = std::move(name), .type = Type::Integer, .default_value = std::move(def),
          .help = std::move(help)};
    k.min = min;
    k.max = max;
    return k;
}
Key quantity_key(std::string name, Dim dim, json def, std::string help,
                 std::optional<Range> range = {}) {
    return {.name = std::move(name), .type = Type::Quantity, .dim = dim,
            .default_value = std::move(def), .help = std::move(help),
            .range = range ? *range : default_range(dim)};
}
// The default range of `dim` with 0 itself refused: sizes, rates and scales that divide.
Range above_zero(Dim dim, std::string why) {
    Range r = default_range(dim);
    r.lo = 0;
    r.lo_open = true;
    r.why = std::move(why);
    return r;
}
Key text(std::string name, json def, std::string help) {
    return {.name = std::move(name), .type = Type::String, .default_value = std::move(def),
            .help = std::move(help)};
}
Key boolean(std::string name, bool def, std::string help) {
    return {.name = std::move(name), .type = Type::Boolean, .default_value = def,
            .help = std::move(help)};
}
Key choice(std::string name, std::vector<std::string> choices, std::string def, std::string help) {
    return {.name = std::move(name), .type = Type::Enum, .default_value = std::move(def),
            .help = std::move(help), .choices = std::move(choices)};
}
Key capacity(std::string name, std::string def, std::string help) {
    return {.name = std::move(name), .type = Type::Capacity, .default_value = std::move(def),
            .help = std::move(help)};
}
Key section(std::string name, std::string help, std::vector<Key> keys) {
    return {.name = std::move(name), .type = Type::Section, .default_value = json::object(),
            .help = std::move(help), .keys = std::move(keys)};
}

// Keys every top-level section carries: identity, inheritance and provenance.
std::vector<Key> with_common(std::vector<Key> keys) {
    std::vector<Key> all = {
        text("name", "", "Short name of this configuration."),
        text("description", "", "One line saying what it is."),
        text("base", "", "Preset to start from; the keys given here override its values."),
    };
    all.insert(all.end(), keys.begin(), keys.end());
    all.push_back({.name = "sources", .type = Type::StringMap, .default_value = json::object(),
                   .help = "Where each number comes from: key path -> citation."});
    all.push_back({.name = "assumptions", .type = Type::StringList,
                   .default_value = json::array(),
                   .help = "What was assumed where the sources are silent."});
    return all;
}

Key engram_section() {
    return section("engram", "The Engram memory (field names as in engram_demo_v1.py).",
        with_common({
            {.name = "engram_vocab_size", .type = Type::QuantityList, .dim = Dim::Count,
             .default_value = json::array({646400, 646400}),
             .help = "Base table size per head for each N-gram order 2..N (rows); each head's "
                     "table is the next unused prime above it.",
             .range = Range{.lo = 2, .hi = 4e9,
                            .why = "row ids are 32-bit: each head's table, the next prime above "
                                   "its base size, must stay below 2^32"}},
            integer("max_ngram_size", 3, "Largest N-gram order N; orders 2..N are hashed.", 2, 8),
            integer("n_embed_per_ngram", 512,
                    "Values per token per order (all heads of one order together).", 1),
            integer("n_head_per_ngram", 8, "Hash heads per order, each with its own table.", 1,
                    64),
            {.name = "layer_ids", .type = Type::IntegerList, .default_value = json::array({1, 15}),
             .help = "0-based indices of the Transformer layers that carry an Engram module."},
            integer("pad_id", 2, "Raw token id used before the sequence start (mapped through "
                                 "the compression map).", 0),
            integer("seed", 0, "Seed of the per-layer hash multipliers "
                               "(numpy.random.default_rng(seed + 10007 * layer)).", 0),
            integer("kernel_size", 4, "Short convolution kernel size (dilation = max_ngram_size).",
                    1),
            integer("hc_mult", 4, "Hyper-connection (mHC) branches; one gate per branch.", 1),
            text("compress_map", "bundled:deepseek-v3",
                 "Token compression map: a little-endian uint32 file (raw id -> canonical id) or "
                 "bundled:deepseek-v3."),
            choice("dtype", {"fp32", "bf16", "fp16", "fp8_e4m3"}, "bf16",
                   "Storage type of the table's values."),
            choice("gate", {"signed-sqrt", "plain"}, "signed-sqrt",
                   "Gate score: signed square root before the sigmoid (demo, V4.1 ports) or the "
                   "paper's plain eq. 4."),
            boolean("short_conv", true, "Apply the short causal convolution after the gate "
                                        "(V4.1-era ports drop it)."),
        }));
}

Key backbone_section() {
    return section("backbone", "The Transformer backbone.",
        with_common({
            integer("layers", json(), "Transformer blocks.", 1),
            integer("hidden_size", json(), "Model width d.", 1),
            integer("vocab_size", json(), "Embedding / LM-head rows.", 1),
            choice("dtype", {"fp32", "bf16", "fp16", "fp8_e4m3"}, "bf16",
                   "Weight and activation type."),
            section("attention", "Attention block.", {
                choice("kind", {"gqa", "mla"}, "gqa",
                       "Grouped-query attention or multi-head latent attention."),
                integer("n_heads", json(), "Query heads.", 1),
                integer("n_kv_heads", 0, "Key/value heads (GQA).", 0),
                integer("head_dim", json(), "Per-head query/key dimension (MLA: the no-RoPE "
                                            "part).", 1),
                integer("q_lora_rank", 0, "MLA query compression rank (0: none).", 0),
                integer("kv_lora_rank", 0, "MLA key/value compression rank.", 0),
                integer("qk_rope_head_dim", 0, "MLA RoPE part of each query/key head.", 0),
                integer("v_head_dim", 0, "Per-head value dimension.", 0),
            }),
            section("mlp", "Feed-forward block: dense or mixture of experts.", {
                choice("kind", {"dense", "moe"}, "dense", "Dense MLP or mixture of experts."),
                integer("intermediate_size", 0, "Dense MLP width (SwiGLU).", 0),
                integer("n_shared_experts", 0, "Experts every token uses.", 0),
                integer("n_routed_experts", 0, "Experts the router chooses from.", 0),
                integer("top_k", 0, "Routed experts per token.", 0),
                integer("moe_intermediate_size", 0, "Width of one expert (SwiGLU).", 0),
            }),
            integer("hc_mult", 1, "Hyper-connection (mHC) branches of the residual stream.", 1),
        }));
}

Key hardware_section() {
    return section("hardware", "The machine: GPU, host, links, storage.",
        with_common({
            section("gpu", "The accelerator.", {
                choice("kind", {"gpu", "host-cpu"}, "gpu",
                       "gpu: a device with HBM behind the host link. host-cpu: the host's own "
                       "cores compute (a CPU serving engine, `engramsim execute`): fetched rows "
                       "stay in host memory (no copy over a link; mechanisms cpu-gather and nvme) "
                       "and the step's compute shares "
                       "the host's cores with the fetch threads (docs/executor.md). With "
                       "host-cpu, hbm_* describe the memory the compute streams from (DRAM) and "
                       "bf16_dense_flops its matrix rate, from `engramsim calibrate`."),
                text("model", json(), "Product name."),
                integer("count", 1, "GPUs in the node.", 1),
                integer("sm_count", json(), "Streaming multiprocessors.", 1),
                quantity_key("boost_clock", Dim::Frequency, json(), "Boost clock."),
                quantity_key("hbm_capacity", Dim::Bytes, json(), "HBM per GPU.",
                             above_zero(Dim::Bytes, "weights and the KV cache live there")),
                quantity_key("hbm_bandwidth", Dim::Bandwidth, json(), "HBM bandwidth per GPU."),
                quantity_key("l2_cache", Dim::Bytes, json(), "L2 cache per GPU."),
                quantity_key("bf16_dense_flops", Dim::FlopRate, json(),
                             "Dense BF16 tensor-core rate (not the sparse figure)."),
                quantity_key("fp8_dense_flops", Dim::FlopRate, json(),
                             "Dense FP8 tensor-core rate."),
            }),
            section("host", "The host CPUs and their memory.", {
                text("cpu", json(), "Product name."),
                integer("sockets", 1, "CPU sockets.", 1),
                integer("cores_per_socket", json(), "Cores per socket.", 1),
                quantity_key("dram_capacity", Dim::Bytes, json(), "Host DRAM in the node.",
                             above_zero(Dim::Bytes, "a host has memory")),
                quantity_key("dram_bandwidth", Dim::Bandwidth, json(),
                             "Host DRAM bandwidth in the node (all sockets)."),
            }),
            section("host_link", "The GPU's link to host memory.", {
                choice("kind", {"pcie", "nvlink-c2c"}, "pcie", "Link type."),
                integer("pcie_generation", 5, "PCIe generation (0 for NVLink-C2C).", 0, 7),
                integer("pcie_lanes", 16, "PCIe lanes (0 for NVLink-C2C).", 0, 32),
                integer("gpus_per_switch", 1,
                        "GPUs behind one PCIe switch sharing its uplink to the CPU (HGX boards: "
                        "2); 1: each GPU has its own link. PCIe only.", 1, 64),
                quantity_key("bandwidth_per_direction", Dim::Bandwidth, json(),
                             "Raw bandwidth per direction."),
                quantity_key("latency", Dim::Time, json(), "One small transfer's latency."),
            }),
            section("nvlink", "GPU-to-GPU NVLink.", {
                quantity_key("bandwidth_per_direction", Dim::Bandwidth, json(),
                             "Per GPU, per direction."),
                quantity_key("latency", Dim::Time, "0.5 us",
                             "One GPU-to-NVSwitch hop (a GPU-to-GPU transfer crosses two)."),
            }),
            section("network", "The node's network interface (RDMA) and the fabric to remote "
                               "memory servers (sim.table remote-dram).", {
                quantity_key("bandwidth_per_direction", Dim::Bandwidth, "400 Gbps",
                             "One NIC per node, per direction (every node: the GPU node and "
                             "each memory server)."),
                quantity_key("latency", Dim::Time, "2 us",
                             "One-way NIC to NIC through one switch (half on each side's link)."),
            }),
            section("nvme", "Local NVMe SSDs.", {
                text("model", json(), "Product name."),
                integer("count", 1, "Drives in the node.", 0),
                quantity_key("capacity", Dim::Bytes, json(), "Capacity per drive."),
                quantity_key("read_bandwidth", Dim::Bandwidth, json(),
                             "Sequential read per drive."),
                quantity_key("write_bandwidth", Dim::Bandwidth, json(),
                             "Sequential write per drive."),
                quantity_key("random_read_iops", Dim::Count, json(),
                             "4 KiB random reads per second per drive.",
                             above_zero(Dim::Count, "a drive's read rate divides")),
                quantity_key("read_latency", Dim::Time, json(), "One 4 KiB random read."),
                quantity_key("cpu_per_read", Dim::Time, "0 s",
                             "Host CPU time one random read costs beside the drive's (the "
                             "system call, its completion, waking the thread that waits), "
                             "spent on the host's cores while the reads are in flight; a CPU "
                             "engine (hardware.gpu.kind host-cpu) loses it from its compute. "
                             "Measured by `engramsim calibrate`; 0: not modeled."),
                {.name = "iops_at_depth", .type = Type::StringMap, .default_value = json::object(),
                 .help = "Measured 4 KiB random reads per second per drive by queue depth, "
                         "{\"1\": \"13K\", \"32\": \"110K\", ...} (engramsim validate "
                         "nvme-fetch prints them); used by sim.nvme_queueing measured."},
            }),
        }));
}

Key length_section(std::string name, std::string help) {
    return section(std::move(name), std::move(help), {
        choice("dist", {"fixed", "uniform", "file"}, "uniform",
               "fixed: always `value`; uniform: randint(min, max); file: whitespace-separated "
               "lengths, used in order (cycled)."),
        integer("value", 512, "Length when dist is fixed (tokens).", 1, INT32_MAX),
        integer("min", 100, "Smallest length when dist is uniform (tokens).", 1, INT32_MAX),
        integer("max", 1024, "Largest length when dist is uniform (tokens).", 1, INT32_MAX),
        text("file", "", "Lengths file when dist is file."),
    });
}

Key workload_section() {
    return section(
        "workload", "The requests served: prompts and generated tokens.",
        with_common({
            choice("kind", {"nano-vllm", "corpus", "synthetic"}, "nano-vllm",
                   "nano-vllm: nano-vLLM bench.py's random prompts (the paper's Table 4); "
                   "corpus: document windows of a token file, outputs = the real continuation; "
                   "synthetic: lookups streamed by a fitted generator (synthetic_model)."),
            integer("num_requests", 512, "Requests (sequences; ids are 32-bit).", 1, UINT32_MAX),
            integer("seed", 0, "Seed of every random draw of the workload.", 0),
            length_section("prompt_len", "Prompt length distribution."),
            length_section("output_len", "Generated tokens per request (max_tokens)."),
            text("tokens", "bundled:handbook-en-US",
                 "corpus: token file (*.u32.bin, *.u16.bin, *.bin: nanoGPT or llm.c, *.json, "
                 "*.jsonl: one document per "
                 "line) or bundled:NAME."),
            integer(
                "bos_id", 0,
                "corpus: id that starts each document (not used by *.jsonl: a line is a document).",
                0),
            integer("max_token_id", 10000, "nano-vllm: prompt ids are uniform in [0, this].", 0),
            text("synthetic_model", "",
                 "synthetic: fitted model JSON from `engramsim trace fit -o FILE`."),
        }));
}

// A share in (0, 1].
Key fraction(std::string name, double def, std::string help) {
    return quantity_key(std::move(name), Dim::Count, def, std::move(help) + " (0..1]",
                        Range{.lo = 0, .lo_open = true, .hi = 1, .why = "a share"});
}

// sim: where the table lives and how rows are fetched (mechanism, schedule, the host's and the
// drives' parameters).
std::vector<Key> sim_fetch_keys() {
    return {
        choice("table", {"host-dram", "hbm", "nvme", "remote-dram"}, "host-dram",
               "Where the Engram table lives: host DRAM (fetched over the host link), HBM "
               "(no fetch; the in-HBM reference), the NVMe drives (mechanism nvme) or the "
               "DRAM of memory_nodes remote memory servers, fetched over the network "
               "(mechanism remote-gather). On "
               "NVMe, placement.dram_capacity is what host DRAM holds of it: all (the "
               "default) keeps the whole table in DRAM, so nothing is read from the drives; "
               "0 reads every fetched row from them; in between, a DRAM cache."),
        choice("mechanism", {"cpu-gather", "uva", "nvme", "remote-gather"}, "cpu-gather",
               "cpu-gather: host threads gather unique rows into pinned staging, then one DMA "
               "copy; uva: a GPU kernel reads pinned host rows through unified addressing; "
               "nvme: rows read from the drives into host staging, then one DMA copy; "
               "remote-gather: each memory server's threads gather its share of the rows, "
               "then one RDMA write to the GPU (table remote-dram)."),
        integer("memory_nodes", 1,
                "sim.table remote-dram: memory servers the table is sharded over evenly, "
                "each with the hardware preset host's DRAM and gather model.",
                1, 4096),
        text("schedule", "layer-ahead:0",
             "Prefetch schedule: none, layer-ahead:K (issue at layer K of the step), oracle."),
        choice("hashing", {"host", "gpu"}, "host",
               "Where row ids are hashed: host CPU (in the fetch chain) or a GPU kernel at "
               "the step start (ids then cross to the host for cpu-gather)."),
        integer("gather_threads", 16, "Host threads gathering rows (cpu-gather).", 1, 4096),
        choice("fetch_queue", {"shared", "fifo"}, "shared",
               "How one GPU's concurrent fetches (several Engram layers prefetched at once) "
               "use its host threads and its copy stream: shared, all at once, each at an "
               "equal share (host threads) or share of the link (copies and UVA reads); fifo, "
               "one fetch at a time on each, in the order they reach it (one job queue, one "
               "CUDA stream), so the first layer's rows are ready first."),
        quantity_key("fetch_wake_penalty", Dim::Time, "0 s",
                     "hardware.gpu.kind host-cpu: what a prefetch issued while the step "
                     "computes costs the compute beyond the fetch's own work (its thread "
                     "wakes onto cores a GEMM team holds, which then waits for it): the "
                     "compute idles that long before its Engram layer; measured by "
                     "`engramsim calibrate` (docs/executor.md)."),
        quantity_key("fetch_wake_penalty_per_read", Dim::Time, "0 s",
                     "hardware.gpu.kind host-cpu, sim.table nvme: what each read from the "
                     "drive of a prefetch issued while the step computes costs the compute "
                     "(its CPU and the wake-up of a reader thread, on cores the step's ops "
                     "hold; the reads' CPU holds no core of its own there): the compute idles "
                     "that long per read before its Engram layer; `engramsim calibrate` writes "
                     "each read's CPU, which a whole decode step beside the reads loses, and "
                     "the rest as sim.fetch_wake_penalty (docs/executor.md)."),
        quantity_key("nvme_fetch_dispatch", Dim::Time, "0 s",
                     "sim.table nvme: the fixed time a fetch that reads the drives takes "
                     "beyond its reads (handing the keys to the prefetcher, waking its reader "
                     "threads, the last completion reaching the compute): added to every such "
                     "fetch; measured by `engramsim calibrate` for a CPU engine "
                     "(docs/executor.md)."),
        quantity_key("row_access_latency", Dim::Time, "250 ns",
                     "One random row read in host DRAM, TLB miss included (4 KiB pages)."),
        quantity_key("outstanding_per_thread", Dim::Count, 2,
                     "Mean concurrent row reads one gather thread sustains (memory-level "
                     "parallelism, page-walk bound; `engramsim validate host-fetch` measures "
                     "it). > 0, fractional allowed.",
                     above_zero(Dim::Count, "a gather thread reads at least part of a row at a time")),
        quantity_key("hash_rate_per_thread", Dim::Count, "1.08B",
                     "Row ids hashed per second per host thread (measured here, README).",
                     above_zero(Dim::Count, "a rate divides")),
        integer("hash_threads", 1,
                "Host threads hashing (hashing = host) and deduplicating row ids.", 1, 4096),
        quantity_key("dedup_rate_per_thread", Dim::Count, "100M",
                     "Row ids one host thread deduplicates per second before the gather "
                     "(open addressing; measured here by `engramsim validate host-fetch`). "
                     "0: not modeled."),
        quantity_key("gather_dispatch", Dim::Time, "50 us",
                     "Per fetch, beyond its rows: waking the idle gather threads, joining "
                     "them, cold caches and TLBs (median measured here by `engramsim "
                     "validate host-fetch`)."),
        quantity_key("dma_setup", Dim::Time, "5 us",
                     "Fixed cost of one host-to-device copy: launch, descriptors, event."),
        quantity_key("pcie_tlp_overhead", Dim::Bytes, "24 B",
                     "Per-TLP framing, header, sequence number and LCRC."),
        quantity_key("pcie_max_payload", Dim::Bytes, "256 B", "PCIe max payload size.",
                     above_zero(Dim::Bytes, "a TLP carries data")),
        fraction("pcie_dllp_overhead", 0.04,
                 "Share of link time taken by DLLPs (acks, flow-control updates)"),
        quantity_key("uva_read_granularity", Dim::Bytes, "64 B",
                     "Alignment of GPU zero-copy reads of host memory.",
                     above_zero(Dim::Bytes, "a read moves data")),
        quantity_key("uva_sm_share", Dim::Count, 0.0,
                     "uva: the share of the GPU's SMs the gather kernel holds while its reads "
                     "are in flight, taken from the compute beside it (a kernel on a side "
                     "stream slows the main stream); 0: not modeled. [0, 1)",
                     Range{.lo = 0, .hi = 1, .hi_open = true, .why = "a share the compute keeps some of"}),
        integer("uva_outstanding_reads", 768,
                "PCIe read requests a GPU keeps in flight (10-bit tags).", 1, 65536),
        quantity_key("nvme_io_size", Dim::Bytes, "4 KiB",
                     "One row read from NVMe: one I/O of this size (rows are not co-located).",
                     above_zero(Dim::Bytes, "an I/O moves data")),
        integer("nvme_queue_depth", 128, "Reads in flight per drive.", 1, 65536),
        choice(
            "nvme_queueing", {"knee", "linear", "measured"}, "knee",
            "A drive's read rate at nvme_queue_depth Q: knee, min(IOPS, Q / latency) (the "
            "optimistic bound); linear, Q / (latency + (Q - 1) / IOPS), each read waiting "
            "for the others at the drive's rate (the pessimistic bound; closer to what "
            "`engramsim validate nvme-fetch` measured on this project's virtual disk); "
            "measured, hardware.nvme.iops_at_depth with Q / rate interpolated linearly in Q."),
    };
}

// sim: the cost model's efficiencies and profiles, the engine, parallelism.
std::vector<Key> sim_engine_keys() {
    return {
        fraction("gemm_efficiency", 0.7, "GEMM share of the tensor-core peak"),
        fraction("attention_efficiency", 0.5, "Attention share of the tensor-core peak"),
        fraction("memory_efficiency", 0.8, "Share of HBM bandwidth any kernel reaches"),
        quantity_key("kernel_floor", Dim::Time, "3 us", "Fixed cost of one GPU kernel."),
        text("profiles", "",
             "Folder of measured kernel profiles (engramsim profile -o DIR): the kernels they "
             "cover are timed from them (interpolated by shape), the rest by the roofline."),
        quantity_key("backbone_time_scale", Dim::Count, 1.0,
                     "Calibration: multiplies every backbone op time (never the Engram "
                     "path); study paper-table4 fits it to the paper's baseline.",
                     above_zero(Dim::Count, "a time scale of 0 makes compute free")),
        boolean("scale_engram_ops", false,
                "Apply backbone_time_scale to the Engram module's GPU ops too."),
        choice("engine", {"nano-vllm", "vllm-v1"}, "nano-vllm",
               "The serving engine (sim/timing/engine.h): nano-vllm, prefill-only or "
               "decode-only steps, whole prompts, a synchronous loop; vllm-v1, vLLM V1's "
               "scheduler (chunked prefill: decodes and prefill chunks share one token "
               "budget per step) with async scheduling as configured below."),
        integer("max_num_seqs", 512, "Engine: sequences per step (nano-vLLM default).", 1),
        integer("max_num_batched_tokens", 16384,
                "Engine: tokens per step (nano-vllm: prefill tokens; vllm-v1: the step's "
                "token budget, decodes included).", 1),
        boolean("enable_chunked_prefill", true,
                "vllm-v1: cut a prompt longer than the budget left into chunks (false: it "
                "waits for a step with room for it whole)."),
        integer("long_prefill_token_threshold", 0,
                "vllm-v1: at most this many tokens of one request per step; 0: no cap.", 0),
        quantity_key("step_host_time", Dim::Time, "0 s",
                     "Engine: host work per step (scheduling, preparing inputs, sampling "
                     "bookkeeping), before the step's GPU work in a synchronous loop "
                     "(nano-vllm; vllm-v1 without async_scheduling), overlapping the previous "
                     "step's GPU work with async scheduling. 0: not modeled."),
        quantity_key("step_host_time_per_seq", Dim::Time, "0 s",
                     "Engine: host work per step per scheduled sequence, added to "
                     "step_host_time."),
        choice("cuda_graphs", {"none", "piecewise", "full"}, "full",
               "How the engine launches a step's kernels: none, each by the host (nano-vLLM's "
               "enforce_eager); piecewise (vllm-v1), attention and the Engram lookup launched "
               "between graph pieces; full, a decode-only step replays one graph, split at "
               "each Engram layer whose rows the host fetches (nano-vllm) or whose lookup "
               "breaks capture (vllm-v1), other steps as the engine runs them (nano-vllm: "
               "eagerly; vllm-v1: piecewise). Costs: kernel_launch, graph_launch."),
        quantity_key("kernel_launch", Dim::Time, "0 s",
                     "Host time to launch one kernel outside a graph (framework dispatch and "
                     "the launch itself); the GPU runs a kernel once it is launched. 0: not "
                     "modeled."),
        quantity_key("graph_launch", Dim::Time, "0 s",
                     "Host time to launch one CUDA graph replay. 0: not modeled."),
        boolean("async_scheduling", true,
                "vllm-v1: schedule step n + 1 while step n runs (vLLM's --async-scheduling); a "
                "finished request then frees its KV blocks and running slot one step late."),
        integer("kv_block_size", 256, "Engine: tokens per KV-cache block.", 1),
        fraction("gpu_memory_utilization", 0.9, "Engine: share of HBM it may use"),
        integer("num_kv_blocks", -1,
                "KV blocks; -1: (HBM x utilization - weights - "
                "activation peak) / block bytes, as nano-vLLM.",
                -1),
        integer("tensor_parallel", 1,
                "GPUs serving one model replica by tensor parallelism (Megatron-style, as "
                "nano-vLLM); at most hardware.gpu.count.",
                1, 64),
        integer("data_parallel", 1,
                "Engine replicas on one node, each on its own GPU (data parallelism): request "
                "r goes to replica r mod data_parallel; the replicas share the host (its "
                "cores, DRAM table), the PCIe switches and the drives. At most "
                "hardware.gpu.count; > 1 needs tensor_parallel 1.",
                1, 64),
        choice("collective_comms", {"ring-steps", "coalesced"}, "coalesced",
               "ring-steps: each ring step of a collective is its own comms (a barrier per "
               "step); coalesced: one comm per GPU per collective after a sleep of the other "
               "steps' latencies (equal on idle links, far fewer SimGrid activities)."),
    };
}

Key sim_section() {
    std::vector<Key> keys = sim_fetch_keys();
    for (Key& k : sim_engine_keys()) keys.push_back(std::move(k));
    return section("sim",
                   "The timing simulator: serving engine, fetch mechanism, prefetch "
                   "schedule, cost-model efficiencies (docs/timing.md).",
                   with_common(std::move(keys)));
}

// cluster: a multi-node deployment (sim/scaleout/, docs/scaleout.md). Present: engramsim run
// simulates the cluster instead of one engine.
Key cluster_section() {
    return section("cluster",
        "A multi-node deployment: nodes of the hardware preset joined by a fabric, expert "
        "parallelism across them, the Engram table replicated or sharded (sim/scaleout, "
        "docs/scaleout.md). Present: engramsim run simulates the whole cluster; every "
        "data-parallel attention rank serves the workload section's requests.",
        with_common({
            integer("nodes", 1, "Nodes of the hardware preset.", 1, 4096),
            integer("gpus_per_node", 8, "GPUs per node, each with its own NIC (a rail).", 1, 72),
            choice("topology", {"rail-optimized", "fat-tree"}, "rail-optimized",
                   "The fabric, a two-level fat tree (SimGrid fat-tree zone) whose leaves are "
                   "the nodes: rail-optimized, a leaf level spanning a scalable unit of 32 "
                   "nodes (each rail's leaf switch joins that rail's NICs; a row for another "
                   "rail's GPU crosses NVLink to that rail first, as NCCL's PXN; the rails are "
                   "merged into links of gpus_per_node x the NIC bandwidth); fat-tree, a leaf "
                   "per 4 nodes (a 64-port switch, 32 ports down, 8 NICs a node)."),
            integer("nodes_per_leaf", 0, "Nodes under one leaf switch; 0: the topology's.", 0),
            quantity_key("oversubscription", Dim::Count, 1.0,
                         "Leaf down-links per up-link (1: full bisection).",
                         Range{.lo = 1, .hi = 1024, .why = "at least one up-link per 1024 down-links"}),
            quantity_key("nic_bandwidth", Dim::Bandwidth, "0 B/s",
                         "Per NIC and direction; 0: hardware.network.bandwidth_per_direction.",
                         Range{.lo = 0, .hi = 1e15, .why = "a NIC moves data, at most 1 PB/s"}),
            quantity_key("nic_latency", Dim::Time, "0.95 us",
                         "Each NIC link (sender's and receiver's): with switch_link_latency, "
                         "2.8 us through one leaf and 3.7 us through the spine, InfiniBand's "
                         "figures in DeepSeek's ISCA'25 paper (Table 5)."),
            quantity_key("switch_link_latency", Dim::Time, "0.45 us",
                         "Each fabric link between a node and a leaf switch or a leaf and a "
                         "spine."),
            integer("expert_parallel", 0,
                    "GPUs the routed experts are spread over (an EP group); 0: every GPU of a "
                    "pipeline stage. Below the experts it must divide them; above, a multiple "
                    "of them (each expert replicated).",
                    0),
            integer("pipeline_parallel", 1,
                    "Pipeline stages, each a contiguous share of the layers on its own GPUs; a "
                    "step passes the stages in turn (with micro_batches > 1 each micro-batch "
                    "passes them on its own, so the stages overlap within a step).",
                    1),
            quantity_key("routing_skew", Dim::Count, 0.0,
                         "Expert load skew: the first GPU's experts receive (1 + skew) x the "
                         "mean rows (0: balanced routing).",
                         Range{.lo = 0, .hi = 1000, .why = "a skew below 0 would remove rows"}),
            quantity_key("dispatch_bytes_per_value", Dim::Count, 1.0,
                         "Bytes per hidden value dispatched (1: FP8, as DeepEP).",
                         Range{.lo = 0, .lo_open = true, .hi = 8, .why = "rows have bytes, at most 8 a value"}),
            quantity_key("combine_bytes_per_value", Dim::Count, 2.0,
                         "Bytes per hidden value combined (2: BF16, as DeepEP).",
                         Range{.lo = 0, .lo_open = true, .hi = 8, .why = "rows have bytes, at most 8 a value"}),
            choice("engram_table", {"replicated", "sharded", "memory-servers"}, "replicated",
                   "Where the Engram table lives: a copy in every node's host DRAM; sharded "
                   "evenly over the nodes' host DRAM (remote rows gathered by their node's CPU "
                   "and written into the GPU by RDMA); on memory_servers servers on the fabric."),
            integer("memory_servers", 0, "engram_table memory-servers: how many.", 0),
            integer("micro_batches", 1,
                    "Micro-batches a step is split into, overlapped as SGLang's two-batch "
                    "overlap and DeepSeek's dual micro-batch run them: each runs the step's "
                    "layers on its share of the sequences, their kernels one at a time on the "
                    "GPU's stream, so one's all-to-all hides behind another's compute (each "
                    "also reads the weights again). 1: no overlap.",
                    1, 4),
            integer("layers_per_event", 4,
                    "Layers simulated as one event group (cut at each Engram layer): the "
                    "group's compute, all-to-alls and their latencies are the same on idle "
                    "links; fewer, larger flows.",
                    1),
            choice("granularity", {"node", "gpu"}, "node",
                   "What the simulator runs as one actor with its own links: a node (its GPUs "
                   "alike: one host, every per-GPU link G times as wide; events grow with "
                   "nodes) or each GPU (its own NIC, PCIe leg and NVLink; for checking and for "
                   "skew within a node). Equal where the node's GPUs are alike."),
            choice("collectives", {"coalesced", "pairwise"}, "coalesced",
                   "coalesced: per GPU one NVLink flow and one NIC flow per fabric level per "
                   "all-to-all, carrying its bytes to a ring neighbour (events grow with GPUs); "
                   "pairwise: a flow per pair of GPUs (GPUs squared; for checking)."),
        }));
}

Key placement_section() {
    auto options = [](std::string name, std::string help) {
        return Key{.name = std::move(name), .type = Type::StringMap,
                   .default_value = json::object(), .help = std::move(help)};
    };
    return section("placement", "Where the Engram table's rows are served from: an HBM cache, "
                                "host DRAM (the whole table or a cache) and NVMe, and the cache "
                                "policies (sim/placement, docs/placement.md). Read by engramsim "
                                "replay --config and engramsim run.",
        with_common({
            capacity("hbm_capacity", "0",
                     "HBM cache in front of the table: rows (1000000, 2.5M rows), N% of the "
                     "table's rows, bytes (10GiB; whole rows of the Engram row size) or all; "
                     "0: no GPU cache. engramsim run replays the run's own lookups through it."),
            text("policy", "lru",
                 "HBM cache policy: belady, lfu, lru, s3fifo, sa-lfu, sa-lru, sieve, static "
                 "(engramsim replay --policy)."),
            options("policy_options",
                    "HBM policy options, option -> value, values as strings: "
                    "{\"ways\": \"16\", \"lookahead\": \"4\"} (engramsim replay "
                    "--policy-options ways=16,lookahead=4)."),
            capacity("dram_capacity", "all",
                     "Host DRAM for the table (same forms): all holds the whole table; below "
                     "the table's rows DRAM is a cache and the rest is read from NVMe "
                     "(engramsim run: needs sim.table nvme)."),
            text("dram_policy", "lru",
                 "DRAM cache policy (not belady, and no lookahead option: DRAM's request "
                 "sequence depends on the HBM cache's decisions, so it is not known ahead)."),
            options("dram_policy_options", "DRAM policy options, option -> value as strings."),
            choice("tiers", {"inclusive", "exclusive"}, "inclusive",
                   "With a DRAM cache: inclusive (HBM a subset of DRAM, back-invalidation) or "
                   "exclusive (a row in at most one of them, HBM victims written back)."),
            quantity_key("profile_fraction", Dim::Count, 1.0,
                         "static: rank rows by their requests in this leading fraction of the "
                         "trace (1: the whole trace, an oracle ranking) (0..1]",
                         Range{.lo = 0, .lo_open = true, .hi = 1, .why = "a share of the trace"}),
            integer("warmup_requests", 0,
                    "engramsim run: warm the caches first with this many requests of the run's "
                    "workload drawn with warmup_seed (other prompts, other document windows: "
                    "earlier traffic of the same kind), served through the HBM and DRAM caches "
                    "and not timed; 0: the caches start empty. static then ranks rows by the "
                    "warm-up (no oracle).",
                    0),
            integer("warmup_seed", 1000003,
                    "Workload seed of the warm-up requests; must differ from workload.seed.", 0),
        }));
}

// Keys that moved to another section: old path -> what to write instead.
const std::vector<std::pair<std::string, std::string>>& moved_keys() {
    static const std::vector<std::pair<std::string, std::string>> moved = {
        {"sim.hbm_cache_rows",
         "placement.hbm_capacity (a capacity: \"10M rows\", \"1%\", \"10GiB\")"},
        {"sim.hbm_cache_policy", "placement.policy (options in placement.policy_options)"},
    };
    return moved;
}

// Why `raw` is not a capacity, or nothing when it is one (model/capacity.h, checked without
// the table).
std::optional<std::string> capacity_problem(const std::string& raw) {
    try {
        capacity::parse(raw);
        return std::nullopt;
    } catch (const std::invalid_argument& ex) {
        return std::string(ex.what());
    }
}

// ---- Resolution ---------------------------------------------------------------------------

std::string join_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

std::string json_kind(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a number";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        default: return "a value";
    }
}

class Resolver {
public:
    explicit Resolver(std::string_view origin) : origin_(origin) {}

    [[noreturn]] void fail(const std::string& path, const std::string& what) const {
        throw ConfigError(origin_ + ": " + path + ": " + what);
    }

    json value(const Key& key, const json& v, const std::string& path) const {
        auto expect = [&](bool ok) {
            if (!ok) fail(path, "expected " + describe_type(key) + ", got " + json_kind(v));
        };
        switch (key.type) {
            case Type::Integer: {
                expect(v.is_number_integer());
                if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
                    fail(path, "integer too large");
                int64_t x = v.get<int64_t>();
                if ((key.min && x < *key.min) || (key.max && x > *key.max))
                    fail(path, std::to_string(x) + " is out of range; expected " +
                                   describe_type(key));
                return x;
            }
            case Type::Boolean: expect(v.is_boolean()); return v;
            case Type::String: expect(v.is_string()); return v;
            case Type::Enum: {
                expect(v.is_string());
                const auto s = v.get<std::string>();
                if (std::find(key.choices.begin(), key.choices.end(), s) == key.choices.end()) {
                    std::string msg = "'" + s + "' is not " + describe_type(key);
                    if (auto near = nearest(s, key.choices)) msg += "; did you mean " + *near + "?";
                    fail(path, msg);
                }
                return v;
            }
            case Type::Quantity: return quantity_value(key.dim, v, path, key);
            case Type::IntegerList:
            case Type::QuantityList:
            case Type::StringList: {
                expect(v.is_array());
                Key element = key;
                element.type = key.type == Type::IntegerList    ? Type::Integer
                               : key.type == Type::QuantityList ? Type::Quantity
                                                                : Type::String;
                json out = json::array();
                for (size_t i = 0; i < v.size(); ++i)
                    out.push_back(value(element, v[i], path + "[" + std::to_string(i) + "]"));
                return out;
            }
            case Type::StringMap: {
                expect(v.is_object());
                for (const auto& [k, s] : v.items())
                    if (!s.is_string()) fail(join_path(path, k), "expected a string");
                return v;
            }
            case Type::Capacity: {
                if (v.is_number_integer()) {  // rows
                    if (!v.is_number_unsigned() && v.get<int64_t>() < 0)
                        fail(path, "must not be negative");
                    return v.dump();
                }
                expect(v.is_string());
                const auto text = v.get<std::string>();
                if (auto why = capacity_problem(text)) fail(path, *why);
                return v;
            }
            case Type::Section: expect(v.is_object()); return section_value(key, v, path);
        }
        fail(path, "undeclared type");
    }

    json quantity_value(Dim dim, const json& v, const std::string& path, const Key& key) const {
        try {
            if (v.is_string()) {
                double x = units::parse(v.get<std::string>(), dim);
                check_range(x, dim, path, key);
                // Counts stay JSON numbers (integers when whole); everything else a unit string.
                if (dim == Dim::Count) return count_json(x);
                return units::format(x, dim);
            }
            if (dim == Dim::Count && v.is_number()) {
                double x = v.get<double>();
                if (x < 0) fail(path, "must not be negative");
                if (!std::isfinite(x)) fail(path, "must be a finite number");
                check_range(x, dim, path, key);
                return v.is_number_float() ? count_json(x) : v;
            }
        } catch (const units::UnitError& e) {
            fail(path, e.what());
        }
        if (v.is_number())
            fail(path, "a bare number needs a unit; expected " + describe_type(key) +
                           ", e.g. \"" + units::format(example_value(dim), dim) + "\"");
        fail(path, "expected " + describe_type(key) + ", got " + json_kind(v));
    }

    void check_range(double x, Dim dim, const std::string& path, const Key& key) const {
        if (!key.range) return;
        if (auto why = range_problem(x, dim, *key.range)) fail(path, *why);
    }

    static json count_json(double x) {
        if (x == static_cast<double>(static_cast<int64_t>(x)) && x < 9.2e18)
            return static_cast<int64_t>(x);
        return x;
    }

    static double example_value(Dim dim) {
        switch (dim) {
            case Dim::Bytes: return 80.0 * 1024 * 1024 * 1024;
            case Dim::Bandwidth: return 64e9;
            case Dim::Time: return 1e-6;
            case Dim::FlopRate: return 989e12;
            case Dim::Frequency: return 1.98e9;
            case Dim::Count: return 1e6;
        }
        return 1;
    }

    // Every key of `given` must be declared in `sec`.
    void reject_unknown(const Key& sec, const json& given, const std::string& path) const {
        std::vector<std::string> declared;
        for (const Key& k : sec.keys) declared.push_back(k.name);
        for (const auto& [name, v] : given.items()) {
            if (std::find(declared.begin(), declared.end(), name) != declared.end()) continue;
            for (const auto& [old_path, now] : moved_keys())
                if (old_path == join_path(path, name))
                    fail(old_path, "this key has moved; write " + now + " instead");
            std::string msg = "unknown key";
            if (auto near = nearest(name, declared))
                msg += "; did you mean " + *near + "?";
            else
                msg += "; known keys: " + join(declared);
            fail(join_path(path, name), msg);
        }
    }

    json section_value(const Key& sec, const json& given, const std::string& path) const {
        reject_unknown(sec, given, path);
        json out = json::object();
        for (const Key& k : sec.keys) {
            const std::string kpath = join_path(path, k.name);
            if (given.contains(k.name)) {
                out[k.name] = value(k, given.at(k.name), kpath);
            } else if (k.type == Type::Section) {
                out[k.name] = section_value(k, json::object(), kpath);
            } else if (k.default_value.is_null()) {
                fail(kpath, "required key is missing (" + describe_type(k) + ")");
            } else {
                out[k.name] = value(k, k.default_value, kpath);
            }
        }
        return out;
    }

    static std::string join(const std::vector<std::string>& names) {
        std::string s;
        for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
        return s;
    }

private:
    std::string origin_;
};

// Overlay `top` on `base` key by key (objects merge recursively; anything else replaces).
json overlay(json base, const json& top) {
    for (const auto& [k, v] : top.items()) {
        if (v.is_object() && base.contains(k) && base[k].is_object())
            base[k] = overlay(base[k], v);
        else
            base[k] = v;
    }
    return base;
}

// Replace a section's "base" (and the string shorthand) by the preset's values, recursively.
json expand_base(const std::string& section_name, json sec, std::string_view origin, int depth) {
    // The string shorthand ("backbone": "dense-4b") is named by the section's own path.
    const bool shorthand = sec.is_string();
    if (shorthand) sec = json{{"base", sec}};
    if (!sec.is_object() || !sec.contains("base") || !sec["base"].is_string() ||
        sec["base"].get<std::string>().empty())
        return sec;
    const std::string base_name = sec["base"].get<std::string>();
    const std::string path = shorthand ? section_name : section_name + ".base";
    if (depth > 8)
        throw ConfigError(std::string(origin) + ": " + path + ": presets extend each other in a "
                                                           "cycle");
    auto doc = presets::document(base_name);
    if (!doc || !doc->contains(section_name)) {
        std::string msg = std::string(origin) + ": " + path + ": no " + section_name +
                          " preset named '" + base_name + "'";
        auto known = presets::names(section_name);
        if (auto near = nearest(base_name, known)) msg += "; did you mean " + *near + "?";
        msg += " (known: " + Resolver::join(known) + ")";
        throw ConfigError(msg);
    }
    json parent = expand_base(section_name, (*doc)[section_name], "preset " + base_name,
                              depth + 1);
    sec.erase("base");
    json merged = overlay(parent, sec);
    merged["base"] = base_name;
    return merged;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

// ---- Public API ---------------------------------------------------------------------------

Range default_range(Dim dim) {
    switch (dim) {
        case Dim::Bandwidth:
            return {.lo = 0, .lo_open = true, .hi = 1e15, .why = "a link or memory moves data, "
                                                                 "at most 1 PB/s"};
        case Dim::FlopRate:
            return {.lo = 0, .lo_open = true, .hi = 1e18,
                    .why = "a processor computes, at most 1 EFLOP/s"};
        case Dim::Frequency:
            return {.lo = 0, .lo_open = true, .hi = 1e11, .why = "a clock ticks, below 100 GHz"};
        case Dim::Time:
            return {.lo = 0, .hi = 1,
                    .why = "every time here is a latency or a per-operation cost, below a second"};
        case Dim::Bytes:
            return {.lo = 0, .hi = kTwoTo64, .hi_open = true, .why = "sizes are 64-bit byte counts"};
        case Dim::Count:
            return {.lo = 0, .hi = kTwoTo64, .hi_open = true, .why = "counts are 64-bit"};
    }
    return {};
}

std::optional<std::string> range_problem(double value, Dim dim, const Range& r) {
    const bool low = r.lo_open ? !(value > r.lo) : !(value >= r.lo);
    const bool high = r.hi_open ? !(value < r.hi) : !(value <= r.hi);
    if (!low && !high) return std::nullopt;
    auto show = [dim](double x) {
        if (x == kTwoTo64) return std::string("2^64") + (dim == Dim::Bytes ? " B" : "");
        if (!std::isfinite(x) || x < 0 || (dim == Dim::Bytes && x != std::floor(x)) ||
            dim == Dim::Count) {
            char buf[32];
            auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
            return std::string(buf, end);
        }
        return units::format(x, dim);
    };
    return show(value) + " is out of range; expected " + std::string(units::dim_name(dim)) +
           " in " + (r.lo_open ? "(" : "[") + show(r.lo) + ", " + show(r.hi) +
           (r.hi_open ? ")" : "]") + (r.why.empty() ? "" : " (" + r.why + ")");
}

const Key& schema() {
    static const Key root = section("", "A config document.",
                                    {engram_section(), backbone_section(), hardware_section(),
                                     workload_section(), sim_section(),
                                     placement_section(), cluster_section()});
    return root;
}

const Key* find_key(std::string_view dotted_path) {
    const Key* cur = &schema();
    std::string_view rest = dotted_path;
    while (!rest.empty()) {
        auto dot = rest.find('.');
        std::string_view part = rest.substr(0, dot);
        rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
        auto it = std::find_if(cur->keys.begin(), cur->keys.end(),
                               [&](const Key& k) { return k.name == part; });
        if (it == cur->keys.end()) return nullptr;
        cur = &*it;
    }
    return cur;
}

std::vector<std::string> declared_paths(bool sections) {
    std::vector<std::string> paths;
    std::function<void(const Key&, const std::string&)> walk = [&](const Key& k, const std::string& p) {
        if (!p.empty() && (sections || k.type != Type::Section)) paths.push_back(p);
        for (const auto& c : k.keys) walk(c, p.empty() ? c.name : p + "." + c.name);
    };
    walk(schema(), "");
    return paths;
}

std::string describe_type(const Key& key) {
    auto unit_list = [&] {
        std::string s;
        for (const auto& u : units::accepted_units(key.dim)) s += (s.empty() ? "" : ", ") + u;
        return s;
    };
    auto bounds = [&] {
        std::string s;
        if (key.min) s += " >= " + std::to_string(*key.min);
        if (key.max) s += (key.min ? " and <= " : " <= ") + std::to_string(*key.max);
        return s;
    };
    switch (key.type) {
        case Type::Integer: return "integer" + bounds();
        case Type::Boolean: return "boolean";
        case Type::String: return "string";
        case Type::Enum: {
            std::string s = "one of ";
            for (size_t i = 0; i < key.choices.size(); ++i)
                s += (i ? ", " : "") + key.choices[i];
            return s;
        }
        case Type::Quantity:
            return key.dim == Dim::Count ? "count (number, or with suffix K, M, B, T)"
                                         : std::string(units::dim_name(key.dim)) + " (" +
                                               unit_list() + ")";
        case Type::IntegerList: return "array of integers";
        case Type::QuantityList:
            return key.dim == Dim::Count ? "array of counts"
                                         : "array of " + std::string(units::dim_name(key.dim));
        case Type::StringList: return "array of strings";
        case Type::StringMap: return "object of strings";
        case Type::Capacity:
            return "capacity (all, N% of the table's rows, bytes with a unit: 10GiB, or rows: "
                   "1000000, 2.5M rows)";
        case Type::Section: return "section";
    }
    return "value";
}

json resolve(const json& doc, std::string_view origin) {
    Resolver r(origin);
    if (!doc.is_object()) r.fail("(root)", "expected an object with sections engram, backbone, "
                                           "hardware, got " + json_kind(doc));
    r.reject_unknown(schema(), doc, "");
    // Only the sections present are resolved: a hardware preset needs no backbone.
    json out = json::object();
    for (const auto& [name, sec] : doc.items())
        out[name] = r.value(*find_key(name), expand_base(name, sec, origin, 0), name);
    return out;
}

json load(std::string_view preset_or_path) {
    if (auto doc = presets::document(preset_or_path))
        return resolve(*doc, "preset " + std::string(preset_or_path));
    const std::string path(preset_or_path);
    auto doc = read_document(path);
    if (!doc) {
        std::string msg = "'" + path + "' is neither a preset nor a readable file";
        if (auto near = nearest(path, presets::names())) msg += "; did you mean " + *near + "?";
        throw ConfigError(msg);
    }
    return resolve(*doc, path);
}

std::optional<json> read_document(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw ConfigError("'" + path + "' is a directory, not a config file");
    std::ifstream in(path);
    if (!in) return std::nullopt;
    try {
        return json::parse(in);
    } catch (const json::parse_error& e) {
        throw ConfigError(path + ": not valid JSON: " + json_error_text(e.what()));
    }
}

std::string json_error_text(const std::string& what) {
    if (what.rfind("[json.exception.", 0) != 0) return what;
    const size_t end = what.find("] ");
    return end == std::string::npos ? what : what.substr(end + 2);
}

std::optional<std::string> nearest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    size_t best_d = SIZE_MAX;
    for (const auto& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best_d) best_d = d, best = c;
    }
    // A typo changes a few characters; beyond that a suggestion misleads more than it helps.
    size_t limit = std::max<size_t>(2, word.size() / 3);
    if (!best || best_d > limit) return std::nullopt;
    return best;
}

double quantity(const json& sec, const std::string& key, Dim dim) {
    const json& v = sec.at(key);
    if (v.is_number()) return v.get<double>();
    return units::parse(v.get<std::string>(), dim);
}

}  // namespace engramsim::config

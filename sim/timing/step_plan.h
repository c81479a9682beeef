// A run's steps as a file another engine can serve (`engramsim plan CONFIG -o plan.json`): the
// model's shape, the hash's parameters, every request's tokens, and every step's slices and
// preemptions exactly as the simulator plans them (its engine's scheduler, its KV blocks), with
// what each step's Engram layers read: lookups, distinct rows, and an order-free digest of those
// rows. The PyTorch harness (executor/torch/) serves these steps and checks its own rows against
// the digests, so the simulator and the harness time the very same work.
//
// Schema `engramsim.step_plan`, version 1 (docs/torch_harness.md lists every field).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>

namespace engramsim::sim {

// The digest of a step's distinct rows at one Engram layer: the sum, mod 2^64, of
// splitmix64(row) over the distinct global row ids. It does not depend on their order, so an
// engine that deduplicates differently (torch.unique sorts) gets the same number.
uint64_t rows_digest(std::span<const uint64_t> distinct_rows);

// The step plan of a resolved run config. Throws config::ConfigError naming the key for what a
// one-GPU engine serving real tokens cannot take: sim.tensor_parallel or sim.data_parallel above
// 1, a cluster section, a synthetic workload (no tokens).
nlohmann::json step_plan(const nlohmann::json& resolved);

}  // namespace engramsim::sim

// Remapping 64-bit row keys to dense ids on every core, without reading a large table at random.
//
// A hash table of every distinct key, probed once per request, misses the caches and the TLB on
// every probe once the trace has millions of rows: 25 ns a probe on the 2-core VM, however they
// are prefetched. The keys are radix-partitioned by hash instead, so that each partition's keys
// fit a table in a core's L2 cache (number_keys):
//
//   1. tag       each request's partition (the top 8 bits of its key's hash), counted per thread
//                (threads take ranges of the requests);
//   2. scatter   each request's hash into its partition, in request order (the ranges again);
//   3. number    each partition its keys, in order of first sight within it, in a table sized by
//                its requests (threads take partitions);
//
// and the requests, in order, are read back by following the tags (one cursor per partition):
// in order of first sight (first_sight_ids: the ids a plain hash map numbering keys as they come
// gives, tested), grouped by partition (grouped_ids), or streamed in a numbering that costs no
// random reads (each_numbered_id).
// Every pass streams its arrays or stays in cache. The numbers are the same whatever the thread
// count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace engramsim::placement {

// uint32 over the uint64 hashes' storage: may_alias tells the compiler the two views share bytes
// (without it, strict aliasing would let it reorder a store of one past a load of the other).
using aliased_u32 = uint32_t __attribute__((may_alias));

struct NumberedKeys {
    uint64_t requests = 0;
    unsigned partitions = 1;
    std::unique_ptr<uint8_t[]> tag;     // per request: its partition
    std::vector<uint64_t> start;        // partition p's requests: [start[p], start[p + 1])
    // Per request, grouped by partition: its key's local id. Partition p's are the uint32s
    // from local_starts()[p] on (they overwrote its hashes, twice their size).
    std::unique_ptr<uint64_t[]> local;
    std::vector<uint32_t> distinct;     // per partition: its distinct keys
    // The ranges of requests the threads tagged, [range_start[t], range_start[t + 1]), and where
    // each begins in each partition: cursor[t][p] (a place in local_ids()) and seen[t][p] (the
    // partition's keys numbered before it), so that later passes can take them in parallel.
    std::vector<uint64_t> range_start;
    std::vector<std::vector<uint64_t>> cursor;
    std::vector<std::vector<uint32_t>> seen;

    const aliased_u32* local_ids() const { return reinterpret_cast<const aliased_u32*>(local.get()); }
    std::vector<uint64_t> local_starts() const;

    uint64_t total_distinct() const;
    // each_numbered_id's ids are below it (at most a quarter above total_distinct()).
    uint64_t numbered_universe() const;
};

// Numbers `ids` on `threads` threads (0: the machine's cores, at most 8; one for fewer than 64Ki
// ids) into `partitions` partitions (0: 256, fewer for short sequences; at most 256). Throws
// std::length_error past 2^32 - 2 ids.
NumberedKeys number_keys(std::span<const uint64_t> ids, unsigned threads = 0,
                         unsigned partitions = 0);

// keys: dense id -> key, in order of first sight (the ids a plain hash map numbering keys as
// they come gives); requests: the dense id of each of `ids` (the sequence numbered).
void first_sight_ids(std::span<const uint64_t> ids, const NumberedKeys& numbered,
                     std::vector<uint64_t>& keys, std::vector<uint32_t>& requests);

// The requests' ids in order, in a numbering of the keys that costs no random reads: local id
// times the partitions plus the partition (ids below numbered_universe(), a few of them unused),
// so that keys first seen about together get ids near each other; handed to `each` a slice at a
// time (filled by a second thread) with the position of its first request. For a consumer the
// numbering of rows cannot change, such as a cache policy deciding from the order of requests.
void each_numbered_id(const NumberedKeys& numbered,
                      const std::function<void(std::span<const uint32_t> ids, uint64_t first)>& each);

// keys and requests as first_sight_ids writes them, but with the keys grouped by partition
// (partition p's after partition p-1's, each in order of first sight): dense ids as well, with
// no random reads to give them. For consumers the numbering of rows cannot change.
void grouped_ids(std::span<const uint64_t> ids, const NumberedKeys& numbered,
                 std::vector<uint64_t>& keys, std::vector<uint32_t>& requests);

// number_keys, then first_sight_ids.
void remap_keys(std::span<const uint64_t> ids, std::vector<uint64_t>& keys,
                std::vector<uint32_t>& requests, unsigned threads = 0, unsigned partitions = 0);

}  // namespace engramsim::placement

// One Engram layer's prefetcher in the executor: a thread of its own that, handed a step's
// keys, deduplicates them and brings the unique rows into a staging buffer, as an engine's
// prefetcher does: gathered from the table in DRAM by a team of threads (itself one of them;
// kernels/cpu/host_fetch.h), or read from the table file on disk with direct I/O, one read in
// flight per thread (kernels/cpu/block_io.h, rows packed as a real table file holds them).
// With a DRAM cache in front of the file (executor/row_cache.h), the distinct rows go through
// it: hits copied from DRAM, misses read from the file.
// issue() hands the keys over and returns; wait() blocks until the rows are staged. fetch()
// does the same work on the calling thread (schedule none). Both take the fetch's place in the
// cache's order on the calling thread; `cached` false bypasses the cache (the untimed warm-up,
// which the simulator's replay never sees).
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <utility>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "kernels/cpu/block_io.h"
#include "executor/row_cache.h"
#include "kernels/cpu/host_fetch.h"

namespace engramsim::executor {

struct FetchTimes {
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0;
    double gather_s = 0;  // rows into staging: the DRAM gather, or the disk reads (and cache)
    uint64_t cache_hits = 0;  // with a DRAM cache: distinct rows it served
};

class Prefetcher {
public:
    // Rows from the table in DRAM, gathered by `threads` threads. `background`: fetches are
    // issued to run beside the compute (a layer-ahead schedule), so the prefetcher thread joins
    // its gather threads by sleeping, not spinning: a spinning join on cores the compute holds
    // waits for a woken gather thread to be scheduled, and burns a core meanwhile.
    Prefetcher(kernels::HostTable& table, int threads, bool background = false)
        : dram_(std::make_unique<kernels::HostFetchExecutor>(table, threads, background)) {
        start();
    }
    // Rows from the table file, `queue_depth` direct reads in flight, through `cache` (shared by
    // the layers' prefetchers) when not null.
    Prefetcher(const kernels::BlockFile& file, size_t row_bytes, int queue_depth,
               DramRowCache* cache = nullptr)
        : disk_(std::make_unique<kernels::BlockFetchExecutor>(file, row_bytes, queue_depth,
                                                              kernels::RowLayout::Packed)),
          cache_(cache) {
        start();
    }
    ~Prefetcher() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
    }
    Prefetcher(const Prefetcher&) = delete;
    Prefetcher& operator=(const Prefetcher&) = delete;

    void issue(std::span<const uint64_t> keys, bool cached = true) {
        const uint64_t ticket = cache_ && cached ? cache_->ticket() : kBypass;
        {
            std::lock_guard lock(mu_);
            keys_ = keys, ticket_ = ticket, pending_ = true, done_ = false;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return done_; });
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }
    void fetch(std::span<const uint64_t> keys, bool cached = true) {
        run(keys, cache_ && cached ? cache_->ticket() : kBypass);
    }
    const FetchTimes& times() const { return times_; }
    std::chrono::steady_clock::time_point ready() const { return ready_; }
    std::span<const uint8_t> staging() const { return dram_ ? dram_->staging() : disk_->staging(); }
    std::span<const uint32_t> inverse() const { return inverse_; }

private:
    static constexpr uint64_t kBypass = UINT64_MAX;
    void run(std::span<const uint64_t> keys, uint64_t ticket) {
        if (dram_) {
            const auto t = dram_->fetch(keys, &inverse_);
            times_ = {t.lookups, t.unique_rows, t.dedup_s, t.gather_s};
        } else if (ticket == kBypass) {
            const auto t = disk_->fetch(keys, &inverse_);
            times_ = {t.lookups, t.unique_rows, t.dedup_s, t.read_s};
        } else {
            times_ = {keys.size(), 0, disk_->deduplicate(keys, &inverse_), 0};
            const auto unique = disk_->last_rows();
            const CacheFetchTimes c = cache_->serve(ticket, unique, *disk_);
            times_.unique_rows = unique.size();
            times_.gather_s = c.decide_s + c.hit_s + c.read_s + c.fill_s;
            times_.cache_hits = c.hits;
        }
        ready_ = std::chrono::steady_clock::now();
    }
    void start() {
        worker_ = std::thread([this] { loop(); });
    }
    void loop() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return pending_ || stop_; });
            if (stop_) return;
            pending_ = false;
            lock.unlock();
            std::exception_ptr error;
            try {
                run(keys_, ticket_);
            } catch (...) {  // a failed read: handed to the engine's thread by wait()
                error = std::current_exception();
            }
            lock.lock();
            error_ = error;
            done_ = true;
            cv_.notify_all();
        }
    }
    std::unique_ptr<kernels::HostFetchExecutor> dram_;
    std::unique_ptr<kernels::BlockFetchExecutor> disk_;
    DramRowCache* cache_ = nullptr;
    uint64_t ticket_ = kBypass;
    std::vector<uint32_t> inverse_;
    FetchTimes times_;
    std::chrono::steady_clock::time_point ready_;
    std::span<const uint64_t> keys_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool pending_ = false, done_ = false, stop_ = false;
    std::exception_ptr error_;
    std::thread worker_;
};

}  // namespace engramsim::executor

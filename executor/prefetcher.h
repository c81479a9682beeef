// One Engram layer's prefetcher in the executor: a thread of its own that, handed a step's
// keys, deduplicates them and gathers the rows from the table in DRAM with a team of gather
// threads (itself one of them), as an engine's prefetcher does (kernels/cpu/host_fetch.h does
// the work). issue() hands the keys over and returns; wait() blocks until the rows are staged.
// fetch() does the same work on the calling thread (schedule none).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "kernels/cpu/host_fetch.h"

namespace engramsim::executor {

class Prefetcher {
public:
    Prefetcher(kernels::HostTable& table, int threads) : exec_(table, threads) {
        worker_ = std::thread([this] { loop(); });
    }
    ~Prefetcher() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
    }
    void issue(std::span<const uint64_t> keys) {
        {
            std::lock_guard lock(mu_);
            keys_ = keys, pending_ = true, done_ = false;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return done_; });
    }
    void fetch(std::span<const uint64_t> keys) {
        times_ = exec_.fetch(keys, &inverse_);
        ready_ = std::chrono::steady_clock::now();
    }
    const kernels::HostFetchTimes& times() const { return times_; }
    std::chrono::steady_clock::time_point ready() const { return ready_; }
    std::span<const uint8_t> staging() const { return exec_.staging(); }
    std::span<const uint32_t> inverse() const { return inverse_; }
    int threads() const { return exec_.threads(); }

private:
    void loop() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return pending_ || stop_; });
            if (stop_) return;
            pending_ = false;
            lock.unlock();
            fetch(keys_);
            lock.lock();
            done_ = true;
            cv_.notify_all();
        }
    }
    kernels::HostFetchExecutor exec_;
    std::vector<uint32_t> inverse_;
    kernels::HostFetchTimes times_;
    std::chrono::steady_clock::time_point ready_;
    std::span<const uint64_t> keys_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool pending_ = false, done_ = false, stop_ = false;
    std::thread worker_;
};


}  // namespace engramsim::executor

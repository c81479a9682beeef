#include "model/resources.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "model/config.h"

namespace engramsim::resources {

namespace {

// The first number in `path`, or 0 if it cannot be read (or says "max").
uint64_t read_number(const std::string& path) {
    std::ifstream in(path);
    uint64_t v = 0;
    if (in >> v) return v;
    return 0;
}

// Bytes of the /proc/meminfo line `key` ("MemAvailable"), 0 if it cannot be read.
uint64_t meminfo_bytes(const std::string& key) {
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        if (line.rfind(key + ":", 0) != 0) continue;
        std::istringstream fields(line.substr(key.size() + 1));
        uint64_t kib = 0;
        return fields >> kib ? kib * 1024 : 0;
    }
    return 0;
}

}  // namespace

uint64_t total_memory_bytes() { return meminfo_bytes("MemTotal"); }

uint64_t available_memory_bytes() {
    uint64_t avail = meminfo_bytes("MemAvailable");
    const uint64_t limit = read_number("/sys/fs/cgroup/memory.max");
    const uint64_t used = read_number("/sys/fs/cgroup/memory.current");
    if (limit > 0) {
        const uint64_t headroom = limit > used ? limit - used : 0;
        avail = avail == 0 ? headroom : std::min(avail, headroom);
    }
    return avail;
}

void require_memory(double bytes, const std::string& where, const std::string& what) {
    const uint64_t avail = available_memory_bytes();
    if (avail == 0 || bytes <= double(avail)) return;
    char msg[160];
    std::snprintf(msg, sizeof msg, ": needs about %.3g GB in memory (", bytes / 1e9);
    char tail[160];
    std::snprintf(tail, sizeof tail, "), more than the %.3g GB this machine has available",
                  double(avail) / 1e9);
    throw config::ConfigError(where + msg + what + tail);
}

}  // namespace engramsim::resources

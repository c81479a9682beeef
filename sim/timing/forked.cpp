#include "sim/timing/forked.h"

#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace engramsim::sim {

std::string run_in_child(const std::function<std::string()>& child, const std::string& what) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error(what + ": pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(what + ": fork failed");
    if (pid == 0) {
        close(fds[0]);
        int code = 0;
        std::string buf;
        try {
            buf = "R" + child();
        } catch (const std::exception& e) {
            buf = std::string("E") + e.what();
            code = 2;
        }
        size_t off = 0;
        while (off < buf.size()) {
            const ssize_t w = write(fds[1], buf.data() + off, buf.size() - off);
            if (w <= 0) _exit(3);
            off += size_t(w);
        }
        _exit(code);
    }
    close(fds[1]);
    std::string buf;
    char chunk[1 << 16];
    for (;;) {
        const ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r <= 0) break;
        buf.append(chunk, size_t(r));
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || buf.empty()) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && !buf.empty())
            throw std::runtime_error(what + " failed: " + buf.substr(1));
        throw std::runtime_error(what + " process failed (status " + std::to_string(status) + ")");
    }
    return buf.substr(1);
}

}  // namespace engramsim::sim

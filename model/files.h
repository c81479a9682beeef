// Files written whole or not at all, for outputs a long run or a crash must not leave half
// written (sweep points, a solve's spec, a step plan).
#pragma once

#include <string>

namespace engramsim::files {

// Writes all of `text` to the descriptor `fd` (a file or a pipe), however many writes it takes;
// false when the descriptor refuses.
bool write_all(int fd, const std::string& text);

// Writes `text` to `path` through a temporary file beside it (flushed to the disk, then renamed
// over `path`). Throws std::runtime_error naming the file when a step fails.
void write_atomically(const std::string& path, const std::string& text);

}  // namespace engramsim::files

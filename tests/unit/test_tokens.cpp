// Token files and the compression map: formats, and errors that name what is wrong.
#include <gtest/gtest.h>

#include <fstream>

#include "traces/tokens.h"

using namespace engramsim;

namespace {

std::string write_file(const std::string& name, const std::string& bytes) {
    std::string path = ::testing::TempDir() + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(Tokens, ReadsU32U16AndJson) {
    const std::string u32("\x01\x00\x00\x00\xff\xff\x01\x00", 8);
    EXPECT_EQ(read_tokens(write_file("a.u32.bin", u32)), (std::vector<uint32_t>{1, 131071}));
    const std::string u16("\x01\x00\xff\xff", 4);
    EXPECT_EQ(read_tokens(write_file("a.u16.bin", u16)), (std::vector<uint32_t>{1, 65535}));
    EXPECT_EQ(read_tokens(write_file("a.json", "[0, 5, 128814]")),
              (std::vector<uint32_t>{0, 5, 128814}));
}

TEST(Tokens, TruncatedAndMalformedFilesAreErrors) {
    EXPECT_NE(error_of([] { read_tokens(write_file("t.u32.bin", std::string(7, 'x'))); })
                  .find("7 bytes is not a whole number of 4-byte ids"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens(write_file("t.u16.bin", std::string(3, 'x'))); })
                  .find("not a whole number of 2-byte ids"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens(write_file("b.json", "[1, -2]")); }).find("element 1"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens(write_file("c.json", "[1, 2")); }).find("not valid JSON"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens("/nonexistent/x.u32.bin"); }).find("cannot open"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens("tokens.txt"); }).find("unknown token file type"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens("bundled:nope"); }).find("handbook-en-US"),
              std::string::npos);
}

TEST(Tokens, BundledSampleIsTheCorpusFile) {
    const auto ids = read_tokens("bundled:handbook-en-US");
    EXPECT_EQ(ids.size(), 276753u);  // MANIFEST.json: tokens
    EXPECT_EQ(ids.front(), 0u);      // each document starts with BOS 0
    EXPECT_EQ(*std::max_element(ids.begin(), ids.end()), 127989u);  // MANIFEST.json: max_id
}

TEST(Tokens, EveryBundledSampleIsItsCorpusFile) {
    struct Sample { const char* name; size_t tokens; size_t documents; };
    // MANIFEST.json of the corpus: tokens and documents (each starts with BOS id 0).
    for (const Sample s : {Sample{"handbook-en-US", 276753, 278}, Sample{"handbook-zh-CN", 258617, 186},
                           Sample{"handbook-es-ES", 326413, 298}, Sample{"handbook-fr-FR", 323664, 296},
                           Sample{"fortunes-en", 609484, 282}, Sample{"fortunes-zh", 640797, 184}}) {
        const auto ids = read_tokens(std::string("bundled:") + s.name);
        EXPECT_EQ(ids.size(), s.tokens) << s.name;
        EXPECT_EQ(size_t(std::count(ids.begin(), ids.end(), 0u)), s.documents) << s.name;
    }
    const auto names = bundled_samples();
    EXPECT_EQ(names, (std::vector<std::string>{"fortunes-en", "fortunes-zh", "handbook-en-US", "handbook-es-ES",
                                               "handbook-fr-FR", "handbook-zh-CN"}));
}

TEST(CompressMap, BundledDeepSeekV3Map) {
    const CompressMap map = CompressMap::load("bundled:deepseek-v3");
    EXPECT_EQ(map.raw_vocab_size(), 128815u);        // MANIFEST.json: entries
    EXPECT_EQ(map.canonical_vocab_size(), 99043u);   // MANIFEST.json: canonical_ids
}

TEST(CompressMap, IdOutsideTheMapNamesItsPosition) {
    const CompressMap map = CompressMap::load("bundled:deepseek-v3");
    const std::vector<uint32_t> raw = {0, 1, 129000, 2};
    EXPECT_EQ(error_of([&] { map.compress(raw); }),
              "token 2 has id 129000, outside the compression map (128815 raw ids)");
}

TEST(CompressMap, RejectsSparseCanonicalIds) {
    EXPECT_NE(error_of([] { CompressMap({0, 2, 1, 4}); }).find("canonical id 3 is never used"),
              std::string::npos);
}

TEST(Tokens, JsonLinesAreDocuments) {
    const std::string path = write_file("d.jsonl", "[5, 6, 7]\n\n  \n[]\n[8]\r\n[9, 10]");
    EXPECT_EQ(read_tokens(path), (std::vector<uint32_t>{5, 6, 7, 8, 9, 10}));
    const TokenDocuments d = read_token_documents(path, 0);
    EXPECT_EQ(d.ids, (std::vector<uint32_t>{5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(d.starts, (std::vector<size_t>{0, 3, 4}));  // blank lines and [] skipped
    // Flat files: documents at each BOS, else one at 0.
    const std::string flat = write_file("d.json", "[3, 0, 1, 0, 2]");
    EXPECT_EQ(read_token_documents(flat, 0).starts, (std::vector<size_t>{1, 3}));
    EXPECT_EQ(read_token_documents(flat, 9).starts, (std::vector<size_t>{0}));
}

TEST(Tokens, JsonLinesErrorsNameTheLine) {
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("e.jsonl", "[1, 2]\n[3, 4"));
              }).find("e.jsonl: line 2: not valid JSON (truncated?)"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("f.jsonl", "[1]\n{\"ids\": [2]}"));
              }).find("line 2: expected a JSON array"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("g.jsonl", "\n[1, 2.5]"));
              }).find("line 2, element 1 is not a token id"),
              std::string::npos);
    EXPECT_NE(error_of([] { read_tokens(write_file("h.jsonl", "\n[]\n")); }).find("no token ids"),
              std::string::npos);
}

namespace {
std::string le32(std::initializer_list<uint32_t> words) {
    std::string s;
    for (uint32_t w : words)
        for (int b = 0; b < 4; ++b) s += char((w >> (8 * b)) & 0xff);
    return s;
}
std::string llmc_shard(uint32_t version, uint32_t count, const std::string& ids) {
    std::string header = le32({20240520, version, count});
    header.resize(1024, '\0');
    return header + ids;
}
}  // namespace

TEST(Tokens, BareBinIsNanoGptUint16OrAnLlmcShard) {
    // nanoGPT's train.bin: uint16, no header.
    EXPECT_EQ(read_tokens(write_file("train.bin", std::string("\x05\x00\x10\x27\xff\xff", 6))),
              (std::vector<uint32_t>{5, 10000, 65535}));
    // llm.c: version 1 uint16, version 2 uint32, after a 1 KiB header.
    EXPECT_EQ(
        read_tokens(write_file("v1.bin", llmc_shard(1, 2, std::string("\x07\x00\x08\x00", 4)))),
        (std::vector<uint32_t>{7, 8}));
    EXPECT_EQ(read_tokens(write_file("v2.bin", llmc_shard(2, 2, le32({128000, 9})))),
              (std::vector<uint32_t>{128000, 9}));
    // A header that disagrees with the file, an unknown version, a cut header: errors.
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("short.bin", llmc_shard(2, 3, le32({1, 2}))));
              }).find("the llm.c header says 3 tokens"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("v9.bin", llmc_shard(9, 0, "")));
              }).find("llm.c shard version 9"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  read_tokens(write_file("cut.bin", le32({20240520, 1, 0})));
              }).find("header is 1024 bytes"),
              std::string::npos);
    // 32-bit ids (DeepSeek-V3's reach past 65535) in a bare .bin are refused, not misread.
    std::vector<uint32_t> wide(64);
    for (size_t i = 0; i < wide.size(); ++i) wide[i] = uint32_t(1000 + 2000 * i);
    std::string bytes;
    for (uint32_t w : wide) bytes += le32({w});
    EXPECT_NE(error_of([&] {
                  read_tokens(write_file("wide.bin", bytes));
              }).find("these look like 32-bit ids; name the file *.u32.bin"),
              std::string::npos);
    EXPECT_EQ(read_tokens(write_file("wide.u32.bin", bytes)), wide);
}

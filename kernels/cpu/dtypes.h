// Storage types of Engram table rows and their conversions to and from float, shared by the CPU
// references and the CUDA kernels (ENGRAMSIM_HD), so both sides decode the same bits the same way.
//
//   f32        IEEE binary32
//   bf16       the upper 16 bits of binary32; rounding to nearest, ties to even
//   f16        IEEE binary16 (5 exponent bits, 10 mantissa bits, subnormals)
//   fp8_e4m3   OCP FP8 E4M3 ("fn" variant): bias 7, no infinities, 0x7F / 0xFF are NaN, largest
//              finite 448, subnormals down to 2^-9; encoding saturates to +-448. FP8 rows carry
//              float scales, one per row or one per block of values, and a value is
//              decode(byte) * scale.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "traces/fastmod.h"  // ENGRAMSIM_HD

namespace engramsim::kernels {

enum class Dtype { f32, bf16, f16, fp8_e4m3 };

ENGRAMSIM_HD inline int dtype_size_bytes(Dtype d) {
    switch (d) {
        case Dtype::f32: return 4;
        case Dtype::bf16: return 2;
        case Dtype::f16: return 2;
        case Dtype::fp8_e4m3: return 1;
    }
    return 0;
}

// "f32", "bf16", "f16", "fp8_e4m3"; dtype_from_name throws std::invalid_argument listing them.
std::string dtype_name(Dtype d);
Dtype dtype_from_name(const std::string& name);

ENGRAMSIM_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}

ENGRAMSIM_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}

// ---- bf16 ----
ENGRAMSIM_HD inline float bf16_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

ENGRAMSIM_HD inline uint16_t float_to_bf16(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                          // nearest, ties even
    return uint16_t(u >> 16);
}

// ---- f16 ----
ENGRAMSIM_HD inline float f16_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
    if (exp == 0) {
        if (man == 0) return bits_float(sign);
        // Subnormal: man * 2^-24, exact in float.
        const float v = float(man) * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

ENGRAMSIM_HD inline uint16_t float_to_f16(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
        // Below the smallest normal (2^-14): subnormal result man * 2^-24, round to nearest even.
        // Adding 0.5 (2^-1) pushes the value's bits into a position where float's own rounding
        // does the work: 0.5 + x has ulp 2^-24 for x < 2^-14.
        const float x = bits_float(abs) + 0.5f;
        return uint16_t(sign | uint16_t(float_bits(x) - 0x3f000000u));
    }
    // Normal: rebias exponent (127 -> 15) and round the 23-bit mantissa to 10, ties to even.
    uint32_t r = abs - 0x38000000u;  // exponent - 112
    r += 0xfffu + ((r >> 13) & 1u);
    return uint16_t(sign | uint16_t(r >> 13));
}

// ---- fp8 e4m3 (OCP fn) ----
ENGRAMSIM_HD inline float fp8_e4m3_to_float(uint8_t b) {
    const bool neg = b & 0x80u;
    const uint32_t exp = (b >> 3) & 0xfu;
    const uint32_t man = b & 0x7u;
    float v;
    if (exp == 0xf && man == 0x7) {
        v = bits_float(0x7fc00000u);  // NaN
    } else if (exp == 0) {
        v = float(man) * (1.0f / 512.0f);  // subnormal: man * 2^-9
    } else {
        v = bits_float(((exp + 120u) << 23) | (man << 20));  // 2^(exp-7) * 1.man
    }
    return neg ? -v : v;
}

ENGRAMSIM_HD inline uint8_t float_to_fp8_e4m3(float f) {
    const uint32_t u = float_bits(f);
    const uint8_t sign = uint8_t((u >> 24) & 0x80u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint8_t(sign | 0x7fu);  // NaN
    if (abs >= 0x43e00000u) return uint8_t(sign | 0x7eu);  // >= 448 (and inf): saturate to 448
    if (abs < 0x3c800000u) {
        // Below the smallest normal 2^-6: subnormal man * 2^-9; adding 2^14 (float ulp 2^-9
        // within [2^14, 2^15)) makes float rounding produce the nearest-even count of 2^-9 steps.
        const float x = bits_float(abs) + 16384.0f;
        return uint8_t(sign | uint8_t(float_bits(x) - 0x46800000u));
    }
    uint32_t r = abs - 0x3c000000u;  // rebias 127 -> 7: exponent - 120
    r += 0x7ffffu + ((r >> 20) & 1u);
    uint32_t out = r >> 20;
    if (out > 0x7eu) out = 0x7eu;  // rounding up past 448 saturates
    return uint8_t(sign | out);
}

// One storage element at index i of a row, widened to float (no scale applied).
ENGRAMSIM_HD inline float load_element(const uint8_t* row, Dtype d, int i) {
    switch (d) {
        case Dtype::f32: {
            uint32_t u;
#if defined(__CUDA_ARCH__)
            u = reinterpret_cast<const uint32_t*>(row)[i];
#else
            std::memcpy(&u, row + 4 * i, 4);
#endif
            return bits_float(u);
        }
        case Dtype::bf16:
        case Dtype::f16: {
            uint16_t h;
#if defined(__CUDA_ARCH__)
            h = reinterpret_cast<const uint16_t*>(row)[i];
#else
            std::memcpy(&h, row + 2 * i, 2);
#endif
            return d == Dtype::bf16 ? bf16_to_float(h) : f16_to_float(h);
        }
        case Dtype::fp8_e4m3: return fp8_e4m3_to_float(row[i]);
    }
    return 0.0f;
}

}  // namespace engramsim::kernels

// Element types. f32 is the working type; f64 exists on the CPU so that gradient checks run in
// double precision (as PyTorch's gradcheck does); bf16 and f16 are storage types for now (copy
// and cast; their arithmetic arrives with mixed precision); i32, i64 and u8 hold labels,
// indices, masks and raw data. Comparisons return u8 (0 or 1), ember's boolean.
//
// Half and bfloat16 conversions are written out bit by bit (round to nearest even) so that the
// CPU and CUDA backends give identical bits.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // fixed-width integers
#include <cstring>  // memcpy for bit casts

#include "engine/host_device.h"  // EMBER_HOST_DEVICE

namespace ember {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::F16:
      return 2;
    case DType::U8:
      return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::BF16:
      return "bf16";
    case DType::F16:
      return "f16";
    case DType::I32:
      return "i32";
    case DType::I64:
      return "i64";
    case DType::U8:
      return "u8";
  }
  return "?";
}
DType dtype_from_name(const char* name);  // "f32", "float32", "bf16", ...; throws if unknown

constexpr bool is_floating(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16;
}
// Types that ember's arithmetic kernels compute in today.
constexpr bool is_compute_float(DType t) {
  return t == DType::F32 || t == DType::F64;
}

// ---- 16-bit floats, as raw bits ------------------------------------------------------------

EMBER_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
EMBER_HOST_DEVICE inline float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// bfloat16 is the top half of a float32; round to nearest even, keep NaN a NaN.
EMBER_HOST_DEVICE inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
EMBER_HOST_DEVICE inline float bf16_bits_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
EMBER_HOST_DEVICE inline uint16_t float_to_f16_bits(float f) {
  uint32_t u = float_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (a < 0x38800000u) {  // result is subnormal or zero: shift the mantissa, round to even
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest
    uint32_t exponent = a >> 23;
    uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exponent;  // value = mantissa * 2^(exponent-150) = result * 2^-24
    uint32_t halfway = 1u << (shift - 1);
    uint32_t result = mantissa >> shift;
    uint32_t rest = mantissa & ((1u << shift) - 1);
    if (rest > halfway || (rest == halfway && (result & 1u))) ++result;
    return static_cast<uint16_t>(sign | result);
  }
  // normal: rebias the exponent and round the mantissa from 23 to 10 bits
  uint32_t r = a - 0x38000000u;  // exponent bias 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}
EMBER_HOST_DEVICE inline float f16_bits_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {
    if (mantissa == 0) return bits_float(sign);
    // subnormal: value = mantissa * 2^-24
    float v = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Storage types for 16-bit floats on the host: just the bits, with explicit conversions.
struct BFloat16 {
  uint16_t bits;
  EMBER_HOST_DEVICE static BFloat16 from_float(float f) { return {float_to_bf16_bits(f)}; }
  EMBER_HOST_DEVICE float to_float() const { return bf16_bits_to_float(bits); }
};
struct Half {
  uint16_t bits;
  EMBER_HOST_DEVICE static Half from_float(float f) { return {float_to_f16_bits(f)}; }
  EMBER_HOST_DEVICE float to_float() const { return f16_bits_to_float(bits); }
};

// The DType of a C++ element type: dtype_of<float>() == DType::F32.
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<BFloat16>() {
  return DType::BF16;
}
template <>
constexpr DType dtype_of<Half>() {
  return DType::F16;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::U8;
}

}  // namespace ember

// Element conversion between any two of ember's dtypes, for both backends. 16-bit floats go
// through float; floats to u8 go through int64 (wrapping like PyTorch's, rather than the
// undefined behaviour of a direct conversion of a negative float).
#pragma once

#include <cstdint>
#include <type_traits>  // std::is_same_v, std::is_floating_point_v

#include "engine/dtype.h"        // Half, BFloat16
#include "engine/host_device.h"  // EMBER_HOST_DEVICE

namespace ember::kernels {

template <typename T>
constexpr bool is_half_type = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

template <typename To, typename From>
EMBER_HOST_DEVICE inline To cast_value(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_half_type<From>) {
    return cast_value<To>(v.to_float());
  } else if constexpr (is_half_type<To>) {
    return To::from_float(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, uint8_t> && std::is_floating_point_v<From>) {
    return static_cast<uint8_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace ember::kernels

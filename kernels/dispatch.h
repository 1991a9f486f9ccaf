// Runtime dtype -> C++ type. A kernel family lists the types it is compiled for:
//
//   dispatch<float, double>(dtype, "softmax", [&](auto tag) {
//     using T = typename decltype(tag)::type;
//     ...
//   });
//
// An unlisted dtype throws an error naming the kernel and the dtype. The engine checks dtypes
// before it calls a kernel, so reaching that error is a bug in ember, not in the user's code.
#pragma once

#include "engine/dtype.h"  // DType, dtype_of
#include "engine/error.h"  // ember::Error

namespace ember::kernels {

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename... Types, typename Body>
void dispatch(DType dtype, const char* kernel, Body&& body) {
  bool matched = ((dtype == dtype_of<Types>() ? (body(TypeTag<Types>{}), true) : false) || ...);
  if (!matched)
    throw Error(str_cat("kernel ", kernel, ": dtype ", dtype_name(dtype),
                        " is not supported by this backend"));
}

}  // namespace ember::kernels

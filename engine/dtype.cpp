#include "engine/dtype.h"

#include <string>

#include "engine/error.h"  // ember::Error

namespace ember {

DType dtype_from_name(const char* name) {
  const std::string n = name;
  if (n == "f32" || n == "float32" || n == "float") return DType::F32;
  if (n == "f64" || n == "float64" || n == "double") return DType::F64;
  if (n == "bf16" || n == "bfloat16") return DType::BF16;
  if (n == "f16" || n == "float16" || n == "half") return DType::F16;
  if (n == "i32" || n == "int32") return DType::I32;
  if (n == "i64" || n == "int64") return DType::I64;
  if (n == "u8" || n == "uint8" || n == "bool") return DType::U8;
  throw Error(str_cat("unknown dtype \"", n, "\": expected f32, f64, bf16, f16, i32, i64 or u8"));
}

}  // namespace ember

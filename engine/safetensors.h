// safetensors: the file format of ember's weights and checkpoints, the one PyTorch, JAX and the
// Hugging Face tools read and write, so a model trained here loads there and back.
//
// Layout of a file (all integers little-endian):
//
//   [8 bytes]  u64 N, the length of the header
//   [N bytes]  UTF-8 JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//              ..., "__metadata__": {"key": "value", ...}}   (the metadata is optional)
//              padded with spaces so that the data section starts on an 8-byte boundary
//   [rest]     the data section: each tensor's elements, row-major, at bytes [b, e) of it
//
// Writers here lay tensors out back to back, widest element type first (in the caller's order
// within one width), so every tensor starts at a multiple of its element size and readers that
// map the file can use it in place. Readers accept any order and gaps, but never overlaps.
//
// Every check a reader needs is made before a byte of tensor data is copied: a malformed file
// gets an error naming the file and what is wrong, never a read past its end or silent zeros.
// Saving is atomic: a crash or error leaves either the old file or the new one, never a torn one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ember {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The contents of a safetensors file: its tensors (on the CPU, in the order of their bytes in
// the file) and its string metadata.
struct SafetensorsFile {
  std::string source;  // the file's path (or the name given to an in-memory buffer)
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const;
  // The tensor called `name`; an error that lists some of the names present if there is none.
  const Tensor& at(const std::string& name) const;
  std::vector<std::string> names() const;
};

// Writes `tensors` (any device, dtype and layout: each is copied to the CPU contiguously) and
// `metadata` to `path`, atomically: the bytes go to a new file beside `path`, are flushed to
// the disk, and only then renamed over `path`. On any error `path` is left as it was and the
// temporary file is removed. Names must be unique and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor of the file at `path` onto the CPU. Accepts F32, F64, BF16, F16, I64, I32
// and U8 (BOOL reads as U8); any other dtype is an error that names it.
SafetensorsFile load_safetensors(const std::string& path);

// The same in memory: the bytes of a safetensors file, and back. `source` names the buffer in
// error messages.
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
SafetensorsFile parse_safetensors(const void* bytes, size_t size,
                                  const std::string& source = "safetensors buffer");
SafetensorsFile parse_safetensors(const std::string& bytes,
                                  const std::string& source = "safetensors buffer");

// Name -> tensor, for lookups by name (a state dict).
std::map<std::string, Tensor> to_map(const SafetensorsFile& file);

// The format's name of a dtype: "F32", "BF16", "U8", ...
const char* safetensors_dtype_name(DType dtype);

}  // namespace ember

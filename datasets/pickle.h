// A reader for the few pickles ember needs: CIFAR-10's python batches (cifar-10-batches-py, as
// torchvision downloads them), written by Python 2's cPickle with protocol 2.
//
// A pickle is a program for a small stack machine; Python's own reader will import and call
// whatever the program names, which makes opening an untrusted pickle with it unsafe. This
// reader runs no code. It knows the opcodes those files use and builds plain values; the only
// names a pickle may refer to are the four it needs to describe a numpy array:
//   numpy.core.multiarray._reconstruct (numpy._core.multiarray in numpy 2) and numpy.ndarray:
//       REDUCE makes an empty array, and BUILD fills it from its state tuple
//       (version, shape, dtype, fortran_order, raw bytes);
//   numpy.dtype: REDUCE with ("u1", 0, 1) and BUILD with (3, "|", ...) give the element type;
//   _codecs.encode: how Python 3 writes a bytes object at protocol 2 (text encoded as latin-1).
// Anything else (another name, an unknown opcode, a truncated file) is an error naming the file
// and the offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ember::data {

struct PickleValue {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    Bytes,  // a Python 2 str or a Python 3 bytes
    Text,   // a unicode string, held as UTF-8
    Tuple,
    List,
    Dict,
    Array,   // a numpy array
    DType,   // a numpy dtype (only inside an array's construction)
    Global,  // one of the recognised names above (only inside an array's construction)
  };
  Kind kind = Kind::None;
  int64_t integer = 0;  // Bool (0 or 1), Int
  double real = 0;      // Float
  // Bytes and Text: the string; Array: the elements' raw bytes, little-endian; DType: its code
  // ("u1", "i8"); Global: "module.name".
  std::string bytes;
  // Tuple and List: the items; Dict: key, value, key, value, ... in the order they were set.
  std::vector<const PickleValue*> items;
  // Array: its shape and element type ("u1", "i4", "i8", "f4", ...: kind and byte count).
  std::vector<int64_t> shape;
  std::string dtype;
  // DType: '|' (no byte order), '<' (little-endian) or '=' (the writer's); Array and DType: set
  // once BUILD has run.
  char byte_order = '|';
  bool built = false;

  bool is_string() const { return kind == Kind::Bytes || kind == Kind::Text; }
  // The value stored under the string key `key` in a Dict (the last one set), or nullptr.
  const PickleValue* get(const std::string& key) const;
  // The string keys of a Dict, in order (for messages).
  std::vector<std::string> keys() const;
  // "int", "list of 10000", "numpy array u1 (10000, 3072)", ...
  std::string describe() const;
};

// The values of one pickle. They refer to each other by pointer (a pickle may share one value
// between several places), so they live here, together; move it, never copy it.
class Pickle {
 public:
  // Runs the pickle in `data`; `name` (the file) appears in every error.
  static Pickle parse(const uint8_t* data, size_t size, const std::string& name);
  static Pickle parse(const std::vector<uint8_t>& bytes, const std::string& name) {
    return parse(bytes.data(), bytes.size(), name);
  }

  const PickleValue& root() const { return *root_; }

 private:
  std::vector<std::unique_ptr<PickleValue>> values_;
  const PickleValue* root_ = nullptr;
};

}  // namespace ember::data

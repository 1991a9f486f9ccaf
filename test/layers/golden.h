// The deterministic fill shared with test/golden/make_golden.py (test/golden/README.md has the
// contract): every parameter, buffer and input gets values from a hash of its name and element
// index, so ember and PyTorch build identical models and inputs without storing weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ember.h"
#include "engine/safetensors.h"
#include "layers/module.h"

namespace ember::golden {

// A file of the golden data (test/golden/data).
inline std::string path(const std::string& relative) {
  return std::string(EMBER_GOLDEN_DIR) + "/" + relative;
}

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// u in [0, 1) for element i of the tensor named `name`.
inline double unit(const std::string& name, uint64_t i) {
  return static_cast<double>(splitmix64(fnv1a64(name) + i) >> 11) * 0x1.0p-53;
}

inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The value of element i of a parameter or buffer named `name` with this shape.
inline double parameter_value(const std::string& name, const Shape& shape, uint64_t i) {
  const double u = unit(name, i), s = 2 * u - 1;
  if (shape.size() >= 2) {
    const double fan = static_cast<double>(shape_numel(shape) / shape[0]);
    return s / std::sqrt(fan);
  }
  if (ends_with(name, "running_var")) return 0.5 + u;
  if (ends_with(name, "running_mean")) return 0.1 * s;
  if (ends_with(name, "weight")) return 1 + 0.1 * s;
  return 0.1 * s;
}

// A filled tensor (f64, CPU) for a parameter/buffer, or an input (name "input": plain s).
inline Tensor filled(const std::string& name, const Shape& shape, bool is_input = false) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = is_input ? 2 * unit(name, i) - 1 : parameter_value(name, shape, i);
  return tensor(v, shape);
}

inline Tensor input(const Shape& shape) {
  return filled("input", shape, true);
}

// Fills every floating parameter and buffer of a module by its state_dict name; integer
// buffers (num_batches_tracked) are set to 0.
inline void fill_module(nn::Module& module) {
  NoGrad no_grad;
  for (auto& [name, t] : module.state_dict()) {
    Tensor target = t;
    if (t.dim() == 0 || !is_floating(t.dtype()))
      target.zero_();
    else
      target.copy_(filled(name, t.shape()));
  }
}

inline std::vector<int64_t> targets(int64_t n, int64_t classes) {
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[i] = static_cast<int64_t>(splitmix64(fnv1a64("target") + static_cast<uint64_t>(i)) %
                                static_cast<uint64_t>(classes));
  return t;
}

inline std::vector<int64_t> sample_indices(const std::string& name, int64_t numel, int count) {
  std::vector<int64_t> idx;
  for (int j = 0; j < count; ++j)
    idx.push_back(static_cast<int64_t>(splitmix64(fnv1a64(name) + 1000003 + j) %
                                       static_cast<uint64_t>(numel)));
  return idx;
}

}  // namespace ember::golden

// Flat parameter storage: all of a model's parameters in one contiguous buffer per dtype and
// device, and their gradients in a second buffer of the same layout.
//
//   params buffer 0:  [ conv1.weight | bn1.weight | bn1.bias | ... | fc.bias ]
//   grads  buffer 0:  [ same offsets                                        ]
//
// Each parameter is a view of its slice (Tensor::set_data), so the handles that modules and
// optimizers hold stay valid, and its .grad is a view of the matching gradient slice, into
// which backward accumulates in place. Averaging a whole model is then one collective on one
// buffer, a gradient bucket is a range of offsets, and an optimizer update is one kernel over
// the buffer. The ParameterLayout records where each parameter lives; dist/ reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember::nn {

// Where one parameter lives.
struct ParameterSlot {
  std::string name;    // dotted state_dict name
  int buffer = 0;      // index into ParameterLayout::buffers()
  int64_t offset = 0;  // in elements, from the start of the buffer
  int64_t numel = 0;
  Shape shape;
  int group = 0;  // a tag chosen when flattening (e.g. which parameters dAD treats exactly)
};

// One dtype/device's buffers: 1-d, contiguous, of the same length.
struct FlatBuffer {
  DType dtype = DType::F32;
  Device device;
  Tensor params;
  Tensor grads;
};

class ParameterLayout {
 public:
  ParameterLayout(std::vector<ParameterSlot> slots, std::vector<FlatBuffer> buffers)
      : slots_(std::move(slots)), buffers_(std::move(buffers)) {}

  // In registration order (the order of Module::named_parameters).
  const std::vector<ParameterSlot>& slots() const { return slots_; }
  const std::vector<FlatBuffer>& buffers() const { return buffers_; }
  // The slot of a parameter by name; an error names the parameter.
  const ParameterSlot& slot(const std::string& name) const;
  // Elements in all buffers together.
  int64_t numel() const;

 private:
  std::vector<ParameterSlot> slots_;
  std::vector<FlatBuffer> buffers_;
};

// Moves the named parameters into flat buffers (one per dtype and device, in order of first
// appearance) and points each parameter and its gradient at its slice. Existing values and
// gradients are copied; parameters without a gradient get zeros.
ParameterLayout flatten(const std::vector<std::pair<std::string, Tensor>>& parameters,
                        const std::vector<int>& groups);

}  // namespace ember::nn

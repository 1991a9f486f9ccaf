// Shapes and strides: the arithmetic behind views and broadcasting.
//
// A tensor's element (i0, i1, ..., in) lives at storage offset  offset + sum_d i_d * stride[d]
// (in elements). A contiguous tensor has row-major strides: stride[last] = 1 and
// stride[d] = stride[d + 1] * size[d + 1]. Views change shape, strides and offset, never data.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3]"

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// A dim in [-ndim, ndim) made non-negative; errors name the op.
int normalize_dim(int64_t dim, int64_t ndim, const char* op);

// The broadcast of two shapes (numpy rules: align right, sizes equal or 1), or an error naming
// the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read a tensor of `shape`/`strides` as if expanded to `target` (stride 0 along
// broadcast dims). `target` must be a broadcast of `shape`.
Shape expanded_strides(const Shape& shape, const Shape& strides, const Shape& target);

// Shape with one -1 replaced by what makes numel match, or an error naming the op.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op);

// Strides that view (shape, strides) as new_shape without copying, if any exist (PyTorch's
// rule: dimensions may merge or split only within runs that are contiguous with each other).
bool view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape,
                  Shape& new_strides);

}  // namespace ember

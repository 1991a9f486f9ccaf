// Reductions on CUDA over x viewed as [outer, axis, inner]: sum, mean, max, min, the index of
// the max/min, variance and top-k. Each kernel is written once against AxisSchedule (see
// axis_reduce.cuh: a block per contiguous row, or a thread per row).
//
// To agree with the CPU reference: sums accumulate in double (int64 for integers); max/min
// carry (value, index) pairs, so that the first NaN wins and ties go to the lowest index
// whatever order the threads combine in; top-k takes k passes over the row, each selecting the
// first element, in the output order, among those after the previous pass's pick.
#include <cstdint>
#include <limits>
#include <type_traits>  // std::conditional_t

#include "kernels/cuda/axis_reduce.cuh"  // AxisSchedule, launch_along_axis, ValueIndex
#include "kernels/cuda/launch.cuh"       // as_cuda_stream
#include "kernels/dispatch.h"            // dispatch
#include "kernels/elementwise_math.h"    // is_nan

namespace ember::cuda {

namespace {

// Accumulator for a sum: double for floats, int64 for integers (as on the CPU).
template <typename T>
using SumType = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T, bool kBlockPerRow>
__global__ void sum_kernel(ReduceOp op, DType out_dtype, const T* x, void* y, int64_t outer,
                           int64_t axis, int64_t inner) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  using Sum = SumType<T>;
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const T* row_data = x + row_start(row, axis, inner);
    Sum partial = 0;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
      partial += static_cast<Sum>(row_data[j * inner]);
    const Sum total = Schedule::combine(partial, Sum(0), Add{});
    if (!Schedule::writes_row()) continue;
    if (out_dtype == DType::I64) {
      static_cast<int64_t*>(y)[row] = static_cast<int64_t>(total);
    } else if (op == ReduceOp::Mean) {
      const double mean = axis > 0 ? static_cast<double>(total) / static_cast<double>(axis) : kNaN;
      static_cast<T*>(y)[row] = static_cast<T>(mean);
    } else {
      static_cast<T*>(y)[row] = static_cast<T>(total);
    }
  }
}

// The better of two (value, index) pairs for arg-max (is_max) or arg-min: a NaN beats any
// number, and between NaNs or between equal values the lower index wins. This is a total
// order, so any combining order finds what the CPU's left-to-right scan finds.
template <typename T>
struct BetterOf {
  bool is_max;
  __device__ bool beats(const ValueIndex<T>& candidate, const ValueIndex<T>& current) const {
    const bool candidate_nan = kernels::is_nan(candidate.value);
    if (kernels::is_nan(current.value)) return candidate_nan && candidate.index < current.index;
    if (candidate_nan) return true;
    if (candidate.value == current.value) return candidate.index < current.index;
    return is_max ? candidate.value > current.value : candidate.value < current.value;
  }
  __device__ ValueIndex<T> operator()(const ValueIndex<T>& a, const ValueIndex<T>& b) const {
    return beats(b, a) ? b : a;
  }
};

// Arg-max/arg-min; also plain max/min with indices == nullptr. values may be null.
template <typename T, bool kBlockPerRow>
__global__ void arg_reduce_kernel(bool is_max, const T* x, T* values, int64_t* indices,
                                  int64_t outer, int64_t axis, int64_t inner) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  const BetterOf<T> better_of{is_max};
  // Loses to every element: the worst value, at an index past the end.
  const ValueIndex<T> identity{is_max ? lowest_value<T>() : highest_value<T>(),
                               std::numeric_limits<int64_t>::max()};
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const T* row_data = x + row_start(row, axis, inner);
    ValueIndex<T> best = identity;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
      best = better_of(best, ValueIndex<T>{row_data[j * inner], j});
    best = Schedule::combine(best, identity, better_of);
    if (!Schedule::writes_row()) continue;
    if (indices) indices[row] = best.index;
    if (values) values[row] = best.value;
  }
}

// Two passes, as on the CPU: the mean, then the sum of squared deviations from it.
template <typename T, bool kBlockPerRow>
__global__ void variance_kernel(const T* x, T* y, int64_t outer, int64_t axis, int64_t inner,
                                double correction) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const T* row_data = x + row_start(row, axis, inner);
    double partial = 0;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step())
      partial += static_cast<double>(row_data[j * inner]);
    const double mean = Schedule::combine(partial, 0.0, Add{}) / static_cast<double>(axis);
    double squares = 0;
    for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step()) {
      const double deviation = static_cast<double>(row_data[j * inner]) - mean;
      squares += deviation * deviation;
    }
    squares = Schedule::combine(squares, 0.0, Add{});
    if (!Schedule::writes_row()) continue;
    const double divisor = static_cast<double>(axis) - correction;
    y[row] = static_cast<T>(divisor > 0 ? squares / divisor : kNaN);
  }
}

// The output order of top-k, the CPU's comparator: the larger (smaller) value first, NaN
// counting as the largest value, the lower index first on ties. As a combine function it keeps
// the earlier of two candidates; index -1 marks "no candidate".
template <typename T>
struct TopkOrder {
  bool largest;
  __device__ bool comes_first(const ValueIndex<T>& a, const ValueIndex<T>& b) const {
    const bool a_nan = kernels::is_nan(a.value), b_nan = kernels::is_nan(b.value);
    if (a_nan && b_nan) return a.index < b.index;
    if (a_nan || b_nan) return largest ? a_nan : b_nan;
    if (a.value != b.value) return largest ? a.value > b.value : a.value < b.value;
    return a.index < b.index;
  }
  __device__ ValueIndex<T> operator()(const ValueIndex<T>& a, const ValueIndex<T>& b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    return comes_first(b, a) ? b : a;
  }
};

// k selection passes over each row: O(k * axis) work, any axis length, no extra memory.
template <typename T, bool kBlockPerRow>
__global__ void topk_kernel(const T* x, T* values, int64_t* indices, int64_t outer, int64_t axis,
                            int64_t inner, int64_t k, bool largest) {
  using Schedule = AxisSchedule<kBlockPerRow>;
  const TopkOrder<T> order{largest};
  const ValueIndex<T> none{T(0), -1};
  const int64_t rows = outer * inner;
  for (int64_t row = Schedule::first_row(); row < rows; row += Schedule::row_step()) {
    const T* row_data = x + row_start(row, axis, inner);
    const int64_t o = row / inner, i = row % inner;
    ValueIndex<T> previous = none;  // the last pick; candidates must come after it
    for (int64_t rank = 0; rank < k; ++rank) {
      ValueIndex<T> best = none;
      for (int64_t j = Schedule::first_element(); j < axis; j += Schedule::element_step()) {
        const ValueIndex<T> candidate{row_data[j * inner], j};
        if (previous.index >= 0 && !order.comes_first(previous, candidate)) continue;
        best = order(best, candidate);
      }
      best = Schedule::combine(best, none, order);
      if (Schedule::writes_row()) {
        const int64_t destination = (o * k + rank) * inner + i;
        values[destination] = best.value;
        indices[destination] = best.index;
      }
      previous = best;
    }
  }
}

}  // namespace

void reduce(ReduceOp op, DType dtype, DType out_dtype, const void* x, void* y, int64_t outer,
            int64_t axis, int64_t inner, Stream stream) {
  dispatch<float, int32_t, int64_t, uint8_t>(dtype, "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
      launch_along_axis(sum_kernel<T, true>, sum_kernel<T, false>, outer, axis, inner,
                        as_cuda_stream(stream), op, out_dtype, in, y, outer, axis, inner);
    } else {  // max/min: arg_reduce without the index
      launch_along_axis(arg_reduce_kernel<T, true>, arg_reduce_kernel<T, false>, outer, axis, inner,
                        as_cuda_stream(stream), op == ReduceOp::Max, in, static_cast<T*>(y),
                        static_cast<int64_t*>(nullptr), outer, axis, inner);
    }
  });
}

void arg_reduce(ArgReduceOp op, DType dtype, const void* x, void* values, int64_t* indices,
                int64_t outer, int64_t axis, int64_t inner, Stream stream) {
  dispatch<float, int32_t, int64_t, uint8_t>(dtype, "arg_reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_along_axis(arg_reduce_kernel<T, true>, arg_reduce_kernel<T, false>, outer, axis, inner,
                      as_cuda_stream(stream), op == ArgReduceOp::Max, static_cast<const T*>(x),
                      static_cast<T*>(values), indices, outer, axis, inner);
  });
}

void variance(DType dtype, const void* x, void* y, int64_t outer, int64_t axis, int64_t inner,
              double correction, Stream stream) {
  dispatch<float>(dtype, "variance", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_along_axis(variance_kernel<T, true>, variance_kernel<T, false>, outer, axis, inner,
                      as_cuda_stream(stream), static_cast<const T*>(x), static_cast<T*>(y), outer,
                      axis, inner, correction);
  });
}

void topk(DType dtype, const void* x, void* values, int64_t* indices, int64_t outer, int64_t axis,
          int64_t inner, int64_t k, bool largest, Stream stream) {
  if (k == 0) return;
  dispatch<float, int32_t, int64_t>(dtype, "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_along_axis(topk_kernel<T, true>, topk_kernel<T, false>, outer, axis, inner,
                      as_cuda_stream(stream), static_cast<const T*>(x), static_cast<T*>(values),
                      indices, outer, axis, inner, k, largest);
  });
}

}  // namespace ember::cuda

// Reductions on the CPU over x viewed as [outer, axis, inner]: sum, mean, max, min, the index
// of the max/min, variance and top-k. Floating sums accumulate in double: this is the
// reference the CUDA results are measured against.
#include <algorithm>  // std::partial_sort
#include <cmath>      // NAN
#include <limits>
#include <type_traits>  // std::conditional_t
#include <vector>

#include "kernels/cpu/cpu_kernels.h"   // declarations
#include "kernels/cpu/strided_loop.h"  // kParallelGrain
#include "kernels/dispatch.h"          // dispatch
#include "kernels/elementwise_math.h"  // is_nan

namespace ember::cpu {

namespace {
// Accumulator for a sum: double for floats, int64 for integers.
template <typename T>
using SumType = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
}  // namespace

void reduce(ReduceOp op, DType dtype, DType out_dtype, const void* x, void* y, int64_t outer,
            int64_t axis, int64_t inner, Stream) {
  dispatch<float, double, int32_t, int64_t, uint8_t>(dtype, "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T* p = in + o * axis * inner + i;
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        SumType<T> acc = 0;
        for (int64_t j = 0; j < axis; ++j) acc += p[j * inner];
        if (out_dtype == DType::I64) {
          static_cast<int64_t*>(y)[r] = static_cast<int64_t>(acc);
        } else if (op == ReduceOp::Mean) {
          static_cast<T*>(y)[r] =
              axis > 0 ? static_cast<T>(acc / static_cast<double>(axis)) : static_cast<T>(NAN);
        } else {
          static_cast<T*>(y)[r] = static_cast<T>(acc);
        }
      } else {  // Max / Min: the first NaN wins
        T best = p[0];
        for (int64_t j = 1; j < axis && !kernels::is_nan(best); ++j) {
          T v = p[j * inner];
          if (kernels::is_nan(v) || (op == ReduceOp::Max ? v > best : v < best)) best = v;
        }
        static_cast<T*>(y)[r] = best;
      }
    }
  });
}

void arg_reduce(ArgReduceOp op, DType dtype, const void* x, void* values, int64_t* indices,
                int64_t outer, int64_t axis, int64_t inner, Stream) {
  dispatch<float, double, int32_t, int64_t, uint8_t>(dtype, "arg_reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T* p = in + o * axis * inner + i;
      int64_t best_index = 0;
      T best = p[0];
      for (int64_t j = 1; j < axis && !kernels::is_nan(best); ++j) {
        T v = p[j * inner];
        if (kernels::is_nan(v) || (op == ArgReduceOp::Max ? v > best : v < best)) {
          best = v;
          best_index = j;
        }
      }
      indices[r] = best_index;
      if (values) static_cast<T*>(values)[r] = best;
    }
  });
}

void variance(DType dtype, const void* x, void* y, int64_t outer, int64_t axis, int64_t inner,
              double correction, Stream) {
  dispatch<float, double>(dtype, "variance", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T* p = in + o * axis * inner + i;
      double mean = 0;
      for (int64_t j = 0; j < axis; ++j) mean += p[j * inner];
      mean /= static_cast<double>(axis);
      double squares = 0;
      for (int64_t j = 0; j < axis; ++j) {
        double d = p[j * inner] - mean;
        squares += d * d;
      }
      const double divisor = static_cast<double>(axis) - correction;
      out[r] = static_cast<T>(divisor > 0 ? squares / divisor
                                          : std::numeric_limits<double>::quiet_NaN());
    }
  });
}

void topk(DType dtype, const void* x, void* values, int64_t* indices, int64_t outer, int64_t axis,
          int64_t inner, int64_t k, bool largest, Stream) {
  dispatch<float, double, int32_t, int64_t>(dtype, "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(values);
    const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * axis >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T* p = in + o * axis * inner + i;
      std::vector<int64_t> order(axis);
      for (int64_t j = 0; j < axis; ++j) order[j] = j;
      // "a comes first": the larger (smaller) value, lower index on ties; NaN counts as the
      // largest value, as in PyTorch
      auto first = [&](int64_t a, int64_t b) {
        T va = p[a * inner], vb = p[b * inner];
        bool na = kernels::is_nan(va), nb = kernels::is_nan(vb);
        if (na && nb) return a < b;
        if (na || nb) return largest ? na : nb;
        if (va != vb) return largest ? va > vb : va < vb;
        return a < b;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), first);
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dst = (o * k + j) * inner + i;
        out[dst] = p[order[j] * inner];
        indices[dst] = order[j];
      }
    }
  });
}

}  // namespace ember::cpu

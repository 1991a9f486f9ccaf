// Matrix products on the CPU through OpenBLAS (cblas_sgemm / cblas_dgemm), one call per batch
// entry, on OpenMP's threads (kernels/cpu/blas.h says why OpenBLAS runs single-threaded): a batch
// with an entry for every thread shares out whole entries, otherwise each entry's product is
// split into blocks of rows or columns.
#include <omp.h>  // omp_get_max_threads

#include "kernels/cpu/blas.h"         // gemm_on_this_thread, gemm_on_all_threads
#include "kernels/cpu/cpu_kernels.h"  // declarations
#include "kernels/dispatch.h"         // dispatch

namespace ember::cpu {

void gemm(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
          const GemmOperand& a, const GemmOperand& b, double beta, void* c, int64_t ldc,
          int64_t c_batch_stride, bool /*allow_tf32: CUDA only*/, Stream) {
  if (m == 0 || n == 0) return;
  // BLAS wants a leading dimension >= 1 even when a matrix has no elements.
  auto ld = [](int64_t v) { return v > 0 ? v : int64_t(1); };
  dispatch<float, double>(dtype, "gemm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto entry = [&](int64_t i, auto&& product) {
      product(a.transpose, b.transpose, m, n, k, static_cast<T>(alpha),
              static_cast<const T*>(a.ptr) + i * a.batch_stride, ld(a.ld),
              static_cast<const T*>(b.ptr) + i * b.batch_stride, ld(b.ld), static_cast<T>(beta),
              static_cast<T*>(c) + i * c_batch_stride, ld(ldc));
    };
    const bool whole_entries =
        batch >= omp_get_max_threads() && batch * m * n * k >= kParallelGemmWork;
    if (whole_entries) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < batch; ++i) entry(i, gemm_on_this_thread<T>);
    } else {
      for (int64_t i = 0; i < batch; ++i) entry(i, gemm_on_all_threads<T>);
    }
  });
}

}  // namespace ember::cpu

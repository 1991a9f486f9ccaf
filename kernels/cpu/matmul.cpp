// Matrix products on the CPU through OpenBLAS (cblas_sgemm / cblas_dgemm), one call per batch
// entry. OpenBLAS parallelizes each product itself.
#include <cblas.h>  // cblas_sgemm, cblas_dgemm

#include "kernels/cpu/cpu_kernels.h"  // declarations
#include "kernels/dispatch.h"         // dispatch

namespace ember::cpu {

void gemm(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
          const GemmOperand& a, const GemmOperand& b, double beta, void* c, int64_t ldc,
          int64_t c_batch_stride, bool /*allow_tf32: CUDA only*/, Stream) {
  if (m == 0 || n == 0) return;
  const CBLAS_TRANSPOSE ta = a.transpose ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = b.transpose ? CblasTrans : CblasNoTrans;
  // BLAS wants a leading dimension >= 1 even when a matrix has no elements.
  auto ld = [](int64_t v) { return static_cast<int>(v > 0 ? v : 1); };
  dispatch<float, double>(dtype, "gemm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < batch; ++i) {
      const T* pa = static_cast<const T*>(a.ptr) + i * a.batch_stride;
      const T* pb = static_cast<const T*>(b.ptr) + i * b.batch_stride;
      T* pc = static_cast<T*>(c) + i * c_batch_stride;
      if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(alpha), pa, ld(a.ld), pb,
                    ld(b.ld), static_cast<float>(beta), pc, ld(ldc));
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, pa, ld(a.ld), pb, ld(b.ld), beta, pc,
                    ld(ldc));
      }
    }
  });
}

}  // namespace ember::cpu

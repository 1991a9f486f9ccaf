// EMBER_HOST_DEVICE marks small inline functions that both the CPU kernels (g++) and the CUDA
// kernels (nvcc) compile, so that the two backends share one formula for each op.
#pragma once

#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif

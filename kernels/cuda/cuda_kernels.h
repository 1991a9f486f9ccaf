// The CUDA kernels: one host function per KernelTable entry, each launching its kernels on the
// stream it is given. Declared with the function types of kernels/kernel_table.h, so that a
// signature that drifts from the contract fails to compile. No CUDA header here: the engine
// sees only these declarations (and, in engine/runtime.cpp, just the last two).
#pragma once

#include "kernels/kernel_table.h"  // signatures

namespace ember::cuda {

using namespace ember::kernels;

CopyFn copy;      // copy.cu
FillFn fill;      // copy.cu
ArangeFn arange;  // copy.cu
UnaryFn unary;    // elementwise.cu
UnaryBackwardFn unary_backward;
BinaryFn binary;
WhereFn where;
ReduceFn reduce;  // reduce.cu
ArgReduceFn arg_reduce;
VarianceFn variance;
TopkFn topk;
GemmFn gemm;        // matmul.cu
SoftmaxFn softmax;  // softmax.cu
SoftmaxBackwardFn softmax_backward;
CrossEntropyFn cross_entropy;
CrossEntropyBackwardFn cross_entropy_backward;
IndexSelectFn index_select;  // index.cu
IndexAddFn index_add;
GatherFn gather;
ScatterAddFn scatter_add;
RandomUniformFn random_uniform;  // random.cu
RandomNormalFn random_normal;
DropoutFn dropout;
// conv
Conv2dFn conv2d;  // conv.cu
Conv2dBackwardDataFn conv2d_backward_data;
Conv2dBackwardFilterFn conv2d_backward_filter;

// pool
MaxPool2dFn max_pool2d;  // pool.cu
MaxPool2dBackwardFn max_pool2d_backward;
AvgPool2dFn avg_pool2d;
AvgPool2dBackwardFn avg_pool2d_backward;
AdaptiveAvgPool2dFn adaptive_avg_pool2d;
AdaptiveAvgPool2dBackwardFn adaptive_avg_backward;

// norm
NormStatisticsFn norm_statistics;  // norm.cu
NormForwardFn norm_forward;
NormBackwardFn norm_backward;

// optim
SgdStepFn sgd_step;  // optim.cu
AdamStepFn adam_step;

// The table and runtime the engine registers for DeviceType::CUDA (runtime.cpp).
const KernelTable& kernel_table();
const DeviceRuntime& runtime();

}  // namespace ember::cuda

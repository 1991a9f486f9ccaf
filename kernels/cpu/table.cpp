// The CPU's KernelTable: what the engine calls for tensors on DeviceType::CPU.
#include "kernels/cpu/cpu_kernels.h"  // the kernels

namespace ember::cpu {

const KernelTable& kernel_table() {
  static const KernelTable table = [] {
    KernelTable t{};
    t.copy = copy;
    t.fill = fill;
    t.arange = arange;
    t.unary = unary;
    t.unary_backward = unary_backward;
    t.binary = binary;
    t.where = where;
    t.reduce = reduce;
    t.arg_reduce = arg_reduce;
    t.variance = variance;
    t.topk = topk;
    t.gemm = gemm;
    t.softmax = softmax;
    t.softmax_backward = softmax_backward;
    t.cross_entropy = cross_entropy;
    t.cross_entropy_backward = cross_entropy_backward;
    t.index_select = index_select;
    t.index_add = index_add;
    t.gather = gather;
    t.scatter_add = scatter_add;
    t.random_uniform = random_uniform;
    t.random_normal = random_normal;
    t.dropout = dropout;
    return t;
  }();
  return table;
}

}  // namespace ember::cpu

// The CPU's KernelTable: what the engine calls for tensors on DeviceType::CPU.
#include "kernels/cpu/cpu_kernels.h"  // the kernels

namespace ember::cpu {

const KernelTable& kernel_table() {
  static const KernelTable table = EMBER_KERNEL_TABLE(ember::cpu);
  return table;
}

}  // namespace ember::cpu

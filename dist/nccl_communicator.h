// The NCCL backend of Communicator (see communicator.h): CUDA tensors, one GPU per rank. Built
// only with CUDA (EMBER_WITH_NCCL); make_communicator("nccl", ...) says so otherwise.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace ember::dist {

// Rank 0 creates NCCL's unique id and shares it through `store`; every rank then joins on
// `device`. Two ranks on one GPU are refused with an error that says to use --dist-backend gloo.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Store> store, int rank,
                                                     int size, CommunicatorOptions options,
                                                     Device device);

}  // namespace ember::dist

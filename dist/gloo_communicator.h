// The Gloo backend of Communicator (see communicator.h): CPU tensors over TCP, and CUDA tensors
// staged through pinned host memory so that several processes can share one GPU.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace ember::dist {

// Connects `size` ranks through `store` (every rank calls it); throws TimeoutError naming the
// ranks that did not arrive within options.timeout.
std::shared_ptr<Communicator> make_gloo_communicator(std::shared_ptr<Store> store, int rank,
                                                     int size, CommunicatorOptions options = {});

}  // namespace ember::dist

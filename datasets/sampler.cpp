#include "datasets/sampler.h"

namespace ember::data {}  // namespace ember::data

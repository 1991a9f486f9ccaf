#include "apps/common/run_log.h"

namespace ember::app {}  // namespace ember::app

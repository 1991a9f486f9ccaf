#include "apps/common/progress.h"

namespace ember::app {}  // namespace ember::app

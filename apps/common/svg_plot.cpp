#include "apps/common/svg_plot.h"

namespace ember::app {}  // namespace ember::app

// Line charts as SVG files, drawn by ember itself (no plotting library): the loss and accuracy
// curves of a run, and bin/ember_plot's overlays of several runs.
#pragma once

#include <string>
#include <vector>

#include "apps/common/run_log.h"

namespace ember::app {

struct Series {
  std::string label;      // legend entry
  std::vector<double> x;  // same length as y; NaN values break the line
  std::vector<double> y;
  bool dashed = false;
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
};

// A complete SVG document: axes with rounded ticks, grid, one coloured polyline per series
// (markers where a series has few points), and a legend.
std::string render_svg(const Chart& chart);
void write_svg(const std::string& path, const Chart& chart);  // atomically

// The standard plots of one run into `folder`: loss.svg (train/val/test loss per epoch) and
// accuracy.svg (train/val/test top-1, test top-5), series without any value left out.
void write_run_plots(const std::string& folder, const std::vector<EpochRecord>& records,
                     const std::string& title);

}  // namespace ember::app

// Line charts as SVG files, drawn by ember itself (no plotting library): the loss and accuracy
// curves of a run, and bin/ember_plot's overlays of several runs.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "apps/common/run_log.h"

namespace ember::app {

struct Series {
  std::string label;      // legend entry
  std::vector<double> x;  // same length as y; NaN values break the line
  std::vector<double> y;
  bool dashed = false;
  int colour = -1;  // index into the palette; -1: the series' own position in the chart
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  // The y axis never extends past these, however it is rounded (0 and 100 for percentages);
  // NaN: no limit.
  double y_min_limit = NAN, y_max_limit = NAN;
};

// Tick values between `low` and `high`, a "nice" step apart (1, 2 or 5 times a power of ten),
// about `target_count` of them; `integers`: steps of at least 1 (epochs).
double nice_step(double low, double high, int target_count = 6, bool integers = false);
std::vector<double> nice_ticks(double low, double high, int target_count = 6,
                               bool integers = false);

// &, <, >, " and ' as XML entities.
std::string xml_escape(const std::string& text);

// A complete SVG document: axes with rounded ticks, grid, one coloured polyline per series
// (markers where a series has few points), and a legend.
std::string render_svg(const Chart& chart);
void write_svg(const std::string& path, const Chart& chart);  // atomically

// The standard plots of one run into `folder`: loss.svg (train/val/test loss per epoch) and
// accuracy.svg (train/val/test top-1, test top-5), series without any value left out.
void write_run_plots(const std::string& folder, const std::vector<EpochRecord>& records,
                     const std::string& title);

// ---- several runs in one chart (bin/ember_plot) ----

struct RunCurves {
  std::string name;      // the legend entry: summary.json's "name", else the folder's name
  std::string csv_path;  // where the records came from
  std::vector<EpochRecord> records;
};

// Reads a run folder (its epochs.csv and, when there is one, summary.json) or an epochs.csv
// given directly. A missing folder or file is an error naming it.
RunCurves read_run(const std::string& run_folder_or_csv);

// What overlay_runs can draw: every column of epochs.csv but epoch, and "loss" (train and test
// loss) and "acc" (train and test top-1).
const std::vector<std::string>& overlay_metrics();

// One curve per run of `metric` against the epoch (two per run, train dashed and test solid,
// for "loss" and "acc"); accuracies in percent. Runs without any value of the metric are left
// out and, when `runs_left_out` is given, named there. An unknown metric (the error lists the
// valid ones) or one without any value in any run is an error.
Chart overlay_runs(const std::vector<RunCurves>& runs, const std::string& metric,
                   const std::string& title = "",
                   std::vector<std::string>* runs_left_out = nullptr);

}  // namespace ember::app

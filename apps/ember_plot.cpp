// bin/ember_plot: several training runs in one chart, an SVG file.
//
//   bin/ember_plot runs/cifar-a runs/cifar-b                  test top-1 of both -> comparison.svg
//   bin/ember_plot runs/*/ --metric loss -o loss.svg          train (dashed) and test loss
//   bin/ember_plot old/epochs.csv runs/new --metric train_acc --title "augmentation or not"
//
// Each run is a run folder (its epochs.csv, and the "name" in its summary.json for the legend,
// else the folder's name) or an epochs.csv itself. The drawing is apps/common/svg_plot.h's.
#include <CLI/CLI.hpp>  // command-line flags

#include <cstdio>
#include <string>
#include <vector>

#include "apps/common/svg_plot.h"

int main(int argc, char** argv) {
  using namespace ember::app;
  CLI::App app{"ember_plot: overlay the curves of several training runs in one SVG chart"};
  std::vector<std::string> runs;
  std::string output = "comparison.svg", metric = "test_acc", title;
  app.add_option("RUN_DIR", runs,
                 "run folders (holding epochs.csv, as bin/train_* write them) or epochs.csv "
                 "files")
      ->required();
  app.add_option("-o,--output", output, "the SVG file to write")->capture_default_str();
  std::string columns;
  for (const std::string& name : overlay_metrics())
    if (name != "loss" && name != "acc") columns += (columns.empty() ? "" : ", ") + name;
  app.add_option("--metric", metric,
                 "what to draw: a column of epochs.csv (" + columns +
                     "), or loss (train and test loss), or acc (train and test top-1)")
      ->capture_default_str();
  app.add_option("--title", title, "the chart's title (default: the metric's name)");
  app.footer(
      "Examples:\n"
      "  bin/ember_plot runs/cifar-resnet18-20240501-120000 runs/cifar-resnet18-20240502-090000\n"
      "  bin/ember_plot runs/mnist-* --metric loss -o mnist-loss.svg\n"
      "  bin/ember_plot runs/a/epochs.csv runs/b --metric ms_per_step --title \"step time\"\n"
      "The legend names each run by the \"name\" in its summary.json, else by its folder.");
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<RunCurves> curves;
    for (const std::string& run : runs) curves.push_back(read_run(run));
    std::vector<std::string> left_out;
    const Chart chart = overlay_runs(curves, metric, title, &left_out);
    for (const std::string& name : left_out)
      std::fprintf(stderr, "ember_plot: %s has no %s values, left out\n", name.c_str(),
                   metric.c_str());
    write_svg(output, chart);
    std::printf("ember_plot: wrote %s (%s of %zu run%s)\n", output.c_str(), metric.c_str(),
                curves.size() - left_out.size(), curves.size() - left_out.size() == 1 ? "" : "s");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_plot: %s\n", e.what());
    return 1;
  }
  return 0;
}

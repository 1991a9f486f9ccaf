// bin/ember_plot's work: reading run folders (or their epochs.csv) and overlaying one metric of
// several runs, with the errors a user can make.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "apps/common/svg_plot.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;

namespace {

// A run folder `name` under `dir` with `epochs` epochs; top-1 rises by 0.1 per epoch from
// `first_acc`, and test top-5 is only measured when `with_top5`.
std::string make_run(const TemporaryDirectory& dir, const std::string& name, int epochs,
                     double first_acc, bool with_top5 = false) {
  const std::string folder = dir.file(name);
  make_run_folder(folder);
  std::vector<EpochRecord> records;
  for (int e = 1; e <= epochs; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train_loss = 2.0 / e;
    r.test_loss = 2.5 / e;
    r.train_acc = first_acc + 0.1 * (e - 1) + 0.05;
    r.test_acc = first_acc + 0.1 * (e - 1);
    if (with_top5) r.test_acc5 = 0.9;
    r.ms_per_step = 40 + e;
    records.push_back(r);
  }
  write_epoch_csv(folder + "/epochs.csv", records);
  return folder;
}

std::vector<std::string> labels(const Chart& chart) {
  std::vector<std::string> names;
  for (const Series& s : chart.series) names.push_back(s.label);
  return names;
}

}  // namespace

TEST_CASE("a run is named by its folder or by the name in its summary") {
  TemporaryDirectory dir;
  const std::string a = make_run(dir, "cifar-a", 3, 0.2);
  RunCurves run = read_run(a);
  CHECK(run.name == "cifar-a");
  CHECK(run.csv_path == a + "/epochs.csv");
  REQUIRE(run.records.size() == 3);
  CHECK(run.records[2].test_acc == doctest::Approx(0.4));
  CHECK(read_run(a + "/").name == "cifar-a");
  CHECK(read_run(a + "/epochs.csv").name == "cifar-a");  // the CSV itself: its folder's name

  std::filesystem::copy_file(a + "/epochs.csv", dir.file("baseline.csv"));
  CHECK(read_run(dir.file("baseline.csv")).name == "baseline");  // another name: the file's

  write_json(a + "/summary.json", {{"name", "resnet18 lr 0.1"}, {"epochs", 3}});
  CHECK(read_run(a).name == "resnet18 lr 0.1");
  CHECK(read_run(a + "/epochs.csv").name == "resnet18 lr 0.1");
  write_json(a + "/summary.json", {{"epochs", 3}});  // no name: the folder's
  CHECK(read_run(a).name == "cifar-a");
}

TEST_CASE("reading a run names what is missing or broken") {
  TemporaryDirectory dir;
  CHECK(error_of([&] { read_run(dir.file("nowhere")); }) ==
        dir.file("nowhere") + ": no such folder or file");
  std::filesystem::create_directory(dir.file("empty"));
  CHECK(error_of([&] { read_run(dir.file("empty")); }) ==
        dir.file("empty") + ": no epochs.csv in this folder");
  const std::string a = make_run(dir, "a", 2, 0.5);
  std::ofstream(a + "/summary.json") << "{\"name\": ";
  CHECK(contains(error_of([&] { read_run(a); }), a + "/summary.json: not valid JSON"));
  std::filesystem::remove(a + "/summary.json");
  std::ofstream(a + "/epochs.csv", std::ios::app) << "3,x,,,,,,,,,,,\n";
  CHECK(contains(error_of([&] { read_run(a); }), a + "/epochs.csv: line 4: train_loss \"x\""));
}

TEST_CASE("overlaying runs draws one curve per run in percent for accuracies") {
  TemporaryDirectory dir;
  const std::vector<RunCurves> runs = {read_run(make_run(dir, "a", 3, 0.2)),
                                       read_run(make_run(dir, "b", 5, 0.3))};
  const Chart chart = overlay_runs(runs, "test_acc");
  CHECK(chart.title == "test top-1 accuracy");
  CHECK(chart.x_label == "epoch");
  CHECK(chart.y_label == "test top-1 accuracy (%)");
  CHECK(labels(chart) == std::vector<std::string>{"a", "b"});
  CHECK(chart.series[0].x == std::vector<double>{1, 2, 3});
  CHECK(chart.series[1].y[4] == doctest::Approx(70));
  CHECK(chart.series[0].colour == 0);
  CHECK(chart.series[1].colour == 1);
  CHECK(chart.y_max_limit == 100);

  const Chart steps = overlay_runs(runs, "ms_per_step", "step time");
  CHECK(steps.title == "step time");
  CHECK(steps.series[1].y[4] == 45);  // not scaled
  CHECK(std::isnan(steps.y_max_limit));
}

TEST_CASE("overlaying loss or acc gives train dashed and test solid per run") {
  TemporaryDirectory dir;
  const std::vector<RunCurves> runs = {read_run(make_run(dir, "a", 3, 0.2)),
                                       read_run(make_run(dir, "b", 3, 0.3))};
  const Chart loss = overlay_runs(runs, "loss");
  CHECK(labels(loss) == std::vector<std::string>{"a train", "a test", "b train", "b test"});
  CHECK(loss.series[0].dashed);
  CHECK(!loss.series[1].dashed);
  CHECK(loss.series[2].colour == 1);
  CHECK(loss.series[3].colour == 1);
  CHECK(loss.series[1].y[1] == 1.25);
  const Chart acc = overlay_runs(runs, "acc");
  CHECK(labels(acc) == std::vector<std::string>{"a train", "a test", "b train", "b test"});
  CHECK(acc.series[0].y[0] == doctest::Approx(25));
  CHECK(acc.y_label == "top-1 accuracy (%)");
}

TEST_CASE("overlay errors list the metrics and name runs without values") {
  TemporaryDirectory dir;
  const std::vector<RunCurves> runs = {read_run(make_run(dir, "a", 3, 0.2)),
                                       read_run(make_run(dir, "b", 3, 0.3, true))};
  const std::string unknown = error_of([&] { overlay_runs(runs, "accuracy"); });
  CHECK(contains(unknown,
                 "unknown metric \"accuracy\": choose one of train_loss, val_loss, "
                 "test_loss, train_acc, val_acc, test_acc, test_acc5, epoch_s, "
                 "ms_per_step, rank_mean_test_acc, bytes_per_step, comm_ms_per_step, loss, acc"));
  const std::string empty = error_of([&] { overlay_runs(runs, "val_acc"); });
  CHECK(contains(empty, "val_acc: no values in any run"));
  CHECK(contains(empty, runs[0].csv_path));
  CHECK(contains(empty, runs[1].csv_path));
  // Only run b measured top-5: a is left out and named.
  std::vector<std::string> left_out;
  const Chart top5 = overlay_runs(runs, "test_acc5", "", &left_out);
  CHECK(labels(top5) == std::vector<std::string>{"b"});
  CHECK(top5.series[0].colour == 1);  // b keeps its colour
  CHECK(left_out == std::vector<std::string>{"a"});
  CHECK(contains(error_of([] { overlay_runs({}, "loss"); }), "loss: no values in any run"));
}

TEST_CASE("two runs with the same folder name stay apart in the legend") {
  TemporaryDirectory dir;
  std::filesystem::create_directory(dir.file("monday"));
  std::filesystem::create_directory(dir.file("tuesday"));
  const std::vector<RunCurves> runs = {read_run(make_run(dir, "monday/cifar", 2, 0.2)),
                                       read_run(make_run(dir, "tuesday/cifar", 2, 0.3))};
  CHECK(labels(overlay_runs(runs, "test_acc")) == std::vector<std::string>{"cifar", "cifar (2)"});
}

TEST_CASE("an overlay renders to an svg file with every run in the legend") {
  TemporaryDirectory dir;
  const std::vector<RunCurves> runs = {read_run(make_run(dir, "a&b", 4, 0.2)),
                                       read_run(make_run(dir, "c", 4, 0.3))};
  write_svg(dir.file("comparison.svg"), overlay_runs(runs, "test_acc"));
  const std::string svg = ember::test::read_file(dir.file("comparison.svg"));
  CHECK(contains(svg, ">a&amp;b</text>"));
  CHECK(contains(svg, ">c</text>"));
  CHECK(contains(svg, ">test top-1 accuracy</text>"));
}

// What a training run leaves behind in its folder (--out, default runs/NAME-DATE/):
//
//   epochs.csv    one row per epoch: epoch,train_loss,val_loss,test_loss,train_acc,val_acc,
//                 test_acc,test_acc5,epoch_s,ms_per_step (accuracies are fractions in [0, 1];
//                 an empty cell means "not measured", e.g. val_* without --val-size)
//   summary.json  the arguments, ember's version and commit, device, thread count, final and
//                 best top-1/top-5, throughput
//   loss.svg, accuracy.svg   the curves per epoch (apps/common/svg_plot.h)
//   checkpoint_last.safetensors, checkpoint_best.safetensors
//
// Files are written atomically (temporary file, then rename): a run killed at any moment
// leaves the previous complete version, never half a file.
#pragma once

#include <cmath>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::app {

// ember's version, recorded in every run summary beside the commit (EMBER_COMMIT).
constexpr const char* kEmberVersion = "0.5.0";

// One epoch's figures. NaN marks a value that was not measured (written as an empty cell).
struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  double train_loss = NAN, val_loss = NAN, test_loss = NAN;
  double train_acc = NAN, val_acc = NAN, test_acc = NAN, test_acc5 = NAN;
  double epoch_s = NAN, ms_per_step = NAN;
  // Distributed runs only (empty cells otherwise): the mean over ranks of each replica's own
  // test top-1 (test_acc is that of the averaged replicas), and per training step the payload
  // bytes this rank handed to collectives and the time they took.
  double rank_mean_test_acc = NAN, bytes_per_step = NAN, comm_ms_per_step = NAN;
};

// The CSV header line, without newline.
const std::string& epoch_csv_header();

// Rewrites `path` with the header and every record (atomically).
void write_epoch_csv(const std::string& path, const std::vector<EpochRecord>& records);
// Reads a file written by write_epoch_csv (also the shorter files of ember 0.4, whose header
// ends at ms_per_step); errors name the file and line.
std::vector<EpochRecord> read_epoch_csv(const std::string& path);

// runs/<name>-<YYYYmmdd-HHMMSS>, relative to the working folder, in local time; when that folder
// exists already, the first of <...>-2, <...>-3, ... that does not.
std::string default_run_folder(const std::string& name);
// The same under `parent` for the moment `when`.
std::string default_run_folder(const std::string& name, std::time_t when,
                               const std::string& parent);
// Creates `folder` (and parents); an error names it when it cannot.
void make_run_folder(const std::string& folder);

// Facts about this build and machine for summaries: ember's version and commit, compiler, the
// device's description, OpenMP threads, host name, start time (ISO 8601).
nlohmann::json run_environment(const std::string& device_description);

// `when` as ISO 8601 local time with the offset from UTC: "2024-05-01T14:03:22+02:00".
std::string iso8601_local_time(std::time_t when);

// Writes `value` as indented JSON (atomically).
void write_json(const std::string& path, const nlohmann::json& value);

// The shortest text that reads back as exactly `value` ("0.1", "1e-05", "3"); "" for NaN.
std::string format_csv_number(double value);

}  // namespace ember::app

#include "apps/common/run_log.h"

#include <omp.h>     // omp_get_max_threads
#include <unistd.h>  // gethostname

#include <charconv>  // to_chars: the shortest text that reads back as the same double
#include <cstdlib>   // strtod, strtoll
#include <filesystem>
#include <system_error>

#include "datasets/archive.h"  // read_file_bytes, write_file_atomically
#include "ember_commit.h"      // EMBER_COMMIT, written at build time
#include "engine/error.h"
#include "engine/runtime.h"  // cuda_compiled

namespace ember::app {

namespace fs = std::filesystem;

namespace {

constexpr size_t kColumns = 13;
// ember 0.4 wrote the first 10 columns only; such files still read.
constexpr size_t kSingleProcessColumns = 10;

// The record's figures in the order of the CSV columns after "epoch".
constexpr double EpochRecord::*kFigures[kColumns - 1] = {
    &EpochRecord::train_loss,         &EpochRecord::val_loss,       &EpochRecord::test_loss,
    &EpochRecord::train_acc,          &EpochRecord::val_acc,        &EpochRecord::test_acc,
    &EpochRecord::test_acc5,          &EpochRecord::epoch_s,        &EpochRecord::ms_per_step,
    &EpochRecord::rank_mean_test_acc, &EpochRecord::bytes_per_step, &EpochRecord::comm_ms_per_step};

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',')
      cells.emplace_back();
    else
      cells.back() += c;
  }
  return cells;
}

void write_text_atomically(const std::string& path, const std::string& text) {
  data::write_file_atomically(path, text.data(), text.size());
}

}  // namespace

const std::string& epoch_csv_header() {
  static const std::string header =
      "epoch,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,test_acc5,epoch_s,"
      "ms_per_step,rank_mean_test_acc,bytes_per_step,comm_ms_per_step";
  return header;
}

std::string format_csv_number(double value) {
  if (std::isnan(value)) return "";
  char text[64];
  const std::to_chars_result result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

void write_epoch_csv(const std::string& path, const std::vector<EpochRecord>& records) {
  std::string text = epoch_csv_header() + "\n";
  for (const EpochRecord& record : records) {
    text += std::to_string(record.epoch);
    for (size_t column = 1; column < kColumns; ++column)
      text += "," + format_csv_number(record.*kFigures[column - 1]);
    text += "\n";
  }
  write_text_atomically(path, text);
}

std::vector<EpochRecord> read_epoch_csv(const std::string& path) {
  const std::vector<uint8_t> bytes = data::read_file_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  std::vector<EpochRecord> records;
  size_t line_number = 0, begin = 0, columns = kColumns;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // written on Windows
    const auto fail = [&](const std::string& what) {
      throw Error(str_cat(path, ": line ", line_number, ": ", what));
    };
    if (line_number == 1) {
      const std::vector<std::string> names = split_commas(epoch_csv_header());
      const std::vector<std::string> short_names(names.begin(),
                                                 names.begin() + kSingleProcessColumns);
      if (split_commas(line) == short_names)
        columns = kSingleProcessColumns;
      else if (line != epoch_csv_header())
        fail(str_cat("expected the header \"", epoch_csv_header(), "\", got \"", line, "\""));
      continue;
    }
    if (trim(line).empty()) continue;
    const std::vector<std::string> cells = split_commas(line);
    if (cells.size() != columns)
      fail(str_cat("expected ", columns, " columns, got ", cells.size()));
    EpochRecord record;
    const std::string epoch = trim(cells[0]);
    char* stop = nullptr;
    record.epoch = std::strtoll(epoch.c_str(), &stop, 10);
    if (epoch.empty() || *stop != '\0') fail(str_cat("epoch \"", epoch, "\" is not an integer"));
    for (size_t column = 1; column < columns; ++column) {
      const std::string cell = trim(cells[column]);
      if (cell.empty()) continue;  // not measured: stays NaN
      const double value = std::strtod(cell.c_str(), &stop);
      if (*stop != '\0') {
        const std::string name = split_commas(epoch_csv_header())[column];
        fail(str_cat(name, " \"", cell, "\" is not a number"));
      }
      record.*kFigures[column - 1] = value;
    }
    records.push_back(record);
  }
  if (line_number == 0) throw Error(str_cat(path, ": empty, expected the header line"));
  return records;
}

std::string default_run_folder(const std::string& name, std::time_t when,
                               const std::string& parent) {
  std::tm local{};
  localtime_r(&when, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  const std::string base = (fs::path(parent) / str_cat(name, "-", stamp)).string();
  std::string folder = base;
  std::error_code ignored;
  for (int suffix = 2; fs::exists(folder, ignored); ++suffix) folder = str_cat(base, "-", suffix);
  return folder;
}

std::string default_run_folder(const std::string& name) {
  return default_run_folder(name, std::time(nullptr), "runs");
}

void make_run_folder(const std::string& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error(str_cat(folder, ": cannot create the run folder (", ec.message(), ")"));
  if (!fs::is_directory(folder, ec))
    throw Error(str_cat(folder, ": cannot create the run folder (a file has that name)"));
}

std::string iso8601_local_time(std::time_t when) {
  std::tm local{};
  localtime_r(&when, &local);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local);
  // strftime writes the offset as +0200; ISO 8601's extended format wants +02:00.
  std::string stamp = text;
  if (stamp.size() >= 5) stamp.insert(stamp.size() - 2, ":");
  return stamp;
}

nlohmann::json run_environment(const std::string& device_description) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
#if defined(__clang__)
  const std::string compiler = str_cat("clang ", __clang_version__);
#elif defined(__GNUC__)
  const std::string compiler = str_cat("gcc ", __VERSION__);
#else
  const std::string compiler = __VERSION__;
#endif
  // NDEBUG is what CMake's Release and RelWithDebInfo builds define and Debug does not.
#ifdef NDEBUG
  const char* build_type = "release";
#else
  const char* build_type = "debug";
#endif
  return {
      {"ember_version", kEmberVersion},
      {"commit", EMBER_COMMIT},
      {"compiler", compiler},
      {"build_type", build_type},
      {"cuda_compiled", cuda_compiled()},
      {"device", device_description},
      {"omp_max_threads", omp_get_max_threads()},
      {"hostname", host},
      {"start_time", iso8601_local_time(std::time(nullptr))},
  };
}

void write_json(const std::string& path, const nlohmann::json& value) {
  // Text that is not UTF-8 (a host name, say) is replaced rather than failing the whole file.
  write_text_atomically(path,
                        value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace ember::app

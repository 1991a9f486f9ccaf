// What a run leaves in its folder: epochs.csv written and read back exactly, its errors, run
// folder names, the environment of a summary and atomic JSON files.
#include <doctest/doctest.h>
#include <stdlib.h>  // setenv, unsetenv
#include <time.h>    // tzset

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>

#include "apps/common/run_log.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::error_of;
using ember::test::read_file;
using ember::test::TemporaryDirectory;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Bit-for-bit equality, NaN equal to NaN.
bool same(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
}

// Runs `body` with the time zone `zone` (a POSIX TZ string), then restores the previous one.
template <typename Body>
void in_time_zone(const char* zone, Body&& body) {
  const char* previous = std::getenv("TZ");
  const std::string saved = previous ? previous : "";
  setenv("TZ", zone, 1);
  tzset();
  body();
  if (previous)
    setenv("TZ", saved.c_str(), 1);
  else
    unsetenv("TZ");
  tzset();
}

constexpr std::time_t kMay1st2024 = 1714572202;  // 2024-05-01 14:03:22 UTC

const char* const kHeader =
    "epoch,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,test_acc5,epoch_s,ms_per_step,"
    "rank_mean_test_acc,bytes_per_step,comm_ms_per_step";
// ember 0.4's header (single-process columns only).
const char* const kShortHeader =
    "epoch,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,test_acc5,epoch_s,ms_per_step";

}  // namespace

TEST_CASE("epochs.csv has the agreed header and writes empty cells for NaN") {
  CHECK(epoch_csv_header() == kHeader);
  TemporaryDirectory dir;
  EpochRecord first;
  first.epoch = 1;
  first.train_loss = 0.5;
  first.test_loss = 0.25;
  first.train_acc = 0.875;
  first.test_acc = 0.1;
  first.test_acc5 = 1;
  first.epoch_s = 12.5;
  first.ms_per_step = 3e-05;
  first.bytes_per_step = 124024;
  EpochRecord second;
  second.epoch = 2;
  write_epoch_csv(dir.file("epochs.csv"), {first, second});
  // The shortest decimal forms, as Python's repr() writes them: 0.1 stays "0.1".
  CHECK(read_file(dir.file("epochs.csv")) == std::string(kHeader) +
                                                 "\n"
                                                 "1,0.5,,0.25,0.875,,0.1,1,12.5,3e-05,,124024,\n"
                                                 "2,,,,,,,,,,,,\n");
  // Nothing but the file itself is left in the folder (no temporary file).
  CHECK(dir.entries() == std::vector<std::string>{"epochs.csv"});
}

TEST_CASE("epochs.csv reads back every double exactly") {
  TemporaryDirectory dir;
  const double awkward[] = {1.0 / 3,
                            0.1 + 0.2,
                            1e-300,
                            123456789.123456789,
                            std::nextafter(1.0, 2.0),
                            -2.5e-7,
                            std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::max(),
                            NAN};
  std::vector<EpochRecord> records;
  for (int e = 0; e < 9; ++e) {
    EpochRecord r;
    r.epoch = e + 1;
    double* fields[] = {&r.train_loss,         &r.val_loss,       &r.test_loss,
                        &r.train_acc,          &r.val_acc,        &r.test_acc,
                        &r.test_acc5,          &r.epoch_s,        &r.ms_per_step,
                        &r.rank_mean_test_acc, &r.bytes_per_step, &r.comm_ms_per_step};
    for (int f = 0; f < 12; ++f) *fields[f] = awkward[(e + f) % 9];
    records.push_back(r);
  }
  write_epoch_csv(dir.file("epochs.csv"), records);
  const std::vector<EpochRecord> back = read_epoch_csv(dir.file("epochs.csv"));
  REQUIRE(back.size() == records.size());
  for (size_t i = 0; i < back.size(); ++i) {
    CHECK(back[i].epoch == records[i].epoch);
    CHECK(same(back[i].train_loss, records[i].train_loss));
    CHECK(same(back[i].val_loss, records[i].val_loss));
    CHECK(same(back[i].test_loss, records[i].test_loss));
    CHECK(same(back[i].train_acc, records[i].train_acc));
    CHECK(same(back[i].val_acc, records[i].val_acc));
    CHECK(same(back[i].test_acc, records[i].test_acc));
    CHECK(same(back[i].test_acc5, records[i].test_acc5));
    CHECK(same(back[i].epoch_s, records[i].epoch_s));
    CHECK(same(back[i].ms_per_step, records[i].ms_per_step));
    CHECK(same(back[i].rank_mean_test_acc, records[i].rank_mean_test_acc));
    CHECK(same(back[i].bytes_per_step, records[i].bytes_per_step));
    CHECK(same(back[i].comm_ms_per_step, records[i].comm_ms_per_step));
  }
  // Rewriting replaces the file whole.
  write_epoch_csv(dir.file("epochs.csv"), {records[0]});
  CHECK(read_epoch_csv(dir.file("epochs.csv")).size() == 1);
  CHECK(dir.entries() == std::vector<std::string>{"epochs.csv"});
}

TEST_CASE("epochs.csv written by hand or elsewhere is read: spaces and CRLF line ends") {
  TemporaryDirectory dir;
  write_text(dir.file("e.csv"), std::string(kHeader) +
                                    "\r\n"
                                    "1, 2.5 ,,,0.5,,,,,,,,\r\n"
                                    "\r\n"
                                    "2,1e-3,,,,,,,,7,,,\r\n");
  const std::vector<EpochRecord> records = read_epoch_csv(dir.file("e.csv"));
  REQUIRE(records.size() == 2);
  CHECK(records[0].epoch == 1);
  CHECK(records[0].train_loss == 2.5);
  CHECK(records[0].train_acc == 0.5);
  CHECK(std::isnan(records[0].val_loss));
  CHECK(records[1].train_loss == 0.001);
  CHECK(records[1].ms_per_step == 7);
  // ember 0.4's files, without the distributed columns, still read.
  write_text(dir.file("short.csv"), std::string(kShortHeader) + "\n1,2.5,,,0.5,,,,,7\n");
  const std::vector<EpochRecord> old = read_epoch_csv(dir.file("short.csv"));
  REQUIRE(old.size() == 1);
  CHECK(old[0].ms_per_step == 7);
  CHECK(std::isnan(old[0].bytes_per_step));
  // A file with the header alone holds no epochs yet.
  write_text(dir.file("empty.csv"), std::string(kHeader) + "\n");
  CHECK(read_epoch_csv(dir.file("empty.csv")).empty());
}

TEST_CASE("epochs.csv errors name the file and the line") {
  TemporaryDirectory dir;
  const std::string path = dir.file("epochs.csv");
  const std::string header = std::string(kHeader) + "\n";

  write_text(path, "epoch,loss\n1,2\n");
  std::string message = error_of([&] { read_epoch_csv(path); });
  CHECK(contains(message, path + ": line 1: expected the header"));
  CHECK(contains(message, "got \"epoch,loss\""));

  write_text(path, header + "1,,,,,,,,,,,,\n2,0.5,,,\n");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }),
                 path + ": line 3: expected 13 columns, got 5"));

  write_text(path, header + "1,abc,,,,,,,,,,,\n");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }),
                 path + ": line 2: train_loss \"abc\" is not a number"));

  write_text(path, header + "1,,,,,,,,,12 s,,,\n");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }),
                 path + ": line 2: ms_per_step \"12 s\" is not a number"));

  write_text(path, header + "1.5,,,,,,,,,,,,\n");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }),
                 path + ": line 2: epoch \"1.5\" is not an integer"));

  write_text(path, header + ",,,,,,,,,,,,\n");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }), path + ": line 2: epoch \"\""));

  write_text(path, "");
  CHECK(contains(error_of([&] { read_epoch_csv(path); }), path + ": empty"));

  CHECK(contains(error_of([&] { read_epoch_csv(dir.file("absent.csv")); }),
                 dir.file("absent.csv") + ": no such file"));
}

TEST_CASE("writing epochs.csv into a missing folder is an error naming the file") {
  TemporaryDirectory dir;
  const std::string path = dir.file("no/such/folder/epochs.csv");
  CHECK(contains(error_of([&] { write_epoch_csv(path, {}); }), path));
}

TEST_CASE("the default run folder is named after the run and the local time") {
  TemporaryDirectory dir;
  const std::string parent = dir.file("runs");
  in_time_zone("UTC0", [&] {
    CHECK(default_run_folder("cifar", kMay1st2024, parent) == parent + "/cifar-20240501-140322");
  });
  // Central European summer time is two hours ahead of UTC in May.
  in_time_zone("CET-1CEST,M3.5.0,M10.5.0/3", [&] {
    const std::string first = default_run_folder("cifar", kMay1st2024, parent);
    CHECK(first == parent + "/cifar-20240501-160322");
    // Taken names get -2, -3, ...
    make_run_folder(first);
    CHECK(default_run_folder("cifar", kMay1st2024, parent) == first + "-2");
    make_run_folder(first + "-2");
    CHECK(default_run_folder("cifar", kMay1st2024, parent) == first + "-3");
  });
  // Without a parent: runs/ in the working folder.
  const std::regex pattern(R"(runs/mnist-\d{8}-\d{6}(-\d+)?)");
  CHECK(std::regex_match(default_run_folder("mnist"), pattern));
}

TEST_CASE("make_run_folder creates parents and names a folder it cannot create") {
  TemporaryDirectory dir;
  const std::string nested = dir.file("runs/a/b");
  make_run_folder(nested);
  CHECK(std::filesystem::is_directory(nested));
  make_run_folder(nested);  // already there: fine
  write_text(dir.file("taken"), "a file");
  CHECK(contains(error_of([&] { make_run_folder(dir.file("taken")); }),
                 dir.file("taken") + ": cannot create the run folder"));
  CHECK(contains(error_of([&] { make_run_folder(dir.file("taken/sub")); }),
                 dir.file("taken/sub") + ": cannot create the run folder"));
}

TEST_CASE("times are ISO 8601 with the offset from UTC") {
  in_time_zone("UTC0",
               [] { CHECK(iso8601_local_time(kMay1st2024) == "2024-05-01T14:03:22+00:00"); });
  in_time_zone("CET-1CEST,M3.5.0,M10.5.0/3",
               [] { CHECK(iso8601_local_time(kMay1st2024) == "2024-05-01T16:03:22+02:00"); });
  in_time_zone("EST5",
               [] { CHECK(iso8601_local_time(kMay1st2024) == "2024-05-01T09:03:22-05:00"); });
  in_time_zone("IST-5:30",
               [] { CHECK(iso8601_local_time(kMay1st2024) == "2024-05-01T19:33:22+05:30"); });
}

TEST_CASE("the run environment records version commit compiler device threads host and time") {
  const nlohmann::json env = run_environment("cpu (2 threads)");
  CHECK(env.at("ember_version") == "0.5.0");
  CHECK(std::string(kEmberVersion) == "0.5.0");
  CHECK(!env.at("commit").get<std::string>().empty());
  CHECK(!env.at("compiler").get<std::string>().empty());
  const std::string build = env.at("build_type");
  CHECK((build == "release" || build == "debug"));
  CHECK(env.at("cuda_compiled").is_boolean());
  CHECK(env.at("device") == "cpu (2 threads)");
  CHECK(env.at("omp_max_threads").get<int>() >= 1);
  CHECK(env.at("hostname").is_string());
  const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2})");
  CHECK(std::regex_match(env.at("start_time").get<std::string>(), iso));
}

TEST_CASE("write_json writes indented JSON that reads back and replaces the old file") {
  TemporaryDirectory dir;
  const std::string path = dir.file("summary.json");
  write_json(path, {{"name", "first"}});
  nlohmann::json value = {
      {"name", "run <1> & \"2\""}, {"best_top1", 0.9312}, {"args", {{"lr", 0.1}}}};
  write_json(path, value);
  const std::string text = read_file(path);
  CHECK(nlohmann::json::parse(text) == value);
  CHECK(contains(text, "\n  \"args\": {\n    \"lr\": 0.1\n  }"));
  CHECK(text.back() == '\n');
  CHECK(dir.entries() == std::vector<std::string>{"summary.json"});
  CHECK(contains(error_of([&] { write_json(dir.file("missing/summary.json"), value); }),
                 dir.file("missing/summary.json")));
}

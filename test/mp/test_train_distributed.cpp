// bin/train_cifar as several real processes over Gloo on loopback: the seed's process model
// (--dist-url with --nproc), local SGD's averaging schedule seen in the counted payload bytes,
// synchronous data parallel, and a rank that dies.
#include <doctest/doctest.h>
#include <signal.h>  // kill

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/common/run_log.h"   // read_epoch_csv
#include "apps/test_train_data.h"  // write_small_cifar
#include "mp/processes.h"
#include "temporary_files.h"

using namespace ember;
using ember::test::contains;
using ember::test::Finished;
using ember::test::free_port;
using ember::test::run;
using ember::test::TemporaryDirectory;

namespace {

const std::string kTrainCifar = std::string(EMBER_BIN_DIR) + "/train_cifar";

// cifar_cnn's parameters in f32: what one average of the model hands to the all-reduce.
constexpr double kModelBytes = 62006 * 4;

// 200 training and 40 test images: with -b 20 over 2 processes, 10 steps of 10 images per epoch
// on each rank.
std::string small_cifar(const TemporaryDirectory& dir) {
  const std::string folder = dir.file("cifar");
  test::write_small_cifar(folder, 40);
  return folder;
}

std::vector<std::string> two_processes(const std::string& data, const std::string& out) {
  return {kTrainCifar,
          data,
          "--dist-url",
          "tcp://127.0.0.1:" + std::to_string(free_port()),
          "--dist-backend",
          "gloo",
          "--nproc",
          "2",
          "--epochs",
          "2",
          "-b",
          "20",
          "-j",
          "0",
          "--records-per-batch",
          "40",
          "--out",
          out,
          "--dist-timeout",
          "30"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("train_cifar on two processes averages at the local sgd schedule's steps") {
  TemporaryDirectory dir;
  const std::string data = small_cifar(dir), out = dir.file("run");
  const Finished f = run(with(two_processes(data, out), {"--local-steps", "3"}), 120);
  INFO(f.out, f.err);
  REQUIRE(f.code == 0);
  // Rank 0 speaks for the run; rank 1 trains quietly.
  CHECK(contains(f.out, "[rank 0] Epoch: [2/2] done"));
  CHECK(!contains(f.out, "[rank 1] Epoch"));
  CHECK(contains(f.out,
                 "local SGD (local steps 3, initial steps 0 single_process) over 2 "
                 "processes (gloo), batch 10 per process"));

  // Steps 1..10 average at 3, 6, 9 and steps 11..20 at 12, 15, 18: three averages of the whole
  // model in each epoch's 10 steps, and nothing else is communicated during training.
  const std::vector<app::EpochRecord> records = app::read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 2);
  for (const app::EpochRecord& r : records) {
    CHECK(r.bytes_per_step == doctest::Approx(3 * kModelBytes / 10).epsilon(1e-12));
    CHECK(r.rank_mean_test_acc >= 0);
    CHECK(r.comm_ms_per_step >= 0);
  }
  const nlohmann::json summary = read_json(out + "/summary.json");
  CHECK(summary["distributed"]["algorithm"] == "local_sgd");
  CHECK(summary["distributed"]["world_size"] == 2);
  CHECK(summary["communication"]["collectives_per_step"].get<double>() == doctest::Approx(0.3));
}

TEST_CASE("train_cifar's initial phase averages after every step before the local steps") {
  TemporaryDirectory dir;
  const std::string data = small_cifar(dir), out = dir.file("run");
  // multiple_processes: steps 1..4 each average; then t % 3 == 0: 6, 9 | 12, 15, 18.
  const Finished f =
      run(with(two_processes(data, out), {"--local_steps", "3", "--initial_steps", "4",
                                          "--initial_step_method", "multiple_processes"}),
          120);
  INFO(f.out, f.err);
  REQUIRE(f.code == 0);
  const std::vector<app::EpochRecord> records = app::read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 2);
  CHECK(records[0].bytes_per_step == doctest::Approx(6 * kModelBytes / 10).epsilon(1e-12));
  CHECK(records[1].bytes_per_step == doctest::Approx(3 * kModelBytes / 10).epsilon(1e-12));
}

TEST_CASE("train_cifar --no-local-sgd all-reduces the whole gradient every step") {
  TemporaryDirectory dir;
  const std::string data = small_cifar(dir), out = dir.file("run");
  const Finished f = run(with(two_processes(data, out), {"--no-local-sgd"}), 120);
  INFO(f.out, f.err);
  REQUIRE(f.code == 0);
  CHECK(contains(f.out, "synchronous data parallel over 2 processes (gloo)"));
  const std::vector<app::EpochRecord> records = app::read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 2);
  // Identical replicas: the average of the replicas is every replica.
  for (const app::EpochRecord& r : records) {
    CHECK(r.bytes_per_step == doctest::Approx(kModelBytes).epsilon(1e-12));
    CHECK(r.rank_mean_test_acc == r.test_acc);
  }
}

TEST_CASE("a rank that dies ends the other with an error naming it") {
  TemporaryDirectory dir;
  const std::string data = small_cifar(dir);
  const std::string port = std::to_string(free_port());
  // Two ranks started by hand (as a cluster wrapper would), many small steps, a short timeout.
  const auto rank = [&](int r) {
    return test::start_process({kTrainCifar,
                                data,
                                "--dist-url",
                                "env://",
                                "--dist-backend",
                                "gloo",
                                "--epochs",
                                "50",
                                "-b",
                                "2",
                                "-j",
                                "0",
                                "-p",
                                "1",
                                "--records-per-batch",
                                "40",
                                "--out",
                                dir.file("run" + std::to_string(r)),
                                "--dist-timeout",
                                "10"},
                               {{"RANK", std::to_string(r)},
                                {"WORLD_SIZE", "2"},
                                {"LOCAL_RANK", std::to_string(r)},
                                {"LOCAL_WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "127.0.0.1"},
                                {"MASTER_PORT", port},
                                {"OMP_NUM_THREADS", "1"}});
  };
  const test::Started rank0 = rank(0), rank1 = rank(1);
  // Kill rank 1 once training is under way.
  while (!contains(rank0.out(), "Epoch: [1/50]") && rank0.elapsed() < 60)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(contains(rank0.out(), "Epoch: [1/50]"));
  kill(rank1.pid, SIGKILL);
  test::wait_process(rank1, 10);
  const auto killed = std::chrono::steady_clock::now();
  const Finished f = test::wait_process(rank0, 90);
  const double after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  INFO(f.out, f.err);
  CHECK(f.code != 0);
  CHECK(contains(f.err, "rank 1"));
  CHECK(after < 15);  // within --dist-timeout (10 s), and then some
}

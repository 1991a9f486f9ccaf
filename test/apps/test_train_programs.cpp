// bin/train_cifar, bin/train_imagenet and bin/train_mnist, run in-process on small data sets
// written here: their flags and defaults, --help, bad input, the files of a run, and --resume
// continuing bit for bit.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/common/run_log.h"
#include "apps/common/train_program.h"
#include "engine/safetensors.h"
#include "temporary_files.h"
#include "test_train_data.h"

using namespace ember;
using namespace ember::app;
using ember::test::contains;
using ember::test::TemporaryDirectory;

namespace {

struct ProgramRun {
  int exit_code = -1;
  std::string out, err;
};

std::string read_all(std::FILE* file) {
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  std::fclose(file);
  return text;
}

ProgramRun run(TrainProgram program, const std::vector<std::string>& args) {
  std::vector<std::string> words = {program_name(program)};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const std::string& word : words) argv.push_back(word.c_str());
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  REQUIRE(out);
  REQUIRE(err);
  ProgramRun result;
  result.exit_code =
      run_train_program(program, static_cast<int>(argv.size()), argv.data(), out, err);
  result.out = read_all(out);
  result.err = read_all(err);
  return result;
}

ProgramFlags parse(TrainProgram program, const std::vector<std::string>& args) {
  std::vector<std::string> words = {program_name(program)};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const std::string& word : words) argv.push_back(word.c_str());
  const ParsedCommandLine parsed =
      parse_command_line(program, static_cast<int>(argv.size()), argv.data());
  INFO(parsed.err);
  REQUIRE(parsed.flags.has_value());
  return *parsed.flags;
}

// The model's tensors of a checkpoint, by name.
std::map<std::string, std::vector<float>> model_tensors(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, tensor] : load_safetensors(path).tensors)
    if (name.rfind("model.", 0) == 0 && tensor.dtype() == DType::F32)
      out[name] = tensor.to_vector<float>();
  return out;
}

}  // namespace

TEST_CASE("train_cifar parses the seed's defaults") {
  const ProgramFlags f = parse(TrainProgram::Cifar, {"DATA"});
  const TrainOptions& o = f.train;
  CHECK(f.data == "DATA");
  CHECK(o.arch == "cifar_cnn");
  CHECK(o.epochs == 90);
  CHECK(o.batch_size == 256);
  CHECK(o.lr == 0.1);
  CHECK(o.momentum == 0.9);
  CHECK(o.weight_decay == 1e-4);
  CHECK_FALSE(o.nesterov);
  CHECK(o.print_freq == 10);
  CHECK(o.workers == 4);
  CHECK(o.optimizer == "sgd");
  CHECK(o.schedule.kind == "step");
  CHECK(o.schedule.step_size == 30);
  CHECK(o.schedule.gamma == 0.1);
  CHECK(o.schedule.warmup_epochs == 0);
  CHECK(o.device == "auto");
  CHECK(o.val_size == 0);
  CHECK(o.resume.empty());
  CHECK(o.out.empty());
  CHECK_FALSE(f.augment);
  CHECK_FALSE(f.evaluate);
  CHECK(o.arguments["epochs"] == 90);
  CHECK(o.arguments["command_line"] == "train_cifar DATA");
}

TEST_CASE("train_cifar reads every flag and its long and short spellings") {
  const ProgramFlags f = parse(TrainProgram::Cifar, {"-a",
                                                     "resnet20",
                                                     "--epochs",
                                                     "7",
                                                     "-b",
                                                     "64",
                                                     "--learning-rate",
                                                     "0.05",
                                                     "--momentum",
                                                     "0.8",
                                                     "--weight-decay",
                                                     "5e-4",
                                                     "--nesterov",
                                                     "-p",
                                                     "3",
                                                     "--seed",
                                                     "42",
                                                     "-j",
                                                     "2",
                                                     "--schedule",
                                                     "multistep",
                                                     "--milestones",
                                                     "3,5",
                                                     "--lr-gamma",
                                                     "0.2",
                                                     "--warmup-epochs",
                                                     "1",
                                                     "--augment",
                                                     "--device",
                                                     "cpu",
                                                     "--resume",
                                                     "c.safetensors",
                                                     "-e",
                                                     "--val-size",
                                                     "500",
                                                     "--out",
                                                     "runs/x",
                                                     "--records-per-batch",
                                                     "20",
                                                     "--optimizer",
                                                     "adamw",
                                                     "DATA"});
  const TrainOptions& o = f.train;
  CHECK(o.arch == "resnet20");
  CHECK(o.epochs == 7);
  CHECK(o.batch_size == 64);
  CHECK(o.lr == 0.05);
  CHECK(o.momentum == 0.8);
  CHECK(o.weight_decay == 5e-4);
  CHECK(o.nesterov);
  CHECK(o.print_freq == 3);
  CHECK(o.seed == 42);
  CHECK(o.workers == 2);
  CHECK(o.schedule.kind == "multistep");
  CHECK(o.schedule.milestones == std::vector<int64_t>{3, 5});
  CHECK(o.schedule.gamma == 0.2);
  CHECK(o.schedule.warmup_epochs == 1);
  CHECK(f.augment);
  CHECK(o.device == "cpu");
  CHECK(o.resume == "c.safetensors");
  CHECK(f.evaluate);
  CHECK(o.val_size == 500);
  CHECK(o.out == "runs/x");
  CHECK(f.records_per_batch == 20);
  CHECK(o.optimizer == "adamw");
  // The short spellings of the long ones above.
  const ProgramFlags g = parse(TrainProgram::Cifar, {"DATA", "--lr", "0.3", "--wd", "0.01",
                                                     "--batch-size", "8", "--arch", "resnet56"});
  CHECK(g.train.lr == 0.3);
  CHECK(g.train.weight_decay == 0.01);
  CHECK(g.train.batch_size == 8);
  CHECK(g.train.arch == "resnet56");
  // A list flag takes one comma-separated word: DATA after it stays DATA.
  const ProgramFlags h = parse(TrainProgram::Cifar, {"--milestones", "30,60", "DATA"});
  CHECK(h.train.schedule.milestones == std::vector<int64_t>{30, 60});
  CHECK(h.data == "DATA");
}

TEST_CASE("train_imagenet parses pytorch's example flags") {
  const ProgramFlags d = parse(TrainProgram::Imagenet, {"DATA"});
  CHECK(d.train.arch == "resnet18");
  CHECK(d.train.epochs == 90);
  CHECK(d.train.batch_size == 256);
  CHECK(d.train.lr == 0.1);
  CHECK(d.train.schedule.kind == "step");
  CHECK(d.train.schedule.step_size == 30);
  CHECK(d.image_size == 224);
  CHECK(d.train.start_epoch == 0);
  const ProgramFlags f = parse(TrainProgram::Imagenet,
                               {"-a", "resnet50", "--gpu", "1", "--pretrained", "w.safetensors",
                                "--start-epoch", "4", "--image-size", "64", "DATA"});
  CHECK(f.train.arch == "resnet50");
  CHECK(f.train.device == "cuda:1");
  CHECK(f.train.pretrained == "w.safetensors");
  CHECK(f.train.start_epoch == 4);
  CHECK(f.image_size == 64);
}

TEST_CASE("train_mnist parses its models and the fashion flag") {
  const ProgramFlags d = parse(TrainProgram::Mnist, {"DATA"});
  CHECK(d.train.arch == "mnist_cnn");
  CHECK(d.mnist_kind == "auto");
  const ProgramFlags f = parse(TrainProgram::Mnist, {"-a", "mnistnet", "--fashion", "DATA"});
  CHECK(f.train.arch == "mnistnet");
  CHECK(f.mnist_kind == "fashion");
}

TEST_CASE("help mentions every flag and the models") {
  const std::vector<std::string> common = {"DATA",
                                           "--arch",
                                           "--epochs",
                                           "--batch-size",
                                           "--optimizer",
                                           "--lr",
                                           "--learning-rate",
                                           "--momentum",
                                           "--wd",
                                           "--weight-decay",
                                           "--nesterov",
                                           "--schedule",
                                           "--lr-step-size",
                                           "--lr-gamma",
                                           "--milestones",
                                           "--warmup-epochs",
                                           "--print-freq",
                                           "--seed",
                                           "--workers",
                                           "--device",
                                           "--resume",
                                           "--evaluate",
                                           "--val-size",
                                           "--out",
                                           "-a,",
                                           "-b,",
                                           "-p,",
                                           "-j,",
                                           "-e,",
                                           "Examples:"};
  const std::vector<std::pair<TrainProgram, std::vector<std::string>>> programs = {
      {TrainProgram::Cifar, {"--augment", "--records-per-batch", "cifar_cnn", "resnet18_cifar"}},
      {TrainProgram::Imagenet,
       {"--gpu", "--pretrained", "--start-epoch", "--image-size", "resnet34", "resnet50"}},
      {TrainProgram::Mnist, {"--fashion", "mnistnet", "mnist_cnn"}}};
  for (const auto& [program, own] : programs) {
    const ProgramRun help = run(program, {"--help"});
    INFO(program_name(program));
    CHECK(help.exit_code == 0);
    for (const std::vector<std::string>* list : {&common, &own})
      for (const std::string& word : *list) {
        INFO(word);
        CHECK(contains(help.out, word));
      }
  }
}

TEST_CASE("bad flags exit with 2 and an unknown model lists the choices") {
  const ProgramRun arch = run(TrainProgram::Cifar, {"DATA", "-a", "resnet19"});
  CHECK(arch.exit_code == 2);
  CHECK(contains(arch.err, "resnet19"));
  for (const char* name : {"cifar_cnn", "logistics", "resnet20", "resnet56", "resnet18_cifar"})
    CHECK(contains(arch.err, name));
  CHECK_FALSE(contains(arch.err, "mnistnet"));  // another family's model is not offered
  const ProgramRun missing = run(TrainProgram::Mnist, {"--epochs", "2"});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "DATA"));
  CHECK(run(TrainProgram::Cifar, {"DATA", "--epochs", "zero"}).exit_code == 2);
  CHECK(run(TrainProgram::Imagenet, {"DATA", "--gpu", "0", "--device", "cpu"}).exit_code == 2);
}

TEST_CASE("a data path of no known format gives the data set's message and exit code 1") {
  TemporaryDirectory dir;
  const ProgramRun cifar = run(TrainProgram::Cifar, {dir.path.string(), "--device", "cpu"});
  CHECK(cifar.exit_code == 1);
  INFO(cifar.err);
  CHECK(cifar.err.rfind("train_cifar: ", 0) == 0);
  CHECK(contains(cifar.err, "cifar-10-batches-bin"));
  CHECK(contains(cifar.err, dir.path.string()));
  CHECK_FALSE(contains(cifar.err.substr(1), "train_cifar: "));  // one prefix, not a stack
  const ProgramRun mnist = run(TrainProgram::Mnist, {dir.file("none"), "--device", "cpu"});
  CHECK(mnist.exit_code == 1);
  CHECK(mnist.err.rfind("train_mnist: ", 0) == 0);
  CHECK(contains(mnist.err, "train-images-idx3-ubyte"));
  const ProgramRun imagenet = run(TrainProgram::Imagenet, {dir.path.string(), "--device", "cpu"});
  CHECK(imagenet.exit_code == 1);
  CHECK(imagenet.err.rfind("train_imagenet: ", 0) == 0);
}

TEST_CASE("train_cifar leaves a complete run folder") {
  TemporaryDirectory dir;
  const std::string data = dir.file("cifar"), out = dir.file("run");
  ember::test::write_small_cifar(data, 20);  // 100 training and 20 test images
  const ProgramRun r =
      run(TrainProgram::Cifar,
          {data, "--records-per-batch", "20", "--epochs", "2", "-b", "16", "--lr", "0.01",
           "--device", "cpu", "-j", "2", "--val-size", "20", "--augment", "--out", out});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());

  const std::vector<EpochRecord> records = read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 2);
  for (const EpochRecord& e : records) {
    CHECK(std::isfinite(e.train_loss));
    CHECK(std::isfinite(e.val_loss));
    CHECK(std::isfinite(e.test_loss));
    CHECK(e.test_acc5 >= e.test_acc);
    CHECK(e.epoch_s > 0);
  }
  CHECK(records[1].epoch == 2);

  const nlohmann::json summary =
      nlohmann::json::parse(ember::test::read_file(out + "/summary.json"));
  CHECK(summary["program"] == "train_cifar");
  CHECK(summary["arguments"]["augment"] == true);
  CHECK(summary["arguments"]["val_size"] == 20);
  CHECK(summary["model"]["arch"] == "cifar_cnn");
  CHECK(summary["model"]["parameters"] == 62006);
  CHECK(summary["data"]["train"] == 80);
  CHECK(summary["data"]["validation"] == 20);
  CHECK(summary["data"]["test"] == 20);
  CHECK(summary["epochs"]["completed"] == 2);
  CHECK(summary["final"]["test_top1"].get<double>() == records[1].test_acc);
  CHECK(summary["final"]["test_top5"].get<double>() == records[1].test_acc5);
  CHECK(summary["best"]["judged_on"] == "validation");
  CHECK(summary["best"]["top1"].is_number());
  CHECK(summary["best"]["top5"].is_number());
  CHECK(summary["throughput"]["images_per_second"].get<double>() > 0);
  CHECK(summary.contains("environment"));

  for (const char* file :
       {"loss.svg", "accuracy.svg", "checkpoint_last.safetensors", "checkpoint_best.safetensors"}) {
    INFO(file);
    CHECK(std::filesystem::is_regular_file(out + "/" + file));
    CHECK(contains(r.out, out + "/" + file));  // the end of the output says where it is
  }
  CHECK(contains(r.out, out + "/epochs.csv"));
  const SafetensorsFile last = load_safetensors(out + "/checkpoint_last.safetensors");
  CHECK(last.metadata.at("arch") == "cifar_cnn");
  CHECK(contains(last.metadata.at("counters"), "\"epoch\":2"));

  // -e evaluates the checkpoint's model on both sets and writes nothing.
  const ProgramRun eval =
      run(TrainProgram::Cifar, {data, "--records-per-batch", "20", "--device", "cpu", "--val-size",
                                "20", "-e", "--resume", out + "/checkpoint_last.safetensors"});
  INFO(eval.err);
  CHECK(eval.exit_code == 0);
  CHECK(contains(eval.out, "test: 20 images"));
  CHECK(contains(eval.out, "validation: 20 images"));
}

TEST_CASE("without --val-size the val columns stay empty") {
  TemporaryDirectory dir;
  const std::string data = dir.file("mnist"), out = dir.file("run");
  ember::test::write_small_mnist(data, 96, 32);
  const ProgramRun r = run(TrainProgram::Mnist, {data, "--epochs", "1", "-b", "32", "--device",
                                                 "cpu", "-j", "0", "--out", out});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "MNIST in "));
  CHECK_FALSE(contains(r.out, "Fashion-MNIST"));
  const std::vector<EpochRecord> records = read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 1);
  CHECK(std::isnan(records[0].val_loss));
  CHECK(std::isnan(records[0].val_acc));
  CHECK(std::isfinite(records[0].test_acc));
  const nlohmann::json summary =
      nlohmann::json::parse(ember::test::read_file(out + "/summary.json"));
  CHECK(summary["data"]["validation"].is_null());
  CHECK(summary["best"]["judged_on"] == "test");
  CHECK(summary["final"]["val_top1"].is_null());
}

TEST_CASE("train_mnist reads fashion-mnist by flag or by path") {
  TemporaryDirectory dir;
  const std::string data = dir.file("fashion-small");
  ember::test::write_small_mnist(data, 64, 16);
  const ProgramRun r =
      run(TrainProgram::Mnist, {data, "--epochs", "1", "-b", "32", "-a", "mnistnet", "--device",
                                "cpu", "--out", dir.file("run")});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "Fashion-MNIST in "));
  CHECK(contains(r.out, "mnistnet (4,368,138 parameters)"));
}

TEST_CASE("train_imagenet trains on a small imagenet folder") {
  TemporaryDirectory dir;
  const std::string data = dir.file("imagenet"), out = dir.file("run");
  ember::test::write_small_imagenet(data, 3, 4);
  const ProgramRun r = run(TrainProgram::Imagenet,
                           {data, "-a", "resnet18", "--image-size", "32", "--epochs", "1", "-b",
                            "6", "--lr", "0.01", "--device", "cpu", "-j", "2", "--out", out});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "3 classes"));
  CHECK(contains(r.out, "12 training"));
  CHECK(contains(r.out, "6 test images"));
  const std::vector<EpochRecord> records = read_epoch_csv(out + "/epochs.csv");
  REQUIRE(records.size() == 1);
  CHECK(records[0].test_acc5 == 1.0);  // with 3 classes every label is in the top 5
  // The model's classifier has the folder's classes.
  const SafetensorsFile last = load_safetensors(out + "/checkpoint_last.safetensors");
  CHECK(last.at("model.fc.weight").shape() == Shape{3, 512});

  // --pretrained loads a weights file (here: the trained model's, through ember_infer's
  // format) and -e evaluates it.
  const std::string weights = dir.file("w.safetensors");
  NamedTensors model_part;
  for (const auto& [name, t] : last.tensors)
    if (name.rfind("model.", 0) == 0) model_part.emplace_back(name.substr(6), t);
  save_safetensors(weights, model_part);
  const ProgramRun eval = run(TrainProgram::Imagenet, {data, "--image-size", "32", "-e",
                                                       "--pretrained", weights, "--device", "cpu"});
  INFO(eval.err);
  CHECK(eval.exit_code == 0);
  // The same weights give the same test figures as the last epoch of training.
  char expected[64];
  std::snprintf(expected, sizeof expected, "top-1 %.2f%%", 100 * records[0].test_acc);
  CHECK(contains(eval.out, expected));
}

TEST_CASE("resume continues a run bit for bit") {
  TemporaryDirectory dir;
  const std::string data = dir.file("cifar");
  ember::test::write_small_cifar(data, 20);
  const std::vector<std::string> common = {data,
                                           "--records-per-batch",
                                           "20",
                                           "-b",
                                           "16",
                                           "--lr",
                                           "0.02",
                                           "--device",
                                           "cpu",
                                           "-j",
                                           "2",
                                           "--augment",
                                           "--seed",
                                           "7",
                                           "--lr-step-size",
                                           "2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const ProgramRun whole =
      run(TrainProgram::Cifar, with({"--epochs", "3", "--out", dir.file("a")}));
  REQUIRE(whole.exit_code == 0);
  const ProgramRun first =
      run(TrainProgram::Cifar, with({"--epochs", "2", "--out", dir.file("b")}));
  REQUIRE(first.exit_code == 0);
  // The resumed run finds its seed in the checkpoint (none is given here) and its folder too.
  const ProgramRun second =
      run(TrainProgram::Cifar,
          {data, "--records-per-batch", "20", "-b", "16", "--lr", "0.02", "--device", "cpu", "-j",
           "2", "--augment", "--lr-step-size", "2", "--epochs", "3", "--resume",
           dir.file("b") + "/checkpoint_last.safetensors"});
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(contains(second.out, "resuming from"));
  CHECK(contains(second.out, "2 epochs done (seed 7)"));

  const std::vector<EpochRecord> a = read_epoch_csv(dir.file("a") + "/epochs.csv");
  const std::vector<EpochRecord> b = read_epoch_csv(dir.file("b") + "/epochs.csv");
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("epoch " << i + 1);
    CHECK(a[i].epoch == b[i].epoch);
    CHECK(a[i].train_loss == b[i].train_loss);
    CHECK(a[i].train_acc == b[i].train_acc);
    CHECK(a[i].test_loss == b[i].test_loss);
    CHECK(a[i].test_acc == b[i].test_acc);
    CHECK(a[i].test_acc5 == b[i].test_acc5);
  }
  // Epoch 3 changed the model (the lr stepped down after epoch 2: the schedule resumed too),
  // and both runs end with the same bits.
  const auto weights_a = model_tensors(dir.file("a") + "/checkpoint_last.safetensors");
  const auto weights_b = model_tensors(dir.file("b") + "/checkpoint_last.safetensors");
  REQUIRE(weights_a.size() == 10);
  CHECK(weights_a == weights_b);
  CHECK(a[2].train_loss != a[1].train_loss);
}

TEST_CASE("resume with a checkpoint of another model names the mismatched keys") {
  TemporaryDirectory dir;
  const std::string data = dir.file("cifar");
  ember::test::write_small_cifar(data, 20);
  const ProgramRun first =
      run(TrainProgram::Cifar, {data, "--records-per-batch", "20", "--epochs", "1", "-b", "50",
                                "-a", "logistics", "--device", "cpu", "--out", dir.file("run")});
  REQUIRE(first.exit_code == 0);
  const ProgramRun other =
      run(TrainProgram::Cifar,
          {data, "--records-per-batch", "20", "--epochs", "2", "-a", "cifar_cnn", "--device", "cpu",
           "--resume", dir.file("run") + "/checkpoint_last.safetensors"});
  INFO(other.err);
  CHECK(other.exit_code == 1);
  CHECK(other.err.rfind("train_cifar: ", 0) == 0);
  CHECK(contains(other.err, "(logistics)"));
  CHECK(contains(other.err, "linear.weight"));  // unexpected
  CHECK(contains(other.err, "conv1.weight"));   // missing
  const ProgramRun missing = run(
      TrainProgram::Cifar, {data, "--records-per-batch", "20", "--resume", dir.file("nothing")});
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.err, "--resume " + dir.file("nothing") + ": no such file"));
}

// The training programs' flags, data and main (see train_program.h).
#include "apps/common/train_program.h"

#include <CLI/CLI.hpp>  // command-line flags

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "datasets/cifar10.h"       // load_cifar10
#include "datasets/idx.h"           // load_mnist
#include "datasets/image_folder.h"  // load_imagenet
#include "datasets/transforms.h"
#include "engine/error.h"
#include "engine/runtime.h"  // cuda_device_count
#include "layers/model_registry.h"

namespace ember::app {

namespace {

using json = nlohmann::json;

// What differs between the programs before any flag is read.
struct ProgramDefaults {
  std::string summary;  // the first line of --help
  std::string family;   // the models offered by -a (layers/model_registry.h families)
  std::string data_help;
  TrainOptions options;
  std::string examples;
};

ProgramDefaults defaults_of(TrainProgram program) {
  ProgramDefaults d;
  TrainOptions& o = d.options;
  o.program = program_name(program);
  switch (program) {
    case TrainProgram::Cifar:
      d.summary =
          "train_cifar: trains a CIFAR-10 classifier (the local-SGD seed's cifar.py: its flags, "
          "defaults and model)";
      d.family = "cifar";
      d.data_help =
          "CIFAR-10 in any usual form: cifar-10-batches-bin/ or -py/ (or the folder holding "
          "it), cifar-10-binary.tar.gz or cifar-10-python.tar.gz, or an image folder "
          "train/<class>/ + test/<class>/";
      o.arch = "cifar_cnn";
      d.examples =
          "Examples:\n"
          "  train_cifar data/cifar-10-batches-bin                 the seed's recipe: cifar_cnn,\n"
          "                                                        90 epochs, SGD lr 0.1\n"
          "  train_cifar data/cifar-10-batches-bin -a resnet18_cifar --augment --epochs 30 \\\n"
          "      -b 128 --schedule onecycle --lr 0.1 --wd 5e-4     a strong recipe (for a GPU)\n"
          "  train_cifar data/cifar-10-python.tar.gz --val-size 5000 --out runs/cnn\n"
          "  train_cifar data/cifar-10-batches-bin --resume runs/cnn/checkpoint_last.safetensors\n"
          "  train_cifar data/cifar-10-batches-bin -e --resume "
          "runs/cnn/checkpoint_best.safetensors\n";
      break;
    case TrainProgram::Imagenet:
      d.summary =
          "train_imagenet: trains a ResNet on an ImageNet-layout folder (the flags of PyTorch's "
          "ImageNet example)";
      d.family = "imagenet";
      d.data_help =
          "a folder ROOT with ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG (val/ is "
          "evaluated as the test set)";
      o.arch = "resnet18";
      d.examples =
          "Examples:\n"
          "  train_imagenet /data/imagenet                         ResNet-18, 90 epochs\n"
          "  train_imagenet /data/imagenet -a resnet50 -b 128 --lr 0.05 --gpu 0\n"
          "  train_imagenet /data/imagenet -a resnet18 -e --pretrained resnet18.safetensors\n"
          "  train_imagenet /data/imagenet --resume runs/resnet18-20250101-120000/"
          "checkpoint_last.safetensors\n"
          "  train_imagenet small_folder -a resnet18 --image-size 64 --epochs 5 -b 32\n";
      break;
    case TrainProgram::Mnist:
      d.summary = "train_mnist: trains a classifier on MNIST or Fashion-MNIST";
      d.family = "mnist";
      d.data_help =
          "a folder of MNIST-style idx files (train-images-idx3-ubyte[.gz], ...; also "
          "torchvision's MNIST/raw/ and FashionMNIST/raw/)";
      o.arch = "mnist_cnn";
      o.epochs = 2;
      o.batch_size = 128;
      o.lr = 0.1;
      o.momentum = 0.9;
      o.weight_decay = 5e-4;
      o.schedule.kind = "onecycle";
      o.print_freq = 50;
      d.examples =
          "Examples:\n"
          "  train_mnist data/fashion-mnist --nesterov             make demo's recipe: mnist_cnn, "
          "2 epochs, 91%\n"
          "  train_mnist data/mnist -a mnistnet --epochs 10 --schedule cosine\n"
          "  train_mnist data/fashion-mnist --optimizer adam --lr 0.001 --schedule constant\n";
      break;
  }
  return d;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The models of a family, one a line, for the end of --help.
std::string model_list(const std::string& family) {
  std::string text = "Models (-a):\n";
  for (const std::string& name : nn::model_names(family))
    text += str_cat("  ", name, std::string(name.size() < 16 ? 16 - name.size() : 1, ' '),
                    nn::model_info(name).description, "\n");
  return text;
}

json flags_to_json(const ProgramFlags& f, TrainProgram program, int argc, const char* const* argv) {
  const TrainOptions& o = f.train;
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  json out = {{"command_line", command},
              {"data", f.data},
              {"arch", o.arch},
              {"epochs", o.epochs},
              {"batch_size", o.batch_size},
              {"optimizer", o.optimizer},
              {"lr", o.lr},
              {"momentum", o.momentum},
              {"weight_decay", o.weight_decay},
              {"nesterov", o.nesterov},
              {"schedule", o.schedule.kind},
              {"lr_step_size", o.schedule.step_size},
              {"lr_gamma", o.schedule.gamma},
              {"milestones", o.schedule.milestones},
              {"warmup_epochs", o.schedule.warmup_epochs},
              {"print_freq", o.print_freq},
              {"workers", o.workers},
              {"seed", o.seed},
              {"device", o.device},
              {"val_size", o.val_size},
              {"resume", o.resume},
              {"evaluate", f.evaluate},
              {"out", o.out}};
  if (program == TrainProgram::Cifar) {
    out["augment"] = f.augment;
    out["records_per_batch"] = f.records_per_batch;
  }
  if (program == TrainProgram::Imagenet) {
    out["pretrained"] = o.pretrained;
    out["start_epoch"] = o.start_epoch;
    out["image_size"] = f.image_size;
  }
  if (program == TrainProgram::Mnist) out["mnist_kind"] = f.mnist_kind;
  if (program != TrainProgram::Mnist) out["distributed"] = distributed_flags_to_json(f.dist);
  return out;
}

}  // namespace

std::string program_name(TrainProgram program) {
  switch (program) {
    case TrainProgram::Cifar:
      return "train_cifar";
    case TrainProgram::Imagenet:
      return "train_imagenet";
    case TrainProgram::Mnist:
      return "train_mnist";
  }
  return "train";
}

ParsedCommandLine parse_command_line(TrainProgram program, int argc, const char* const* argv) {
  const ProgramDefaults defaults = defaults_of(program);
  ProgramFlags f;
  f.train = defaults.options;
  TrainOptions& o = f.train;
  int gpu = -1;

  CLI::App app{defaults.summary, program_name(program)};
  app.get_formatter()->column_width(36);
  app.add_option("DATA", f.data, defaults.data_help)->required();
  app.add_option("-a,--arch", o.arch, "the model (listed below)")
      ->check(CLI::IsMember(nn::model_names(defaults.family)))
      ->capture_default_str();
  app.add_option("--epochs", o.epochs, "total epochs to run (a resumed run stops there too)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-b,--batch-size", o.batch_size,
                 "mini-batch size: the total over the processes of this node")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--optimizer", o.optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--lr,--learning-rate", o.lr, "initial learning rate (onecycle: the peak)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--wd,--weight-decay", o.weight_decay, "weight decay (L2; AdamW: decoupled)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  app.add_option("--schedule", o.schedule.kind,
                 "learning-rate schedule: step (x gamma every --lr-step-size epochs), "
                 "multistep (x gamma at --milestones), cosine, onecycle or constant")
      ->check(CLI::IsMember(schedule_kinds()))
      ->capture_default_str();
  app.add_option("--lr-step-size", o.schedule.step_size, "epochs between steps (step)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr-gamma", o.schedule.gamma, "factor of each step (step, multistep)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--milestones", o.schedule.milestones,
                 "epochs at which multistep multiplies the lr by gamma, e.g. 30,60,80")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_option("--warmup-epochs", o.schedule.warmup_epochs,
                 "linear warm-up from lr/100 before the schedule (onecycle: its rising part)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("-p,--print-freq", o.print_freq,
                 "a progress line every N steps (when the output is not a terminal)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", o.seed,
                 "seed of the initialization, data order, augmentation and --val-size split "
                 "(a resumed run keeps its own)")
      ->capture_default_str();
  app.add_option("-j,--workers", o.workers, "data-loading threads")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  CLI::Option* device =
      app.add_option("--device", o.device, "cpu, cuda, cuda:N or auto (a GPU when there is one)")
          ->capture_default_str();
  app.add_option("--resume", o.resume,
                 "a checkpoint (checkpoint_last.safetensors) to continue from, exactly; its run "
                 "folder is used unless --out is given");
  app.add_flag("-e,--evaluate", f.evaluate,
               "evaluate the model (from --resume or --pretrained) on the validation and test "
               "sets, and stop");
  app.add_option("--val-size", o.val_size,
                 "training examples held out (seeded) as a validation set; 0: none, and the "
                 "val columns stay empty")
      ->capture_default_str();
  app.add_option("--out", o.out,
                 "the run folder (epochs.csv, summary.json, plots, checkpoints); default "
                 "runs/<arch>-<date>");

  switch (program) {
    case TrainProgram::Cifar:
      app.add_flag("--augment", f.augment,
                   "random crop (padding 4) and horizontal flip; the seed uses none");
      app.add_option("--records-per-batch", f.records_per_batch,
                     "images per batch file, for smaller copies of CIFAR-10")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      break;
    case TrainProgram::Imagenet:
      app.add_option("--gpu", gpu, "the GPU to use: --device cuda:N")
          ->check(CLI::NonNegativeNumber)
          ->excludes(device);
      app.add_option("--pretrained", o.pretrained,
                     "start from these weights (a safetensors state_dict under PyTorch's names; "
                     "nothing is downloaded)");
      app.add_option("--start-epoch", o.start_epoch,
                     "the epoch to start at, 0-based (useful on restarts without a checkpoint)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--image-size", f.image_size,
                     "training crop size; evaluation resizes to size*256/224 and crops the "
                     "centre")
          ->check(CLI::Range(8, 4096))
          ->capture_default_str();
      break;
    case TrainProgram::Mnist:
      break;
  }
  if (program != TrainProgram::Mnist)
    add_distributed_flags(app, f.dist, program == TrainProgram::Imagenet);
  switch (program) {
    case TrainProgram::Cifar:
    case TrainProgram::Imagenet:
      break;
    case TrainProgram::Mnist:
      app.add_flag_callback(
          "--fashion", [&] { f.mnist_kind = "fashion"; },
          "the files are Fashion-MNIST (default: guessed from the path, else MNIST)");
      break;
  }
  app.footer(model_list(defaults.family) + "\n" + defaults.examples);

  ParsedCommandLine result;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int code = app.exit(e, out, err);
    result.out = out.str();
    result.err = err.str();
    result.exit_code = code == 0 ? 0 : 2;
    return result;
  }
  if (gpu >= 0) o.device = str_cat("cuda:", gpu);
  o.arguments = flags_to_json(f, program, argc, argv);
  result.flags = f;
  return result;
}

TrainingData load_program_data(TrainProgram program, const ProgramFlags& flags) {
  TrainingData data;
  switch (program) {
    case TrainProgram::Cifar: {
      const data::Cifar10Location where = data::find_cifar10(flags.data);
      const data::TrainTest sets = data::load_cifar10(flags.data, flags.records_per_batch);
      data.train = sets.train;
      data.test = sets.test;
      // The seed's normalization: (x - 0.5) / 0.5 on every channel.
      data.normalize = {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
      if (flags.augment)
        data.train_transform =
            std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
                std::make_shared<data::RandomCrop>(32, 32, 4),
                std::make_shared<data::RandomHorizontalFlip>()});
      data.description = str_cat(data::cifar10_format_name(where.format), " in ", where.path);
      break;
    }
    case TrainProgram::Imagenet: {
      const data::TrainTest sets = data::load_imagenet(flags.data);
      data.train = sets.train;
      data.test = sets.test;
      const int size = flags.image_size;
      data.train_transform =
          std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
              std::make_shared<data::RandomResizedCrop>(size, size),
              std::make_shared<data::RandomHorizontalFlip>()});
      data.eval_transform =
          std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
              std::make_shared<data::Resize>(size * 256 / 224),
              std::make_shared<data::CenterCrop>(size, size)});
      data.normalize = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
      data.description = str_cat("ImageNet-layout folder ", flags.data, " (",
                                 data.train->num_classes(), " classes; val/ as the test set)");
      break;
    }
    case TrainProgram::Mnist: {
      // Fashion-MNIST's files have MNIST's names: the kind is given, or read from the path
      // ("fashion" in it, or torchvision's FashionMNIST/raw/ inside).
      bool fashion = flags.mnist_kind == "fashion";
      if (flags.mnist_kind == "auto") {
        const std::string path = lower(std::filesystem::absolute(flags.data).string());
        fashion = path.find("fashion") != std::string::npos ||
                  (data::has_mnist_files(flags.data, data::MnistKind::FashionMnist) &&
                   !data::has_mnist_files(flags.data, data::MnistKind::Mnist));
      }
      const data::MnistKind kind = fashion ? data::MnistKind::FashionMnist : data::MnistKind::Mnist;
      const data::TrainTest sets = data::load_mnist(flags.data, kind);
      data.train = sets.train;
      data.test = sets.test;
      // The data sets' own pixel mean and standard deviation (of the training images).
      data.normalize =
          fashion ? data::Normalize{{0.2860f}, {0.3530f}} : data::Normalize{{0.1307f}, {0.3081f}};
      data.description = str_cat(fashion ? "Fashion-MNIST" : "MNIST", " in ", flags.data);
      break;
    }
  }
  return data;
}

int run_train_program(TrainProgram program, int argc, const char* const* argv, std::FILE* out,
                      std::FILE* err) {
  const std::string name = program_name(program);
  const ParsedCommandLine parsed = parse_command_line(program, argc, argv);
  if (!parsed.flags) {
    std::fputs(parsed.out.c_str(), out);
    std::fputs(parsed.err.c_str(), err);
    return parsed.exit_code;
  }
  const ProgramFlags& flags = *parsed.flags;
  try {
    ProcessRole role;
    if (program != TrainProgram::Mnist)
      role = plan_process(flags.dist, program == TrainProgram::Imagenet, cuda_device_count());
    if (!role.note.empty() && role.kind != ProcessRole::Supervisor && role.rank == 0)
      std::fprintf(err, "%s: %s\n", name.c_str(), role.note.c_str());
    if (role.kind == ProcessRole::Supervisor)
      return supervise_ranks(role, flags.dist.dist_url, argc, argv, err);

    TrainingData data = load_program_data(program, flags);
    TrainOptions options = flags.train;
    TrainerHooks hooks;
    DistributedRun run;
    // Ranks other than 0 train quietly: rank 0's progress stands for all (errors still show).
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> quiet(nullptr, &std::fclose);
    if (role.kind == ProcessRole::Rank) {
      run = start_rank(role, flags.dist, options, data.train->num_classes());
      options = run.options;
      hooks = run.hooks;
      if (!run.is_writer) quiet.reset(std::fopen("/dev/null", "w"));
    }
    Trainer trainer(options, std::move(data), quiet ? quiet.get() : out, hooks);
    if (!flags.evaluate) {
      trainer.fit();
      return 0;
    }
    for (const EvalSet set : {EvalSet::Validation, EvalSet::Test}) {
      const PassResult r = trainer.evaluate(set);
      if (r.samples == 0) continue;
      std::fprintf(out, "%s: %s %s: %lld images, loss %.4f, top-1 %.2f%%, top-5 %.2f%%\n",
                   name.c_str(), flags.train.arch.c_str(),
                   set == EvalSet::Test ? "test" : "validation", static_cast<long long>(r.samples),
                   r.loss, 100 * r.top1, 100 * r.top5);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(err, "%s: %s\n", name.c_str(), e.what());
    return 1;
  }
}

}  // namespace ember::app

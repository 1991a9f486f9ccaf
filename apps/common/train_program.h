// The three training programs as functions, so that tests run them in-process:
//
//   bin/train_cifar DATA      CIFAR-10, the flags and defaults of the local-SGD seed's cifar.py
//   bin/train_imagenet DATA   an ImageNet-layout folder, the flags of PyTorch's ImageNet example
//   bin/train_mnist DATA      MNIST or Fashion-MNIST idx files
//
// Each is: flags (CLI11) -> TrainOptions + the program's data -> Trainer (trainer.h). Exit codes:
// 0 success (and --help), 1 an error, printed as one line "train_cifar: <message>", 2 bad flags
// (CLI11's message).
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>

#include "apps/common/distributed_training.h"  // DistributedFlags
#include "apps/common/trainer.h"               // TrainOptions, TrainingData

namespace ember::app {

enum class TrainProgram { Cifar, Imagenet, Mnist };

// "train_cifar", "train_imagenet", "train_mnist"
std::string program_name(TrainProgram program);

// Everything the command line says.
struct ProgramFlags {
  TrainOptions train;
  std::string data;                  // DATA
  bool evaluate = false;             // -e: evaluate the (resumed or pretrained) model and stop
  bool augment = false;              // train_cifar --augment: random crop (padding 4) and flip
  size_t records_per_batch = 10000;  // train_cifar: images per batch file (smaller copies)
  int image_size = 224;              // train_imagenet --image-size
  std::string mnist_kind = "auto";   // train_mnist: mnist, fashion or auto (from the path)
  DistributedFlags dist;             // train_cifar, train_imagenet: --dist-url, --local-steps, ...
};

// What parsing the command line gives: flags to run with, or an exit code and the text to
// print (the help on stdout with 0, CLI11's error on stderr with 2).
struct ParsedCommandLine {
  std::optional<ProgramFlags> flags;
  int exit_code = 0;
  std::string out, err;
};

// argv[0] is the program's path, as main() receives it.
ParsedCommandLine parse_command_line(TrainProgram program, int argc, const char* const* argv);

// The program's data sets, transforms and normalization, as DATA and the flags ask.
TrainingData load_program_data(TrainProgram program, const ProgramFlags& flags);

// The whole program: the exit code. Progress and results go to `out`, errors to `err`.
int run_train_program(TrainProgram program, int argc, const char* const* argv,
                      std::FILE* out = stdout, std::FILE* err = stderr);

}  // namespace ember::app

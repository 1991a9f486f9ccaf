// bin/train_mnist: trains mnist_cnn (a small CNN) or mnistnet (the dAD seed's MLP) on MNIST or
// Fashion-MNIST idx files. `make demo` runs it on Fashion-MNIST.
//
//   bin/train_mnist data/fashion-mnist
//   bin/train_mnist data/mnist -a mnistnet --epochs 10
//
// The flags, the data and the loop live in apps/common (train_program.h, trainer.h).
#include "apps/common/train_program.h"

int main(int argc, char** argv) {
  return ember::app::run_train_program(ember::app::TrainProgram::Mnist, argc, argv);
}

// bin/train_cifar: trains a CIFAR-10 classifier with the flags and defaults of the local-SGD
// seed's cifar.py (cifar_cnn, 90 epochs, batch 256, SGD lr 0.1 momentum 0.9 weight decay 1e-4,
// lr x 0.1 every 30 epochs, inputs normalized with mean and std 0.5, no augmentation), and
// more: every CIFAR model of the registry, --augment, other schedules, --val-size, --resume.
//
//   bin/train_cifar data/cifar-10-batches-bin
//   bin/train_cifar data/cifar-10-batches-bin -a resnet18_cifar --augment --schedule onecycle
//
// The flags, the data and the loop live in apps/common (train_program.h, trainer.h), where the
// tests run them.
#include "apps/common/train_program.h"

int main(int argc, char** argv) {
  return ember::app::run_train_program(ember::app::TrainProgram::Cifar, argc, argv);
}

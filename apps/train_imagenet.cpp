// bin/train_imagenet: trains a ResNet on any ImageNet-layout folder (ROOT/train/<class>/,
// ROOT/val/<class>/) with the flags of PyTorch's ImageNet example (-a resnet18|34|50, --epochs,
// -b, --lr, --momentum, --wd, -j, --start-epoch, -e, --gpu, --pretrained, -p, --resume, --seed)
// and torchvision's transforms: RandomResizedCrop and flip for training, Resize 256 and
// CenterCrop 224 for evaluation, ImageNet's mean and std; top-1 and top-5 accuracy.
//
//   bin/train_imagenet /data/imagenet -a resnet50 -b 128 --lr 0.05
//
// The flags, the data and the loop live in apps/common (train_program.h, trainer.h).
#include "apps/common/train_program.h"

int main(int argc, char** argv) {
  return ember::app::run_train_program(ember::app::TrainProgram::Imagenet, argc, argv);
}

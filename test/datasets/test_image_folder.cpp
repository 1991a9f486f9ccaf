// Image-folder data sets on small folders written here: class order and labels, which files
// count, exact pixels from PNG, ImageNet's train/val pair, dogs-vs-cats file names, the CIFAR-10
// layout, and the error for each kind of bad folder or file.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "datasets/image_decode.h"
#include "datasets/image_folder.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

// An image whose every byte depends on `id`, so that examples can be told apart.
Image numbered_image(int id, int height = 6, int width = 5, int channels = 3) {
  Image image;
  image.resize(height, width, channels);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<uint8_t>(id * 31 + i * 7);
  }
  return image;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Writes image `id` as a PNG at `path`, making folders as needed.
void write_png_at(const fs::path& path, int id, int side = 0) {
  fs::create_directories(path.parent_path());
  write_png(path.string(), side > 0 ? numbered_image(id, side, side) : numbered_image(id));
}

// The first byte of an example, which numbered_image sets to id * 31.
uint8_t first_byte(const Dataset& data, size_t index) {
  Image image;
  data.load_image(index, image);
  return image.pixels.at(0);
}

std::vector<std::string> sources(const Dataset& data) {
  std::vector<std::string> all;
  for (size_t i = 0; i < data.size(); ++i) all.push_back(data.source(i));
  return all;
}

}  // namespace

TEST_CASE("an image folder labels sorted class folders and sorts files by name") {
  TemporaryDirectory root;
  // Folder names sort byte by byte, capitals first, as Python's sorted() does.
  write_png_at(root.path / "zebra" / "b.png", 1);
  write_png_at(root.path / "zebra" / "a.PNG", 2);
  write_png_at(root.path / "Apple" / "10.jpeg", 3);
  write_png_at(root.path / "Apple" / "9.JPEG", 4);  // ImageNet's ending
  write_png_at(root.path / "cat" / "x.Jpg", 5);
  write_png_at(root.path / "cat" / "deeper" / "y.png", 6);  // below the class folder
  // Not examples: other file types, hidden files and folders.
  write_text(root.path / "cat" / "notes.txt", "not an image");
  write_png_at(root.path / "cat" / "._x.jpg", 7);
  write_png_at(root.path / ".ipynb_checkpoints" / "z.png", 8);
  write_text(root.path / "README.md", "a file beside the class folders");

  ImageFolder data(root.path.string());
  CHECK(data.class_names() == std::vector<std::string>{"Apple", "cat", "zebra"});
  CHECK(data.num_classes() == 3);
  CHECK(sources(data) == std::vector<std::string>{"Apple/10.jpeg", "Apple/9.JPEG",
                                                  "cat/deeper/y.png", "cat/x.Jpg", "zebra/a.PNG",
                                                  "zebra/b.png"});
  CHECK(data.labels() == std::vector<int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(data.path(4) == (root.path / "zebra" / "a.PNG").string());
  CHECK(data.skipped().empty());

  // PNG is lossless: every pixel comes back as written.
  Image image;
  data.load_image(1, image);
  CHECK(image.pixels == numbered_image(4).pixels);
  for (size_t i = 0; i < data.size(); ++i) {
    const int ids[] = {3, 4, 6, 5, 2, 1};
    CHECK(first_byte(data, i) == static_cast<uint8_t>(ids[i] * 31));
  }
  CHECK(contains(error_of([&] { data.label(6); }), "example 6 of 6"));

  // Only the endings asked for count: Apple/ holds no PNG.
  ImageFolderOptions png_only;
  png_only.extensions = {".png"};
  CHECK(contains(error_of([&] { ImageFolder only_png(root.path.string(), png_only); }),
                 "class folder \"Apple\" has no image files (.png)"));
  fs::remove_all(root.path / "Apple");
  CHECK(sources(ImageFolder(root.path.string(), png_only)) ==
        std::vector<std::string>{"cat/deeper/y.png", "zebra/a.PNG", "zebra/b.png"});
}

TEST_CASE("an image folder reads jpeg within a tolerance and grey when asked") {
  TemporaryDirectory root;
  Image smooth;
  smooth.resize(16, 16, 3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      for (int c = 0; c < 3; ++c) smooth.at(y, x)[c] = static_cast<uint8_t>(60 + 4 * x + 3 * y);
    }
  }
  fs::create_directories(root.path / "only");
  write_jpeg((root.path / "only" / "a.jpg").string(), smooth, 95);

  ImageFolder data(root.path.string());
  Image image;
  data.load_image(0, image);
  REQUIRE(image.pixels.size() == smooth.pixels.size());
  int worst = 0;
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(image.pixels[i]) - int(smooth.pixels[i])));
  }
  CHECK(worst <= 3);
  Image direct;
  decode_image_file((root.path / "only" / "a.jpg").string(), 3, direct);
  CHECK(image.pixels == direct.pixels);

  ImageFolderOptions grey;
  grey.channels = 1;
  ImageFolder grey_data(root.path.string(), grey);
  grey_data.load_image(0, image);
  CHECK(image.channels == 1);
  CHECK(image.bytes() == 16 * 16);
  CHECK(std::abs(int(image.at(5, 7)[0]) - int(smooth.at(5, 7)[0])) <= 3);  // equal channels
}

TEST_CASE("image folder errors name the folder or file") {
  TemporaryDirectory root;
  const std::string missing = (root.path / "missing").string();
  CHECK(contains(error_of([&] { ImageFolder data(missing); }), missing + ": no such folder"));
  write_text(root.path / "file.txt", "x");
  CHECK(contains(error_of([&] { ImageFolder data((root.path / "file.txt").string()); }),
                 "file.txt: not a folder"));

  // Images with no class folders.
  write_png_at(root.path / "flat" / "cat.1.png", 1);
  const std::string flat = error_of([&] { ImageFolder data((root.path / "flat").string()); });
  CHECK(contains(flat, "flat: no class folders"));
  CHECK(contains(flat, "holds image files directly"));

  // An empty class folder (or one holding no images) is named.
  write_png_at(root.path / "classes" / "cat" / "1.png", 1);
  write_text(root.path / "classes" / "dog" / "readme.txt", "no images here");
  CHECK(contains(error_of([&] { ImageFolder data((root.path / "classes").string()); }),
                 (root.path / "classes" / "dog").string() +
                     ": class folder \"dog\" has no image files (.jpg, .jpeg, .png)"));
  fs::create_directories(root.path / "classes2" / "bird");
  write_png_at(root.path / "classes2" / "ant" / "1.png", 1);
  CHECK(contains(error_of([&] { ImageFolder data((root.path / "classes2").string()); }),
                 "class folder \"bird\" has no image files"));

  write_png_at(root.path / "valid" / "ant" / "1.png", 1);
  ImageFolderOptions two_channels;
  two_channels.channels = 2;
  CHECK(contains(error_of([&] { ImageFolder data((root.path / "valid").string(), two_channels); }),
                 "images decode to 1 (grey) or 3 (RGB) channels, not 2"));
}

TEST_CASE("a corrupt image fails when loaded naming the file") {
  TemporaryDirectory root;
  write_png_at(root.path / "cat" / "0001.png", 1);
  const std::vector<uint8_t> jpeg = encode_jpeg(numbered_image(2, 16, 16), 90);
  write_text(root.path / "cat" / "0003.jpg", std::string(jpeg.begin(), jpeg.begin() + 200));
  write_text(root.path / "dog" / "0002.jpg", "random garbage, not a JPEG at all");

  ImageFolder data(root.path.string());  // files are only listed here, not decoded
  REQUIRE(data.size() == 3);
  Image image;
  data.load_image(0, image);
  const std::string truncated = error_of([&] { data.load_image(1, image); });
  CHECK(contains(truncated, (root.path / "cat" / "0003.jpg").string() + ": cannot decode: "));
  CHECK(contains(truncated, "truncated"));
  CHECK(error_of([&] { data.load_image(2, image); }) ==
        (root.path / "dog" / "0002.jpg").string() +
            ": cannot decode: neither a JPEG nor a PNG file");
  // The file vanishing after listing is named too.
  fs::remove(root.path / "cat" / "0001.png");
  CHECK(contains(error_of([&] { data.load_image(0, image); }), "0001.png: no such file"));
}

TEST_CASE("skip_bad_images leaves out the images that do not decode and names them") {
  TemporaryDirectory root;
  for (int i = 0; i < 5; ++i) {
    write_png_at(root.path / (i < 3 ? "ant" : "bee") / ("good" + std::to_string(i) + ".png"), i);
  }
  const std::vector<uint8_t> png = encode_png(numbered_image(9));
  write_text(root.path / "ant" / "cut.png", std::string(png.begin(), png.begin() + 40));
  write_text(root.path / "bee" / "empty.jpg", "");
  write_text(root.path / "bee" / "text.jpg", "hello");

  for (int threads : {1, 3}) {
    ImageFolderOptions options;
    options.skip_bad_images = true;
    options.threads = threads;
    ImageFolder data(root.path.string(), options);
    CHECK(data.size() == 5);
    CHECK(data.skipped() ==
          std::vector<std::string>{"ant/cut.png", "bee/empty.jpg", "bee/text.jpg"});
    CHECK(sources(data) == std::vector<std::string>{"ant/good0.png", "ant/good1.png",
                                                    "ant/good2.png", "bee/good3.png",
                                                    "bee/good4.png"});
    CHECK(data.labels() == std::vector<int64_t>{0, 0, 0, 1, 1});
    CHECK(first_byte(data, 4) == static_cast<uint8_t>(4 * 31));
  }
  // Without the option the bad files stay and fail when loaded.
  ImageFolder strict(root.path.string());
  CHECK(strict.size() == 8);
  CHECK(strict.skipped().empty());
}

TEST_CASE("imagenet layout pairs train and val with the same classes") {
  TemporaryDirectory root;
  for (const char* wnid : {"n01440764", "n01443537"}) {
    write_png_at(root.path / "train" / wnid / (std::string(wnid) + "_1.JPEG"), 1);
    write_png_at(root.path / "train" / wnid / (std::string(wnid) + "_2.JPEG"), 2);
    write_png_at(root.path / "val" / wnid / "ILSVRC2012_val_00000001.JPEG", 3);
  }
  const TrainTest splits = load_imagenet(root.path.string());
  CHECK(splits.train->size() == 4);
  CHECK(splits.test->size() == 2);
  CHECK(splits.train->class_names() == std::vector<std::string>{"n01440764", "n01443537"});
  CHECK(splits.test->labels() == std::vector<int64_t>{0, 1});
  CHECK(splits.test->source(1) == "n01443537/ILSVRC2012_val_00000001.JPEG");

  // A class only in val/.
  write_png_at(root.path / "val" / "n01484850" / "ILSVRC2012_val_00000002.JPEG", 4);
  const std::string mismatch = error_of([&] { load_imagenet(root.path.string()); });
  CHECK(contains(mismatch, "train/ and val/ have different classes (2 and 3)"));
  CHECK(contains(mismatch, "class \"n01484850\" is only in val/"));
  // And one only in train/.
  fs::remove_all(root.path / "val" / "n01484850");
  fs::remove_all(root.path / "val" / "n01440764");
  CHECK(contains(error_of([&] { load_imagenet(root.path.string()); }),
                 "class \"n01440764\" is only in train/"));

  // The validation archive unpacked as it comes: one flat folder.
  TemporaryDirectory flat;
  write_png_at(flat.path / "train" / "n01440764" / "a.JPEG", 1);
  write_png_at(flat.path / "val" / "ILSVRC2012_val_00000001.JPEG", 1);
  CHECK(contains(error_of([&] { load_imagenet(flat.path.string()); }),
                 "the validation images lie directly in val/"));
  CHECK(contains(error_of([&] { load_imagenet((flat.path / "nothing").string()); }),
                 "nothing: no such folder"));
}

TEST_CASE("dogs vs cats labels dogs 1 and cats 0 in number order") {
  TemporaryDirectory kaggle;
  const fs::path train = kaggle.path / "train";
  write_png_at(train / "cat.10.jpg", 10);
  write_png_at(train / "cat.2.jpg", 2);
  write_png_at(train / "dog.1.jpg", 51);
  write_png_at(train / "cat.1.jpg", 1);
  write_png_at(train / "dog.10.jpg", 60);
  write_png_at(train / "dog.best.jpg", 70);      // no number: after the numbered ones
  write_text(train / "labels.csv", "id,label");  // not an image: ignored

  DogsVsCats data(train.string());
  CHECK(sources(data) == std::vector<std::string>{"cat.1.jpg", "dog.1.jpg", "cat.2.jpg",
                                                  "cat.10.jpg", "dog.10.jpg", "dog.best.jpg"});
  CHECK(data.labels() == std::vector<int64_t>{0, 1, 0, 0, 1, 1});
  CHECK(data.class_names() == std::vector<std::string>{"cat", "dog"});
  CHECK(data.num_classes() == 2);
  CHECK(first_byte(data, 1) == static_cast<uint8_t>(51 * 31));
  CHECK(first_byte(data, 4) == static_cast<uint8_t>(60 * 31));

  // Pointed at the Kaggle root, it finds train/.
  DogsVsCats from_root(kaggle.path.string());
  CHECK(sources(from_root) == sources(data));
  CHECK(from_root.root() == train.string());

  // An image named neither cat.* nor dog.* (Kaggle's test1/ has only numbers).
  write_png_at(kaggle.path / "test1" / "1.jpg", 1);
  CHECK(
      contains(error_of([&] { DogsVsCats bad((kaggle.path / "test1").string()); }),
               (kaggle.path / "test1" / "1.jpg").string() + ": not a dogs-vs-cats training image"));
  fs::create_directories(kaggle.path / "empty");
  CHECK(contains(error_of([&] { DogsVsCats none((kaggle.path / "empty").string()); }),
                 "empty: no image files"));
}

TEST_CASE("a cifar10 image folder decodes into memory whatever the thread count") {
  const std::vector<std::string> classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
  TemporaryDirectory root;
  for (int label = 0; label < 10; ++label) {
    for (int i = 0; i < 3; ++i) {  // written out of name order
      write_png_at(root.path / "train" / classes[label] / ("000" + std::to_string(2 - i) + ".png"),
                   label * 3 + (2 - i), 32);
    }
    write_png_at(root.path / "test" / classes[label] / "0000.png", 100 + label, 32);
  }

  const TrainTest one = load_cifar10_image_folder(root.path.string(), 1);
  const TrainTest four = load_cifar10_image_folder(root.path.string(), 4);
  const auto& train = dynamic_cast<const InMemoryImageDataset&>(*one.train);
  const auto& test = dynamic_cast<const InMemoryImageDataset&>(*one.test);
  CHECK(train.size() == 30);
  CHECK(test.size() == 10);
  CHECK(train.height() == 32);
  CHECK(train.width() == 32);
  CHECK(train.channels() == 3);
  CHECK(train.class_names() == classes);
  for (size_t i = 0; i < 30; ++i) {
    CHECK(train.label(i) == static_cast<int64_t>(i / 3));
    // Example i is the image written with id i: classes in label order, files by name.
    const Image expected = numbered_image(static_cast<int>(i), 32, 32);
    CHECK(std::equal(expected.pixels.begin(), expected.pixels.end(), train.image_data(i)));
  }
  CHECK(test.labels() == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(test.image_data(9)[0] == static_cast<uint8_t>(109 * 31));
  CHECK(dynamic_cast<const InMemoryImageDataset&>(*four.train).pixels() == train.pixels());
  CHECK(dynamic_cast<const InMemoryImageDataset&>(*four.test).pixels() == test.pixels());
}

TEST_CASE("cifar10 image folder errors name the class folders and the file") {
  const std::vector<std::string> classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
  TemporaryDirectory root;
  for (const char* split : {"train", "test"}) {
    for (const std::string& name : classes) write_png_at(root.path / split / name / "0.png", 1, 32);
  }
  CHECK(load_cifar10_image_folder(root.path.string(), 2).train->size() == 10);

  // An image of another size.
  write_png_at(root.path / "test" / "frog" / "1.png", 2, 31);
  CHECK(contains(error_of([&] { load_cifar10_image_folder(root.path.string(), 2); }),
                 (root.path / "test" / "frog" / "1.png").string() +
                     ": a 31×31 image; CIFAR-10 images are 32×32"));
  fs::remove(root.path / "test" / "frog" / "1.png");

  // The first bad file in order is named, whatever the thread count.
  write_text(root.path / "train" / "bird" / "1.jpg", "garbage");
  write_text(root.path / "train" / "ship" / "1.jpg", "garbage");
  for (int threads : {1, 2, 5}) {
    CHECK(contains(error_of([&] { load_cifar10_image_folder(root.path.string(), threads); }),
                   "bird/1.jpg: cannot decode"));
  }
  fs::remove(root.path / "train" / "bird" / "1.jpg");
  fs::remove(root.path / "train" / "ship" / "1.jpg");

  // Class folders missing and unexpected.
  fs::rename(root.path / "train" / "cat", root.path / "train" / "kitten");
  fs::remove_all(root.path / "train" / "truck");
  const std::string classes_error =
      error_of([&] { load_cifar10_image_folder(root.path.string()); });
  CHECK(contains(classes_error, "train: expected the ten CIFAR-10 class folders (airplane, "));
  CHECK(contains(classes_error, "; missing: cat, truck; unexpected: kitten"));
  fs::rename(root.path / "train" / "kitten", root.path / "train" / "cat");
  fs::create_directories(root.path / "train" / "truck");
  CHECK(contains(error_of([&] { load_cifar10_image_folder(root.path.string()); }),
                 "class folder \"truck\" has no image files"));
  write_png_at(root.path / "train" / "truck" / "0.png", 1, 32);

  fs::remove_all(root.path / "test");
  CHECK(contains(error_of([&] { load_cifar10_image_folder(root.path.string()); }),
                 "test: no such folder"));
}

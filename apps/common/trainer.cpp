// The shared training loop (see trainer.h).
#include "apps/common/trainer.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "apps/common/classification_metrics.h"  // count_correct
#include "apps/common/svg_plot.h"                // write_run_plots
#include "datasets/splits.h"                     // hold_out_split
#include "engine/ember.h"
#include "layers/adam.h"
#include "layers/checkpoint.h"
#include "layers/model_registry.h"
#include "layers/sgd.h"

namespace ember::app {

namespace {

using json = nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// 11689512 -> "11,689,512"
std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100 * fraction);
  return text;
}

// JSON null for a value that was not measured.
json number_or_null(double value) {
  return std::isnan(value) ? json(nullptr) : json(value);
}
double number_or_nan(const json& value) {
  return value.is_number() ? value.get<double>() : NAN;
}

// The records travel inside the checkpoint, so a resumed run can write the whole epochs.csv
// wherever its folder is. Doubles in JSON keep every bit (nlohmann prints 17 digits).
json records_to_json(const std::vector<EpochRecord>& records) {
  json rows = json::array();
  for (const EpochRecord& r : records)
    rows.push_back({r.epoch, number_or_null(r.train_loss), number_or_null(r.val_loss),
                    number_or_null(r.test_loss), number_or_null(r.train_acc),
                    number_or_null(r.val_acc), number_or_null(r.test_acc),
                    number_or_null(r.test_acc5), number_or_null(r.epoch_s),
                    number_or_null(r.ms_per_step)});
  return rows;
}

std::vector<EpochRecord> records_from_json(const json& rows, const std::string& source) {
  EMBER_CHECK(rows.is_array(), source, ": the checkpoint's \"history\" is not a list");
  std::vector<EpochRecord> records;
  for (const json& row : rows) {
    EMBER_CHECK(row.is_array() && row.size() == 10 && row[0].is_number_integer(), source,
                ": a row of the checkpoint's \"history\" is not an epoch record");
    EpochRecord r;
    r.epoch = row[0].get<int64_t>();
    double* fields[] = {&r.train_loss, &r.val_loss,  &r.test_loss, &r.train_acc,  &r.val_acc,
                        &r.test_acc,   &r.test_acc5, &r.epoch_s,   &r.ms_per_step};
    for (size_t i = 0; i < 9; ++i) *fields[i] = number_or_nan(row[i + 1]);
    records.push_back(r);
  }
  return records;
}

// The metadata entries of a safetensors file, read from its header alone (the tensors may be
// large); empty when the file cannot be read as one: load_checkpoint then says what is wrong.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::map<std::string, std::string> metadata;
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return metadata;
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = size << 8 | size_bytes[i];
  if (size > (uint64_t{1} << 30)) return metadata;
  std::string header(size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) return metadata;
  const json parsed = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("__metadata__")) return metadata;
  for (const auto& [key, value] : parsed["__metadata__"].items())
    if (value.is_string()) metadata[key] = value.get<std::string>();
  return metadata;
}

std::shared_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                 std::vector<Tensor> params) {
  if (o.optimizer == "sgd") {
    optim::SGDOptions sgd(o.lr);
    sgd.momentum = o.momentum;
    sgd.weight_decay = o.weight_decay;
    sgd.nesterov = o.nesterov;
    EMBER_CHECK(!o.nesterov || o.momentum > 0, "--nesterov needs a --momentum above 0");
    return std::make_shared<optim::SGD>(std::move(params), sgd);
  }
  if (o.optimizer == "adam" || o.optimizer == "adamw") {
    optim::AdamOptions adam;
    adam.lr = o.lr;
    adam.weight_decay = o.weight_decay;
    if (o.optimizer == "adam") return std::make_shared<optim::Adam>(std::move(params), adam);
    optim::AdamWOptions adamw;
    static_cast<optim::AdamOptions&>(adamw) = adam;
    return std::make_shared<optim::AdamW>(std::move(params), adamw);
  }
  throw Error(str_cat("--optimizer ", o.optimizer, ": unknown; the optimizers are sgd, adam and ",
                      "adamw"));
}

std::string optimizer_description(const TrainOptions& o) {
  std::string text = str_cat(o.optimizer == "sgd"    ? "SGD"
                             : o.optimizer == "adam" ? "Adam"
                                                     : "AdamW",
                             " lr ", o.lr);
  if (o.optimizer == "sgd")
    text += str_cat(" momentum ", o.momentum, o.nesterov ? " (Nesterov)" : "");
  return text + str_cat(" weight decay ", o.weight_decay);
}

}  // namespace

Trainer::Trainer(TrainOptions options, TrainingData data, std::FILE* console, TrainerHooks hooks)
    : options_(std::move(options)),
      data_(std::move(data)),
      console_(console),
      hooks_(std::move(hooks)) {
  EMBER_CHECK(data_.train && data_.test, options_.program, ": no training or test set given");
  EMBER_CHECK(options_.epochs >= 1, "--epochs ", options_.epochs, " must be at least 1");
  EMBER_CHECK(options_.batch_size >= 1, "--batch-size ", options_.batch_size,
              " must be at least 1");
  EMBER_CHECK(options_.workers >= 0, "--workers ", options_.workers, " must not be negative");
  EMBER_CHECK(options_.print_freq >= 1, "--print-freq ", options_.print_freq,
              " must be at least 1");
  EMBER_CHECK(options_.start_epoch >= 0 && options_.start_epoch < options_.epochs, "--start-epoch ",
              options_.start_epoch, " must lie in [0, --epochs ", options_.epochs, ")");

  // A resumed run keeps the seed it started with: the data order and the validation hold-out
  // depend on it.
  std::map<std::string, std::string> saved;
  if (!options_.resume.empty()) {
    EMBER_CHECK(std::filesystem::is_regular_file(options_.resume), "--resume ", options_.resume,
                ": no such file");
    saved = read_safetensors_metadata(options_.resume);
    if (saved.count("seed")) options_.seed = std::stoull(saved["seed"]);
  }

  device_ = resolve_device(options_.device);
  if (options_.val_size > 0) {
    const data::HoldOut split =
        data::hold_out_split(data_.train->size(), options_.val_size, options_.seed);
    train_set_ = std::make_shared<data::Subset>(data_.train, split.train);
    val_set_ = std::make_shared<data::Subset>(data_.train, split.validation);
  } else {
    train_set_ = data_.train;
  }

  manual_seed(options_.seed);
  nn::ModelOptions model_options;
  model_options.num_classes = data_.train->num_classes();
  model_ = nn::make_model(options_.arch, model_options);
  if (!options_.pretrained.empty()) nn::load_weights(*model_, options_.pretrained);
  model_->to(device_);

  optimizer_ = make_optimizer(options_, model_->parameters());
  if (hooks_.wrap_optimizer) optimizer_ = hooks_.wrap_optimizer(model_, optimizer_);

  std::shared_ptr<const data::Sampler> sampler =
      hooks_.train_sampler
          ? hooks_.train_sampler(train_set_->size(), options_.seed)
          : std::make_shared<data::RandomSampler>(train_set_->size(), options_.seed);
  data::DataLoaderOptions loader;
  loader.batch_size = options_.batch_size;
  loader.workers = options_.workers;
  loader.device = device_;
  loader.seed = options_.seed;
  train_loader_ = std::make_unique<data::DataLoader>(train_set_, sampler, data_.train_transform,
                                                     data_.normalize, loader);
  const int64_t steps_per_epoch = static_cast<int64_t>(train_loader_->steps_per_epoch());
  EMBER_CHECK(steps_per_epoch >= 1, options_.program, ": the training set is empty");
  auto eval_loader = [&](const std::shared_ptr<const data::Dataset>& set) {
    return std::make_unique<data::DataLoader>(
        set, std::make_shared<data::SequentialSampler>(set->size()), data_.eval_transform,
        data_.normalize, loader);
  };
  if (val_set_) val_loader_ = eval_loader(val_set_);
  test_loader_ = eval_loader(data_.test);

  scheduler_ = make_lr_schedule(options_.schedule, *optimizer_, options_.epochs, steps_per_epoch);
  if (options_.start_epoch > 0) {
    epoch_ = options_.start_epoch;
    global_step_ = epoch_ * steps_per_epoch;
    scheduler_->step_to(global_step_);
  }
  if (!options_.resume.empty()) resume_from(options_.resume);

  if (hooks_.write_outputs) {
    folder_ = !options_.out.empty() ? options_.out
              : !options_.resume.empty()
                  ? std::filesystem::absolute(options_.resume).parent_path().string()
                  : default_run_folder(options_.arch);
  }
  progress_ = std::make_unique<Progress>(console_, Progress::is_terminal(console_),
                                         options_.print_freq, options_.epochs);
}

Trainer::~Trainer() = default;

void Trainer::resume_from(const std::string& path) {
  nn::Checkpoint info;
  try {
    info = nn::load_checkpoint(path, *model_, optimizer_.get(), scheduler_.get());
  } catch (const Error&) {
    // The optimizer's and scheduler's shapes are checked first; when the model itself does not
    // fit (another architecture), its mismatched keys say more than the optimizer's sizes.
    nn::load_checkpoint(path, *model_, nullptr, nullptr);
    throw;
  }
  epoch_ = info.counters.epoch;
  global_step_ = info.counters.global_step;
  best_top1_ = info.counters.best_accuracy;
  const auto other = [&](const char* key, double fallback) {
    const auto found = info.counters.other.find(key);
    return found == info.counters.other.end() ? fallback : found->second;
  };
  best_epoch_ = static_cast<int64_t>(other("best_epoch", 0));
  best_top5_ = other("best_top5", NAN);
  const auto history = info.metadata.find("history");
  if (history != info.metadata.end())
    records_ = records_from_json(json::parse(history->second, nullptr, false), path);
  EMBER_CHECK(epoch_ <= options_.epochs, path, ": the checkpoint has trained ", epoch_,
              " epochs, more than --epochs ", options_.epochs);
  std::fprintf(console_, "%s: resuming from %s: %lld epoch%s done (seed %llu)\n",
               options_.program.c_str(), path.c_str(), static_cast<long long>(epoch_),
               epoch_ == 1 ? "" : "s", static_cast<unsigned long long>(options_.seed));
  std::fflush(console_);
}

PassResult Trainer::train_epoch() {
  PassResult result;
  model_->train();
  train_loader_->start_epoch(epoch_);
  const int64_t steps = static_cast<int64_t>(train_loader_->steps_per_epoch());
  progress_->start_epoch(epoch_ + 1, steps);
  const auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t correct = 0;
  data::Batch batch;
  const CommunicationTotals comm_before =
      hooks_.communication_totals ? hooks_.communication_totals() : CommunicationTotals{};
  while (train_loader_->next(batch)) {
    optimizer_->zero_grad();
    const Tensor logits = (*model_)(batch.images);
    const Tensor loss = cross_entropy(logits, batch.labels);
    loss.backward();
    optimizer_->step();
    scheduler_->step();
    ++global_step_;

    const int64_t n = batch.labels.size(0);
    loss_sum += loss.item<double>() * static_cast<double>(n);
    correct += count_correct(logits, batch.labels, 1).top1;
    result.samples += n;
    ++result.steps;
    progress_->step(result.steps, loss_sum / static_cast<double>(result.samples),
                    static_cast<double>(correct) / static_cast<double>(result.samples), n);
  }
  synchronize(device_);
  result.seconds = seconds_since(start);
  result.loss = loss_sum / static_cast<double>(result.samples);
  result.top1 = static_cast<double>(correct) / static_cast<double>(result.samples);
  ++epoch_;
  if (hooks_.communication_totals) {
    const CommunicationTotals after = hooks_.communication_totals();
    train_communication_.payload_bytes += after.payload_bytes - comm_before.payload_bytes;
    train_communication_.operations += after.operations - comm_before.operations;
    train_communication_.seconds += after.seconds - comm_before.seconds;
    result.payload_bytes = after.payload_bytes - comm_before.payload_bytes;
    result.communication_seconds = after.seconds - comm_before.seconds;
  }
  train_seconds_ += result.seconds;
  train_images_ += result.samples;
  train_steps_ += result.steps;
  return result;
}

PassResult Trainer::evaluate(EvalSet set) {
  return evaluate(hooks_.evaluation_model ? hooks_.evaluation_model(*model_) : *model_, set);
}

PassResult Trainer::evaluate(nn::Module& model, EvalSet set) {
  PassResult result;
  data::DataLoader* loader = set == EvalSet::Test ? test_loader_.get() : val_loader_.get();
  if (!loader) return result;
  const auto start = std::chrono::steady_clock::now();
  const bool was_training = model.is_training();
  model.eval();
  NoGrad no_grad;
  CrossEntropyOptions summed;
  summed.reduction = Reduction::Sum;
  double loss_sum = 0;
  TopKCounts counts;
  loader->start_epoch(0);
  data::Batch batch;
  while (loader->next(batch)) {
    const Tensor logits = model(batch.images);
    loss_sum += cross_entropy(logits, batch.labels, summed).item<double>();
    const TopKCounts c = count_correct(logits, batch.labels, 5);
    counts.samples += c.samples;
    counts.top1 += c.top1;
    counts.topk += c.topk;
    ++result.steps;
  }
  model.train(was_training);
  result.samples = counts.samples;
  if (counts.samples > 0) {
    const double n = static_cast<double>(counts.samples);
    result.loss = loss_sum / n;
    result.top1 = static_cast<double>(counts.top1) / n;
    result.top5 = static_cast<double>(counts.topk) / n;
  }
  result.seconds = seconds_since(start);
  return result;
}

const std::vector<EpochRecord>& Trainer::fit() {
  std::fprintf(console_, "%s\n", header().c_str());
  std::fflush(console_);
  if (epoch_ >= options_.epochs) {
    std::fprintf(console_, "%s: already trained for %lld epochs (--epochs %lld): nothing to do\n",
                 options_.program.c_str(), static_cast<long long>(epoch_),
                 static_cast<long long>(options_.epochs));
    return records_;
  }
  if (hooks_.write_outputs) make_run_folder(folder_);
  while (epoch_ < options_.epochs) {
    const auto start = std::chrono::steady_clock::now();
    const PassResult train = train_epoch();
    const PassResult val = evaluate(EvalSet::Validation);
    const PassResult test = evaluate(EvalSet::Test);

    EpochRecord record;
    record.epoch = epoch_;
    record.train_loss = train.loss;
    record.train_acc = train.top1;
    record.val_loss = val.loss;
    record.val_acc = val.top1;
    record.test_loss = test.loss;
    record.test_acc = test.top1;
    record.test_acc5 = test.top5;
    record.epoch_s = seconds_since(start);
    record.ms_per_step = 1000 * train.seconds / static_cast<double>(train.steps);
    if (hooks_.evaluation_model && hooks_.mean_over_processes)
      record.rank_mean_test_acc = hooks_.mean_over_processes(evaluate(*model_, EvalSet::Test).top1);
    if (hooks_.communication_totals) {
      record.bytes_per_step = train.payload_bytes / static_cast<double>(train.steps);
      record.comm_ms_per_step =
          1000 * train.communication_seconds / static_cast<double>(train.steps);
    }
    records_.push_back(record);

    const PassResult& judged = val_set_ ? val : test;
    const bool best = judged.top1 > best_top1_;
    if (best) {
      best_top1_ = judged.top1;
      best_top5_ = judged.top5;
      best_epoch_ = epoch_;
    }
    std::string line;
    if (val_set_) line += str_cat("val ", percent(val.top1), ", ");
    char loss[32];
    std::snprintf(loss, sizeof loss, "%.4f", test.loss);
    line += str_cat("test ", percent(test.top1), " (top-5 ", percent(test.top5), ", loss ", loss,
                    "), ", Progress::format_duration(record.epoch_s));
    if (!std::isnan(record.rank_mean_test_acc))
      line += str_cat(", replicas' own test top-1 ", percent(record.rank_mean_test_acc));
    if (best) line += ", best";
    progress_->end_epoch(line);

    if (hooks_.write_outputs) {
      save_checkpoint(folder_ + "/checkpoint_last.safetensors");
      if (best) save_checkpoint(folder_ + "/checkpoint_best.safetensors");
      write_outputs();
    }
  }
  if (hooks_.write_outputs) {
    const EpochRecord& last = records_.back();
    std::fprintf(console_,
                 "%s: final test top-1 %s (top-5 %s); best %s top-1 %s at epoch %lld\n"
                 "  epochs:      %s/epochs.csv\n"
                 "  summary:     %s/summary.json\n"
                 "  plots:       %s/loss.svg, %s/accuracy.svg\n"
                 "  checkpoints: %s/checkpoint_last.safetensors, "
                 "%s/checkpoint_best.safetensors\n",
                 options_.program.c_str(), percent(last.test_acc).c_str(),
                 percent(last.test_acc5).c_str(), val_set_ ? "validation" : "test",
                 percent(best_top1_).c_str(), static_cast<long long>(best_epoch_), folder_.c_str(),
                 folder_.c_str(), folder_.c_str(), folder_.c_str(), folder_.c_str(),
                 folder_.c_str());
    std::fflush(console_);
  }
  return records_;
}

void Trainer::save_checkpoint(const std::string& path) const {
  nn::TrainingCounters counters;
  counters.epoch = epoch_;
  counters.global_step = global_step_;
  counters.best_accuracy = best_top1_;
  counters.other["best_epoch"] = static_cast<double>(best_epoch_);
  if (!std::isnan(best_top5_)) counters.other["best_top5"] = best_top5_;
  nn::save_checkpoint(path, *model_, optimizer_.get(), scheduler_.get(), counters,
                      {{"arch", options_.arch},
                       {"program", options_.program},
                       {"seed", std::to_string(options_.seed)},
                       {"history", records_to_json(records_).dump()}});
}

void Trainer::write_outputs() {
  write_epoch_csv(folder_ + "/epochs.csv", records_);
  write_run_plots(folder_, records_, str_cat(options_.arch, " (", options_.program, ")"));
  write_json(folder_ + "/summary.json", summary());
}

nlohmann::json Trainer::summary() const {
  const EpochRecord last = records_.empty() ? EpochRecord{} : records_.back();
  std::string device = device_.str();
  if (device_.is_cuda()) device += str_cat(" (", device_properties(device_).name, ")");
  json out;
  out["program"] = options_.program;
  out["arguments"] = options_.arguments;
  out["environment"] = run_environment(device);
  out["model"] = {{"arch", options_.arch}, {"parameters", model_->num_parameters()}};
  out["data"] = {{"description", data_.description},
                 {"classes", data_.train->num_classes()},
                 {"train", train_set_->size()},
                 {"validation", val_set_ ? json(val_set_->size()) : json(nullptr)},
                 {"test", data_.test->size()}};
  out["optimizer"] = optimizer_description(options_);
  out["schedule"] = describe_schedule(options_.schedule);
  out["seed"] = options_.seed;
  out["epochs"] = {{"planned", options_.epochs}, {"completed", epoch_}};
  out["final"] = {{"epoch", last.epoch},
                  {"train_loss", number_or_null(last.train_loss)},
                  {"train_top1", number_or_null(last.train_acc)},
                  {"val_loss", number_or_null(last.val_loss)},
                  {"val_top1", number_or_null(last.val_acc)},
                  {"test_loss", number_or_null(last.test_loss)},
                  {"test_top1", number_or_null(last.test_acc)},
                  {"test_top5", number_or_null(last.test_acc5)}};
  json best = {{"judged_on", val_set_ ? "validation" : "test"},
               {"epoch", best_epoch_},
               {"top1", number_or_null(best_top1_ < 0 ? NAN : best_top1_)},
               {"top5", number_or_null(best_top5_)}};
  for (const EpochRecord& r : records_)
    if (r.epoch == best_epoch_) {
      best["test_top1"] = number_or_null(r.test_acc);
      best["test_top5"] = number_or_null(r.test_acc5);
    }
  out["best"] = best;
  const double images = static_cast<double>(train_images_);
  out["throughput"] = {
      {"train_seconds", train_seconds_},
      {"images_per_second", number_or_null(train_seconds_ > 0 ? images / train_seconds_ : NAN)},
      {"ms_per_step",
       number_or_null(train_steps_ > 0 ? 1000 * train_seconds_ / static_cast<double>(train_steps_)
                                       : NAN)}};
  if (!hooks_.distributed.is_null()) {
    json distributed = hooks_.distributed;
    if (train_steps_ > 0 && hooks_.communication_totals) {
      // What bin/ember_netmodel projects other networks from (per training step of this rank).
      const double steps = static_cast<double>(train_steps_);
      const double ms = 1000 * train_seconds_ / steps;
      const double comm_ms = 1000 * train_communication_.seconds / steps;
      distributed["communication"] = {
          {"payload_bytes_per_step", train_communication_.payload_bytes / steps},
          {"collectives_per_step", train_communication_.operations / steps},
          {"comm_ms_per_step", comm_ms},
          {"ms_per_step", ms},
          {"compute_ms_per_step", std::max(0.0, ms - comm_ms)}};
    }
    out["distributed"] = distributed;
    out["communication"] = distributed.value("communication", json(nullptr));
  }
  out["files"] = {{"epochs_csv", "epochs.csv"},
                  {"plots", {"loss.svg", "accuracy.svg"}},
                  {"checkpoints", {"checkpoint_last.safetensors", "checkpoint_best.safetensors"}}};
  return out;
}

std::string Trainer::header() const {
  std::string text = str_cat(
      options_.program, ": ", options_.arch, " (", with_thousands(model_->num_parameters()),
      " parameters) on ", device_.str(), "; ", data_.description, ": ",
      with_thousands(static_cast<int64_t>(train_set_->size())), " training",
      val_set_
          ? str_cat(", ", with_thousands(static_cast<int64_t>(val_set_->size())), " validation")
          : "",
      ", ", with_thousands(static_cast<int64_t>(data_.test->size())), " test images");
  text += str_cat("\n  ", options_.epochs, " epochs of batch ", options_.batch_size, ", ",
                  optimizer_description(options_), ", schedule ",
                  describe_schedule(options_.schedule), ", seed ", options_.seed);
  if (data_.train_transform) text += str_cat(", augmentation ", data_.train_transform->describe());
  if (!hooks_.distributed.is_null() && hooks_.distributed.contains("description"))
    text += str_cat("\n  ", hooks_.distributed["description"].get<std::string>());
  if (!folder_.empty()) text += str_cat("\n  run folder ", folder_);
  return text;
}

}  // namespace ember::app

// Weights files and checkpoints (see checkpoint.h for both layouts).
//
// Loading a checkpoint reads and checks everything it can before it changes anything: the
// metadata is parsed, the optimizer's and scheduler's kinds and group sizes are compared with
// the ones given, and Module::load_state_dict checks every key and shape before it copies. Only
// then are the model, the optimizer, the scheduler and the generator restored, in that order (so
// only what the optimizer's own checks find, a corrupt file, can stop a load after the model).
#include "layers/checkpoint.h"

#include <nlohmann/json.hpp>  // the metadata entries

#include <cmath>  // isfinite
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/random.h"  // default_generator
#include "engine/safetensors.h"

namespace ember::nn {

namespace {

using json = nlohmann::json;

constexpr const char* kFormat = "ember-checkpoint";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";
// Metadata keys the checkpoint itself uses; "arch" is the caller's to give.
const std::set<std::string> kReservedKeys = {"format",    "version", "optimizer",
                                             "scheduler", "rng",     "counters"};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool is_checkpoint(const SafetensorsFile& file) {
  const auto format = file.metadata.find("format");
  return format != file.metadata.end() && format->second == kFormat;
}

// "3 tensors, e.g. 'conv1.weight', 'conv1.bias'": what a file holds, for error messages.
std::string describe_tensors(const SafetensorsFile& file) {
  std::string out = str_cat(file.tensors.size(), " tensor(s)");
  for (size_t i = 0; i < file.tensors.size() && i < 3; ++i)
    out += str_cat(i ? ", '" : ", e.g. '", file.tensors[i].first, "'");
  return out;
}

json parse_entry(const SafetensorsFile& file, const std::string& key) {
  const auto entry = file.metadata.find(key);
  EMBER_CHECK(entry != file.metadata.end(), file.source, ": the checkpoint has no \"", key,
              "\" metadata");
  try {
    return json::parse(entry->second);
  } catch (const json::exception& e) {
    throw Error(str_cat(file.source, ": the checkpoint's \"", key,
                        "\" metadata is not valid JSON: ", e.what()));
  }
}

// The JSON number for a counter (NaN and infinities have no JSON form: null stands for them).
json counter_value(double value) {
  return std::isfinite(value) ? json(value) : json(nullptr);
}

double read_counter(const json& value, const SafetensorsFile& file, const std::string& key) {
  if (value.is_null()) return std::numeric_limits<double>::quiet_NaN();
  EMBER_CHECK(value.is_number(), file.source, ": counter \"", key, "\" is not a number");
  return value.get<double>();
}

// The metadata of a checkpoint, checked; an error that says what the file is otherwise.
Checkpoint read_info(const SafetensorsFile& file) {
  if (!is_checkpoint(file))
    throw Error(str_cat(file.source,
                        " is not an ember checkpoint (its metadata has no \"format\": \"", kFormat,
                        "\"): it holds ", describe_tensors(file),
                        ". A weights file (a model's state_dict alone) loads with load_weights; "
                        "bin/ember_infer --weights takes either kind."));
  Checkpoint info;
  info.path = file.source;
  const auto version = file.metadata.find("version");
  EMBER_CHECK(version != file.metadata.end(), file.source,
              ": the checkpoint has no \"version\" metadata");
  try {
    info.version = std::stoi(version->second);
  } catch (const std::exception&) {
    throw Error(
        str_cat(file.source, ": checkpoint version \"", version->second, "\" is not a number"));
  }
  EMBER_CHECK(info.version >= 1 && info.version <= kCheckpointVersion, file.source,
              ": checkpoint version ", info.version, " (this ember reads versions 1 to ",
              kCheckpointVersion, "; a newer ember wrote it)");

  for (const auto& [key, value] : file.metadata) {
    if (key == "arch")
      info.arch = value;
    else if (!kReservedKeys.count(key))
      info.metadata[key] = value;
  }
  info.has_optimizer = file.metadata.count("optimizer") > 0;
  info.has_scheduler = file.metadata.count("scheduler") > 0;

  const json rng = parse_entry(file, "rng");
  EMBER_CHECK(rng.is_object() && rng.contains("seed") && rng["seed"].is_number_unsigned() &&
                  rng.contains("offset") && rng["offset"].is_number_unsigned(),
              file.source,
              ": the checkpoint's \"rng\" needs unsigned integers \"seed\" and "
              "\"offset\"");
  info.rng_seed = rng["seed"].get<uint64_t>();
  info.rng_offset = rng["offset"].get<uint64_t>();

  const json counters = parse_entry(file, "counters");
  EMBER_CHECK(counters.is_object(), file.source,
              ": the checkpoint's \"counters\" is not an object");
  for (const auto& [key, value] : counters.items()) {
    if (key == "epoch" || key == "global_step") {
      EMBER_CHECK(value.is_number_integer(), file.source, ": counter \"", key,
                  "\" is not an integer");
      (key == "epoch" ? info.counters.epoch : info.counters.global_step) = value.get<int64_t>();
    } else if (key == "best_accuracy") {
      info.counters.best_accuracy = read_counter(value, file, key);
    } else {
      info.counters.other[key] = read_counter(value, file, key);
    }
  }
  return info;
}

// The file's tensors with wrapper prefixes dropped: "module." or "model.", as long as every name
// of the file has one and no name of the model does (see load_weights). Both may be nested
// ("model.module.conv1.weight").
NamedTensors strip_wrapper_prefixes(NamedTensors tensors, const Module& model) {
  const NamedTensors own = model.state_dict();
  auto strips = [&](const std::string& prefix) {
    if (tensors.empty()) return false;
    for (const auto& [name, t] : tensors)
      if (!starts_with(name, prefix)) return false;
    for (const auto& [name, t] : own)
      if (starts_with(name, prefix)) return false;
    return true;
  };
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (const std::string prefix : {"module.", "model."}) {
      if (!strips(prefix)) continue;
      for (auto& entry : tensors) entry.first.erase(0, prefix.size());
      stripped = true;
    }
  }
  return tensors;
}

LoadResult load_weights_file(Module& model, const SafetensorsFile& file, bool strict) {
  if (is_checkpoint(file)) {
    const Checkpoint info = read_info(file);
    throw Error(str_cat(file.source, " is an ember checkpoint (model, optimizer and training state",
                        info.arch.empty() ? "" : " of " + info.arch, ", epoch ",
                        info.counters.epoch,
                        "), not a weights file. Load it with load_checkpoint, "
                        "or its model alone with load_weights_or_checkpoint; bin/ember_infer "
                        "--weights takes either kind."));
  }
  const NamedTensors tensors = strip_wrapper_prefixes(file.tensors, model);
  try {
    return model.load_state_dict(tensors, strict);
  } catch (const Error& e) {
    // When most names differ, the key lists below are long and say little by themselves.
    std::set<std::string> given;
    for (const auto& [name, t] : tensors) given.insert(name);
    const NamedTensors own = model.state_dict();
    size_t found = 0;
    for (const auto& [name, t] : own) found += given.count(name);
    throw Error(str_cat(file.source, ": ",
                        2 * found >= own.size()
                            ? ""
                            : str_cat("only ", found, " of the model's ", own.size(),
                                      " tensor names are in the file (weights of another "
                                      "architecture?); "),
                        e.what()));
  }
}

// The model's tensors of a checkpoint (prefix dropped) and its optimizer's.
struct CheckpointTensors {
  NamedTensors model;
  optim::OptimizerStateDict optimizer;
};

CheckpointTensors split_tensors(const SafetensorsFile& file) {
  CheckpointTensors out;
  const std::string model_prefix = kModelPrefix, optimizer_prefix = kOptimizerPrefix;
  for (const auto& [name, t] : file.tensors) {
    if (starts_with(name, model_prefix))
      out.model.emplace_back(name.substr(model_prefix.size()), t);
    else if (starts_with(name, optimizer_prefix))
      out.optimizer.tensors[name.substr(optimizer_prefix.size())] = t;
    else
      throw Error(str_cat(file.source, ": checkpoint tensor '", name, "' is neither model.* nor ",
                          "optimizer.*"));
  }
  return out;
}

void load_model_part(Module& model, const NamedTensors& tensors, const Checkpoint& info,
                     bool strict) {
  try {
    model.load_state_dict(tensors, strict);
  } catch (const Error& e) {
    throw Error(str_cat(info.path, ": the checkpoint's model",
                        info.arch.empty() ? "" : " (" + info.arch + ")",
                        " does not fit the model given: ", e.what()));
  }
}

// The optimizer's kind and the sizes of its groups against the saved ones: what differs when a
// checkpoint meets another training set-up. (Its load_state_dict checks the rest.)
void check_optimizer_fits(const json& saved, const optim::Optimizer& optimizer,
                          const std::string& path) {
  const std::string kind =
      saved.is_object() && saved.contains("optimizer") && saved["optimizer"].is_string()
          ? saved["optimizer"].get<std::string>()
          : "(no kind)";
  EMBER_CHECK(kind == optimizer.name(), path, ": the checkpoint's optimizer is ", kind,
              ", the one given is ", optimizer.name());
  const auto& groups = optimizer.param_groups();
  EMBER_CHECK(saved.contains("param_groups") && saved["param_groups"].is_array() &&
                  saved["param_groups"].size() == groups.size(),
              path, ": the checkpoint's optimizer has ",
              saved.contains("param_groups") ? saved["param_groups"].size() : 0,
              " parameter group(s), the one given has ", groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const json& group = saved["param_groups"][i];
    const size_t count = group.is_object() && group.contains("params") && group["params"].is_array()
                             ? group["params"].size()
                             : 0;
    EMBER_CHECK(count == groups[i].params.size(), path, ": parameter group ", i,
                " of the checkpoint's optimizer has ", count, " parameter(s), the one given has ",
                groups[i].params.size());
  }
}

}  // namespace

// ---- weights files --------------------------------------------------------------------------

void save_weights(const std::string& path, const Module& model) {
  // "format": "pt" is what PyTorch's safetensors files carry: the names are state_dict names.
  save_safetensors(path, model.state_dict(), {{"format", "pt"}});
}

LoadResult load_weights(Module& model, const std::string& path, bool strict) {
  return load_weights_file(model, load_safetensors(path), strict);
}

// ---- checkpoints ----------------------------------------------------------------------------

void save_checkpoint(const std::string& path, const Module& model,
                     const optim::Optimizer* optimizer, const optim::LRScheduler* scheduler,
                     const TrainingCounters& counters,
                     const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> entries;
  for (const auto& [key, value] : metadata) {
    EMBER_CHECK(!kReservedKeys.count(key), "save_checkpoint(", path, "): metadata key \"", key,
                "\" is the checkpoint's own (reserved: format, version, optimizer, scheduler, "
                "rng, counters)");
    entries[key] = value;
  }
  entries["format"] = kFormat;
  entries["version"] = std::to_string(kCheckpointVersion);

  NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(kModelPrefix + name, t);
  if (optimizer) {
    const optim::OptimizerStateDict state = optimizer->state_dict();
    for (const auto& [name, t] : state.tensors) tensors.emplace_back(kOptimizerPrefix + name, t);
    entries["optimizer"] = state.metadata.dump();
  }
  if (scheduler) entries["scheduler"] = scheduler->state_dict().dump();

  const Generator& generator = default_generator();
  entries["rng"] = json{{"seed", generator.seed()}, {"offset", generator.offset()}}.dump();

  json values = {{"epoch", counters.epoch},
                 {"global_step", counters.global_step},
                 {"best_accuracy", counter_value(counters.best_accuracy)}};
  for (const auto& [key, value] : counters.other) {
    EMBER_CHECK(!values.contains(key), "save_checkpoint(", path, "): counter \"", key,
                "\" in `other` has a field of its own in TrainingCounters");
    values[key] = counter_value(value);
  }
  entries["counters"] = values.dump();

  save_safetensors(path, tensors, entries);
}

Checkpoint load_checkpoint(const std::string& path, Module& model, optim::Optimizer* optimizer,
                           optim::LRScheduler* scheduler) {
  const SafetensorsFile file = load_safetensors(path);
  const Checkpoint info = read_info(file);
  CheckpointTensors tensors = split_tensors(file);

  // Everything that can be checked before a value changes.
  json scheduler_state;
  if (optimizer) {
    EMBER_CHECK(info.has_optimizer, path,
                ": the checkpoint holds no optimizer state (it was saved without an optimizer)");
    tensors.optimizer.metadata = parse_entry(file, "optimizer");
    check_optimizer_fits(tensors.optimizer.metadata, *optimizer, path);
  }
  if (scheduler) {
    EMBER_CHECK(info.has_scheduler, path,
                ": the checkpoint holds no LR scheduler state (it was saved without one)");
    scheduler_state = parse_entry(file, "scheduler");
    const std::string kind = scheduler_state.is_object() && scheduler_state.contains("scheduler") &&
                                     scheduler_state["scheduler"].is_string()
                                 ? scheduler_state["scheduler"].get<std::string>()
                                 : "(no kind)";
    EMBER_CHECK(kind == scheduler->name(), path, ": the checkpoint's LR scheduler is ", kind,
                ", the one given is ", scheduler->name());
  }

  load_model_part(model, tensors.model, info, /*strict=*/true);
  try {
    if (optimizer) optimizer->load_state_dict(tensors.optimizer);
    if (scheduler) scheduler->load_state_dict(scheduler_state);
  } catch (const Error& e) {
    throw Error(str_cat(path, ": ", e.what()));
  }
  Generator& generator = default_generator();
  generator.manual_seed(info.rng_seed);
  generator.set_offset(info.rng_offset);
  return info;
}

// ---- either kind ----------------------------------------------------------------------------

WeightsSource load_weights_or_checkpoint(Module& model, const std::string& path, bool strict) {
  const SafetensorsFile file = load_safetensors(path);
  if (!is_checkpoint(file)) {
    load_weights_file(model, file, strict);
    return WeightsSource::WeightsFile;
  }
  const Checkpoint info = read_info(file);
  load_model_part(model, split_tensors(file).model, info, strict);
  return WeightsSource::Checkpoint;
}

}  // namespace ember::nn

// get_distributed_optimizer: algorithm names, option parsing and groups (see
// distributed_optimizer.h).
#include "dist/distributed_optimizer.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <utility>

#include "engine/error.h"  // EMBER_CHECK, Error

namespace ember::dist {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out.empty() ? "(none)" : out;
}

// Reads the options of one algorithm from a JSON object, remembering which keys it knows, so
// that finish() can reject the others with the list of valid ones.
class OptionReader {
 public:
  OptionReader(std::string algorithm, const nlohmann::json& options)
      : algorithm_(std::move(algorithm)), options_(options) {
    EMBER_CHECK(options_.is_object() || options_.is_null(), algorithm_,
                ": the options must be a JSON object of key: value, got ", options_.dump());
  }

  bool has(const std::string& key) {
    known_.push_back(key);
    return options_.is_object() && options_.contains(key);
  }

  // An integer given as a number or as a string of digits (the seed's arg_dict).
  int64_t integer(const std::string& key, int64_t fallback, int64_t minimum) {
    if (!has(key)) return fallback;
    const nlohmann::json& value = options_[key];
    int64_t result = 0;
    bool ok = false;
    if (value.is_number_integer()) {
      result = value.get<int64_t>();
      ok = true;
    } else if (value.is_number_float()) {
      const double d = value.get<double>();
      result = static_cast<int64_t>(d);
      ok = static_cast<double>(result) == d;
    } else if (value.is_string()) {
      const std::string text = value.get<std::string>();
      size_t used = 0;
      try {
        result = std::stoll(text, &used);
        ok = used == text.size() && !text.empty();
      } catch (const std::exception&) {
        ok = false;
      }
    }
    EMBER_CHECK(ok, algorithm_, ": option ", key, " must be an integer, got ", value.dump());
    EMBER_CHECK(result >= minimum, algorithm_, ": option ", key, " must be at least ", minimum,
                ", got ", result);
    return result;
  }

  std::string text(const std::string& key, const std::string& fallback) {
    if (!has(key)) return fallback;
    const nlohmann::json& value = options_[key];
    EMBER_CHECK(value.is_string(), algorithm_, ": option ", key, " must be a string, got ",
                value.dump());
    return value.get<std::string>();
  }

  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const nlohmann::json& value = options_[key];
    if (value.is_boolean()) return value.get<bool>();
    if (value.is_number_integer() && (value == 0 || value == 1)) return value == 1;
    if (value.is_string()) {
      std::string t = value.get<std::string>();
      std::transform(t.begin(), t.end(), t.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (t == "true" || t == "1") return true;
      if (t == "false" || t == "0") return false;
    }
    throw Error(
        str_cat(algorithm_, ": option ", key, " must be true or false, got ", value.dump()));
  }

  const nlohmann::json& raw(const std::string& key) { return options_[key]; }

  // Every key given must have been asked for.
  void finish() const {
    if (!options_.is_object()) return;
    for (const auto& [key, value] : options_.items())
      EMBER_CHECK(std::find(known_.begin(), known_.end(), key) != known_.end(), algorithm_,
                  ": unknown option '", key, "'; the options are ", join(known_));
  }

 private:
  std::string algorithm_;
  const nlohmann::json& options_;
  std::vector<std::string> known_;
};

// The communicator of the ranks in `group`; `communicator` itself when the group is everyone.
std::shared_ptr<Communicator> group_communicator(const std::shared_ptr<Communicator>& communicator,
                                                 const std::vector<int>& group) {
  EMBER_CHECK(communicator != nullptr, "get_distributed_optimizer: the communicator is null");
  const int size = communicator->size();
  if (group.empty()) return communicator;
  std::vector<int> sorted = group;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    EMBER_CHECK(sorted[i] >= 0 && sorted[i] < size, "get_distributed_optimizer: group: rank ",
                sorted[i], " is outside the communicator's ranks 0..", size - 1);
    EMBER_CHECK(i == 0 || sorted[i] != sorted[i - 1], "get_distributed_optimizer: group: rank ",
                sorted[i], " is listed twice");
  }
  bool everyone = static_cast<int>(group.size()) == size;
  for (size_t i = 0; everyone && i < group.size(); ++i) everyone = group[i] == static_cast<int>(i);
  if (everyone) return communicator;
  return communicator->new_group(group);  // null on a rank outside the group
}

void check_algorithm(const std::string& given, const std::string& expected) {
  EMBER_CHECK(given == expected, "get_distributed_optimizer: the options given are those of ",
              expected, ", but the algorithm is '", given, "'; the algorithms are ",
              join(distributed_algorithms()));
}

void attach(OptimizerWrapper& optimizer, nn::Module* model,
            std::shared_ptr<DataParallel> data_parallel) {
  if (model) optimizer.attach_model(*model);
  if (data_parallel) optimizer.attach_data_parallel(std::move(data_parallel));
}

std::mutex default_mutex;
std::shared_ptr<Communicator> default_comm;

}  // namespace

std::vector<std::string> distributed_algorithms() {
  return {"sync", "local_sgd", "hierarchical_local_sgd"};
}

LocalSGDOptions local_sgd_options(const nlohmann::json& options) {
  OptionReader read("local_sgd", options);
  LocalSGDOptions o;
  o.local_steps = read.integer("local_steps", o.local_steps, 1);
  o.initial_steps = read.integer("initial_steps", o.initial_steps, 0);
  // Two spellings of one option (the seed's docstring and its code disagree); both may be given
  // only if they agree.
  std::string method = initial_step_method_name(o.initial_step_method);
  const bool full = read.has("initial_step_method");
  if (full) method = read.text("initial_step_method", method);
  if (read.has("init_step_method")) {
    const std::string alias = read.text("init_step_method", method);
    EMBER_CHECK(!full || alias == method, "local_sgd: initial_step_method '", method,
                "' and init_step_method '", alias,
                "' disagree (they are two spellings of one option)");
    method = alias;
  }
  o.initial_step_method = parse_initial_step_method(method, "local_sgd: initial_step_method");
  o.buffers =
      parse_buffer_sync(read.text("buffers", buffer_sync_name(o.buffers)), "local_sgd: buffers");
  o.broadcast_initial_parameters =
      read.boolean("broadcast_initial_parameters", o.broadcast_initial_parameters);
  read.finish();
  return o;
}

HierarchicalLocalSGDOptions hierarchical_local_sgd_options(const nlohmann::json& options) {
  OptionReader read("hierarchical_local_sgd", options);
  HierarchicalLocalSGDOptions o;
  o.local_sync_freq = read.integer("local_sync_freq", o.local_sync_freq, 1);
  o.global_sync_freq = read.integer("global_sync_freq", o.global_sync_freq, 1);
  o.group_size = static_cast<int>(read.integer("group_size", 0, 1));
  if (read.has("groups")) {
    const nlohmann::json& groups = read.raw("groups");
    const bool ok = groups.is_array() && std::all_of(groups.begin(), groups.end(), [](auto& g) {
                      return g.is_array() && std::all_of(g.begin(), g.end(), [](auto& r) {
                               return r.is_number_integer();
                             });
                    });
    EMBER_CHECK(ok, "hierarchical_local_sgd: option groups must be a list of lists of ranks, got ",
                groups.dump());
    o.groups = groups.get<std::vector<std::vector<int>>>();
  }
  o.buffers = parse_buffer_sync(read.text("buffers", buffer_sync_name(o.buffers)),
                                "hierarchical_local_sgd: buffers");
  o.broadcast_initial_parameters =
      read.boolean("broadcast_initial_parameters", o.broadcast_initial_parameters);
  read.finish();
  return o;
}

std::shared_ptr<OptimizerWrapper> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const nlohmann::json& options, nn::Module* model, std::shared_ptr<DataParallel> data_parallel) {
  if (algorithm == "sync") {
    OptionReader("sync", options).finish();
    return get_distributed_optimizer(algorithm, std::move(local_optimizer), std::move(communicator),
                                     std::move(group), SyncOptions{}, model,
                                     std::move(data_parallel));
  }
  if (algorithm == "local_sgd")
    return get_distributed_optimizer(algorithm, std::move(local_optimizer), std::move(communicator),
                                     std::move(group), local_sgd_options(options));
  if (algorithm == "hierarchical_local_sgd")
    return get_distributed_optimizer(algorithm, std::move(local_optimizer), std::move(communicator),
                                     std::move(group), hierarchical_local_sgd_options(options));
  throw Error(str_cat("get_distributed_optimizer: unknown algorithm '", algorithm,
                      "'; the algorithms are ", join(distributed_algorithms())));
}

std::shared_ptr<LocalSGDOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const LocalSGDOptions& options, nn::Module* model,
    std::shared_ptr<DataParallel> data_parallel) {
  check_algorithm(algorithm, "local_sgd");
  auto optimizer = std::make_shared<LocalSGDOptimizer>(
      std::move(local_optimizer), group_communicator(communicator, group), options);
  attach(*optimizer, model, std::move(data_parallel));
  return optimizer;
}

std::shared_ptr<HierarchicalLocalSGDOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const HierarchicalLocalSGDOptions& options, nn::Module* model,
    std::shared_ptr<DataParallel> data_parallel) {
  check_algorithm(algorithm, "hierarchical_local_sgd");
  auto optimizer = std::make_shared<HierarchicalLocalSGDOptimizer>(
      std::move(local_optimizer), group_communicator(communicator, group), options);
  attach(*optimizer, model, std::move(data_parallel));
  return optimizer;
}

std::shared_ptr<GradientAllReduceOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group, const SyncOptions&,
    nn::Module* model, std::shared_ptr<DataParallel> data_parallel) {
  check_algorithm(algorithm, "sync");
  auto optimizer = std::make_shared<GradientAllReduceOptimizer>(
      std::move(local_optimizer), group_communicator(communicator, group),
      std::move(data_parallel));
  if (model) optimizer->attach_model(*model);
  return optimizer;
}

std::shared_ptr<OptimizerWrapper> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer, int rank,
    int world_size, std::vector<int> group, const std::map<std::string, std::string>& arg_dict) {
  std::shared_ptr<Communicator> comm = default_communicator();
  EMBER_CHECK(comm != nullptr,
              "get_distributed_optimizer(algorithm, optimizer, rank, world_size, group, args): "
              "no default communicator; call dist::set_default_communicator(comm) first, or "
              "pass the communicator (the primary form)");
  EMBER_CHECK(rank == comm->rank() && world_size == comm->size(),
              "get_distributed_optimizer: rank ", rank, " of world_size ", world_size,
              " does not match the default communicator (rank ", comm->rank(), " of ", comm->size(),
              ")");
  nlohmann::json options = nlohmann::json::object();
  for (const auto& [key, value] : arg_dict) options[key] = value;
  return get_distributed_optimizer(algorithm, std::move(local_optimizer), std::move(comm),
                                   std::move(group), options);
}

void set_default_communicator(std::shared_ptr<Communicator> communicator) {
  std::lock_guard<std::mutex> lock(default_mutex);
  default_comm = std::move(communicator);
}

std::shared_ptr<Communicator> default_communicator() {
  std::lock_guard<std::mutex> lock(default_mutex);
  return default_comm;
}

}  // namespace ember::dist

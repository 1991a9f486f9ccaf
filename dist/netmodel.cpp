// The alpha-beta model of collectives and bin/ember_netmodel's projection (see netmodel.h).
#include "dist/netmodel.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace ember::dist {

namespace {

// ceil(log2 p): the number of rounds of a binomial tree over p nodes (0 for one node).
int tree_rounds(int nodes) {
  int rounds = 0;
  for (int reached = 1; reached < nodes; reached *= 2) ++rounds;
  return rounds;
}

void check_nodes(int nodes) {
  EMBER_CHECK(nodes >= 1, "netmodel: ", nodes, " nodes");
}

// Finite and at least `minimum` (or above it, when `strictly`), else an error naming the flag.
double checked(double value, double minimum, bool strictly, const std::string& flag,
               const std::string& field) {
  const bool ok = std::isfinite(value) && (strictly ? value > minimum : value >= minimum);
  EMBER_CHECK(ok, flag, field.empty() ? "" : str_cat(" (summary field ", field, ")"), " is ", value,
              ", expected a number ", strictly ? "above " : "of at least ", minimum);
  return value;
}

std::string summary_path(const std::string& run) {
  const std::filesystem::path path(run);
  if (std::filesystem::is_directory(path)) return (path / "summary.json").string();
  return run;
}

// A byte count with a unit a reader takes in at a glance: "11.20 MB".
std::string bytes_text(double bytes) {
  char text[32];
  if (bytes >= 1e9)
    std::snprintf(text, sizeof(text), "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6)
    std::snprintf(text, sizeof(text), "%.2f MB", bytes / 1e6);
  else if (bytes >= 1e3)
    std::snprintf(text, sizeof(text), "%.2f kB", bytes / 1e3);
  else
    std::snprintf(text, sizeof(text), "%.0f B", bytes);
  return text;
}

}  // namespace

std::string collective_algorithm_name(CollectiveAlgorithm algorithm) {
  return algorithm == CollectiveAlgorithm::Ring ? "ring" : "tree";
}

CollectiveAlgorithm parse_collective_algorithm(const std::string& text, const std::string& flag) {
  if (text == "ring") return CollectiveAlgorithm::Ring;
  if (text == "tree") return CollectiveAlgorithm::Tree;
  throw Error(str_cat(flag, " ", text, ": unknown algorithm; the choices are ring and tree"));
}

double all_reduce_seconds(CollectiveAlgorithm algorithm, double bytes, int nodes,
                          const NetworkLink& link) {
  check_nodes(nodes);
  const double p = nodes, alpha = link.latency_seconds, bw = link.bandwidth_bytes_per_second;
  if (algorithm == CollectiveAlgorithm::Ring)
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * bytes / bw;
  return 2 * tree_rounds(nodes) * (alpha + bytes / bw);
}

double broadcast_seconds(CollectiveAlgorithm algorithm, double bytes, int nodes,
                         const NetworkLink& link) {
  check_nodes(nodes);
  const double p = nodes, alpha = link.latency_seconds, bw = link.bandwidth_bytes_per_second;
  if (nodes == 1) return 0;
  if (algorithm == CollectiveAlgorithm::Ring)
    return (tree_rounds(nodes) + p - 1) * alpha + 2 * (p - 1) / p * bytes / bw;
  return tree_rounds(nodes) * (alpha + bytes / bw);
}

ScalingRow project_step(const StepProfile& profile, const NetworkLink& link, int nodes) {
  ScalingRow row;
  row.nodes = nodes;
  row.compute_ms = profile.compute_ms;
  row.communication_ms =
      profile.collectives_per_step *
      all_reduce_seconds(profile.algorithm, profile.bytes_per_collective, nodes, link) * 1e3;
  row.step_ms = row.compute_ms + row.communication_ms;
  row.overlapped_step_ms = std::max(row.compute_ms, row.communication_ms);
  row.efficiency = row.step_ms > 0 ? row.compute_ms / row.step_ms : 1;
  row.overlapped_efficiency =
      row.overlapped_step_ms > 0 ? row.compute_ms / row.overlapped_step_ms : 1;
  row.speedup = nodes * row.efficiency;
  row.overlapped_speedup = nodes * row.overlapped_efficiency;
  return row;
}

RunCommunication read_run_communication(const std::string& run) {
  const std::string path = summary_path(run);
  std::ifstream in(path);
  EMBER_CHECK(in, path, ": cannot be read (a run folder holding summary.json, or the file)");
  nlohmann::json summary;
  try {
    summary = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(path, ": not valid JSON (", e.what(), ")"));
  }
  EMBER_CHECK(summary.is_object() && summary.contains("communication") &&
                  summary["communication"].is_object(),
              path,
              ": no \"communication\" object (training programs write it for "
              "distributed runs); give the figures as flags instead");
  const nlohmann::json& c = summary["communication"];
  RunCommunication result;
  auto number = [&](const char* field) -> std::optional<double> {
    if (!c.contains(field) || c[field].is_null()) return std::nullopt;
    EMBER_CHECK(c[field].is_number(), path, ": communication.", field, " is ", c[field].dump(),
                ", expected a number");
    return c[field].get<double>();
  };
  result.payload_bytes_per_step = number("payload_bytes_per_step");
  result.collectives_per_step = number("collectives_per_step");
  result.compute_ms_per_step = number("compute_ms_per_step");
  if (const auto world = number("world_size")) {
    EMBER_CHECK(*world >= 1 && *world == std::floor(*world), path, ": communication.world_size is ",
                *world, ", expected a positive integer");
    result.world_size = static_cast<int>(*world);
  }
  if (c.contains("algorithm") && !c["algorithm"].is_null()) {
    EMBER_CHECK(c["algorithm"].is_string(), path, ": communication.algorithm is ",
                c["algorithm"].dump(), ", expected \"ring\" or \"tree\"");
    result.algorithm = c["algorithm"].get<std::string>();
  }
  return result;
}

std::vector<int> parse_node_counts(const std::string& text, const std::string& flag) {
  std::vector<int> nodes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long value = 0;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EMBER_CHECK(used == item.size() && !item.empty() && value >= 1 && value <= 1000000, flag, " ",
                text, ": \"", item, "\" is not a positive number of nodes");
    nodes.push_back(static_cast<int>(value));
  }
  EMBER_CHECK(!nodes.empty(), flag, ": no node counts given (e.g. 2,4,8,16)");
  return nodes;
}

NetModelReport build_netmodel_report(const NetModelFlags& flags) {
  NetModelReport report;
  RunCommunication run;
  if (!flags.run.empty()) {
    run = read_run_communication(flags.run);
    report.source = summary_path(flags.run);
    report.world_size = run.world_size;
  }
  const std::string from = report.source.empty() ? "" : str_cat(" (", report.source, ")");

  // Collectives first: the bytes per collective of a summary are its bytes per step shared out.
  std::optional<double> collectives = flags.collectives_per_step;
  if (!collectives) collectives = run.collectives_per_step;
  EMBER_CHECK(collectives.has_value(),
              "--collectives-per-step is missing: give it, or a run folder whose summary.json "
              "has communication.collectives_per_step");
  report.profile.collectives_per_step =
      checked(*collectives, 0, false, "--collectives-per-step",
              flags.collectives_per_step ? "" : "communication.collectives_per_step");

  if (flags.bytes_per_collective) {
    report.profile.bytes_per_collective =
        checked(*flags.bytes_per_collective, 0, false, "--bytes-per-collective", "");
  } else if (run.payload_bytes_per_step) {
    const double per_step = checked(*run.payload_bytes_per_step, 0, false, "--bytes-per-collective",
                                    "communication.payload_bytes_per_step");
    report.profile.bytes_per_collective = report.profile.collectives_per_step > 0
                                              ? per_step / report.profile.collectives_per_step
                                              : 0;
  } else {
    throw Error(
        "--bytes-per-collective is missing: give it, or a run folder whose summary.json has "
        "communication.payload_bytes_per_step");
  }

  std::optional<double> compute = flags.compute_ms;
  if (!compute) compute = run.compute_ms_per_step;
  EMBER_CHECK(compute.has_value(),
              "--compute-ms is missing: give it, or a run folder whose summary.json has "
              "communication.compute_ms_per_step");
  report.profile.compute_ms = checked(*compute, 0, true, "--compute-ms",
                                      flags.compute_ms ? "" : "communication.compute_ms_per_step");

  if (flags.algorithm)
    report.profile.algorithm = parse_collective_algorithm(*flags.algorithm, "--algorithm");
  else if (run.algorithm)
    report.profile.algorithm =
        parse_collective_algorithm(*run.algorithm, str_cat("communication.algorithm", from));

  report.link.latency_seconds = checked(flags.latency_us, 0, false, "--latency-us", "") * 1e-6;
  report.link.bandwidth_bytes_per_second =
      checked(flags.bandwidth_gbps, 0, true, "--bandwidth-gbps", "") * 1e9 / 8;

  for (int nodes : parse_node_counts(flags.nodes, "--nodes"))
    report.rows.push_back(project_step(report.profile, report.link, nodes));
  return report;
}

std::string format_netmodel_table(const NetModelReport& report) {
  const StepProfile& p = report.profile;
  std::string text;
  char line[256];
  std::snprintf(line, sizeof(line),
                "all-reduce (%s): %g per step of %s each, compute %.3f ms per step\n",
                collective_algorithm_name(p.algorithm).c_str(), p.collectives_per_step,
                bytes_text(p.bytes_per_collective).c_str(), p.compute_ms);
  text += line;
  std::snprintf(line, sizeof(line), "network: latency %g us, bandwidth %g Gbit/s (%s/s)\n",
                report.link.latency_seconds * 1e6, report.link.bandwidth_bytes_per_second * 8 / 1e9,
                bytes_text(report.link.bandwidth_bytes_per_second).c_str());
  text += line;
  if (!report.source.empty()) {
    text += "measured: " + report.source;
    if (report.world_size) text += str_cat(" (world size ", *report.world_size, ")");
    text += "\n";
  }
  text +=
      "\n                     no overlap                  |  perfect overlap\n"
      "nodes    comm ms    step ms  efficiency  speedup  |    step ms  efficiency  speedup\n";
  for (const ScalingRow& row : report.rows) {
    std::snprintf(line, sizeof(line), "%5d %10.3f %10.3f %10.1f%% %8.2f  | %10.3f %10.1f%% %8.2f\n",
                  row.nodes, row.communication_ms, row.step_ms, 100 * row.efficiency, row.speedup,
                  row.overlapped_step_ms, 100 * row.overlapped_efficiency, row.overlapped_speedup);
    text += line;
  }
  text +=
      "\nstep = compute + communication (no overlap) or max(compute, communication) (perfect "
      "overlap);\nefficiency = compute / step; speedup = nodes x compute / step, over one node. "
      "Alpha-beta model\n(Thakur, Rabenseifner, Gropp 2005): a projection, not a measurement.\n";
  return text;
}

nlohmann::json netmodel_json(const NetModelReport& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const ScalingRow& row : report.rows)
    rows.push_back({{"nodes", row.nodes},
                    {"compute_ms", row.compute_ms},
                    {"communication_ms", row.communication_ms},
                    {"step_ms", row.step_ms},
                    {"efficiency", row.efficiency},
                    {"speedup", row.speedup},
                    {"overlapped_step_ms", row.overlapped_step_ms},
                    {"overlapped_efficiency", row.overlapped_efficiency},
                    {"overlapped_speedup", row.overlapped_speedup}});
  nlohmann::json out = {{"model", "alpha-beta (Thakur, Rabenseifner, Gropp 2005)"},
                        {"algorithm", collective_algorithm_name(report.profile.algorithm)},
                        {"bytes_per_collective", report.profile.bytes_per_collective},
                        {"collectives_per_step", report.profile.collectives_per_step},
                        {"compute_ms_per_step", report.profile.compute_ms},
                        {"latency_us", report.link.latency_seconds * 1e6},
                        {"bandwidth_gbps", report.link.bandwidth_bytes_per_second * 8 / 1e9},
                        {"rows", rows}};
  if (!report.source.empty()) out["source"] = report.source;
  if (report.world_size) out["measured_world_size"] = *report.world_size;
  return out;
}

}  // namespace ember::dist

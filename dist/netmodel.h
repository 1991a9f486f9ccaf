// Projecting multi-node step times from a single-machine run: the alpha-beta (latency-bandwidth)
// model of collective communication, and what bin/ember_netmodel prints.
//
// One machine cannot measure a cluster's network, but a run can count what it sends (the
// communicator's payload bytes and number of collectives per step) and measure its compute
// time per step. Sending a message of n bytes between two nodes is modelled as
//
//   T(n) = alpha + n / bandwidth          alpha: the per-message latency (s)
//
// and each collective algorithm is a known sequence of such messages (Thakur, Rabenseifner and
// Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 19(1), 2005),
// for p nodes and n bytes per node:
//
//   all-reduce, ring   2 (p-1) alpha + 2 (p-1)/p n / bandwidth
//       a reduce-scatter then an all-gather around a ring: 2 (p-1) steps of n/p bytes each
//   all-reduce, tree   2 ceil(log2 p) (alpha + n / bandwidth)
//       a binomial-tree reduce to the root then a binomial-tree broadcast back, whole messages
//       (no pipelining)
//   broadcast, tree    ceil(log2 p) (alpha + n / bandwidth)
//       the binomial tree: the number of nodes holding the data doubles every step
//   broadcast, ring    (ceil(log2 p) + p - 1) alpha + 2 (p-1)/p n / bandwidth
//       the paper's long-message broadcast: a binomial scatter of n/p pieces, then a ring
//       all-gather of them (van de Geijn's algorithm)
//
// A step is modelled as its compute followed by its communication (no overlap), which bounds
// the step time from above; max(compute, communication) is the bound with perfect overlap of
// the two (what bucketed gradient all-reduce aims at). Scaling efficiency is compute / step
// time, and the throughput speedup over one node is p * compute / step time (weak scaling: each
// node keeps its batch size, so compute per step does not change with p). Contention, topology
// (links inside a node are faster than between nodes) and the reduction's own arithmetic are
// left out: the figures are a projection, not a measurement.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::dist {

enum class CollectiveAlgorithm { Ring, Tree };
std::string collective_algorithm_name(CollectiveAlgorithm algorithm);  // "ring", "tree"
// "ring" or "tree"; anything else is an error naming `flag` and the choices.
CollectiveAlgorithm parse_collective_algorithm(const std::string& text,
                                               const std::string& flag = "--algorithm");

// The network between nodes.
struct NetworkLink {
  double latency_seconds = 10e-6;              // alpha, per message
  double bandwidth_bytes_per_second = 12.5e9;  // 100 Gbit/s
};

// The time of one collective of `bytes` bytes per node on `nodes` nodes (0 for one node).
double all_reduce_seconds(CollectiveAlgorithm algorithm, double bytes, int nodes,
                          const NetworkLink& link);
double broadcast_seconds(CollectiveAlgorithm algorithm, double bytes, int nodes,
                         const NetworkLink& link);

// What one rank of a run does per training step: `collectives_per_step` all-reduces of
// `bytes_per_collective` bytes each (on average), and `compute_ms` of everything else.
struct StepProfile {
  double bytes_per_collective = 0;
  double collectives_per_step = 0;
  double compute_ms = 0;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::Ring;
};

// One line of the projection, for `nodes` nodes.
struct ScalingRow {
  int nodes = 1;
  double compute_ms = 0;
  double communication_ms = 0;       // collectives_per_step x all_reduce_seconds
  double step_ms = 0;                // compute + communication (no overlap)
  double efficiency = 0;             // compute / step_ms
  double speedup = 0;                // nodes x compute / step_ms, over one node
  double overlapped_step_ms = 0;     // max(compute, communication): perfect overlap
  double overlapped_efficiency = 0;  // compute / overlapped_step_ms
  double overlapped_speedup = 0;     // nodes x compute / overlapped_step_ms
};

ScalingRow project_step(const StepProfile& profile, const NetworkLink& link, int nodes);

// The "communication" object a training run writes into its summary.json:
//   "communication": {"payload_bytes_per_step": 4.4e7, "collectives_per_step": 4,
//                     "compute_ms_per_step": 120.5, "world_size": 2, "algorithm": "ring"}
// Every field is optional here (flags may supply it); a field of the wrong type is an error
// naming the file and the field.
struct RunCommunication {
  std::optional<double> payload_bytes_per_step, collectives_per_step, compute_ms_per_step;
  std::optional<int> world_size;
  std::optional<std::string> algorithm;
};
// `run` is a run folder (holding summary.json) or a summary.json file.
RunCommunication read_run_communication(const std::string& run);

// bin/ember_netmodel's flags; an unset optional was not given (the run's summary supplies it).
struct NetModelFlags {
  std::string run;  // a run folder or summary.json; "" for none
  std::optional<double> bytes_per_collective, collectives_per_step, compute_ms;
  double latency_us = 10;
  double bandwidth_gbps = 100;  // gigabits per second: 100 = 12.5 GB/s
  std::optional<std::string> algorithm;
  std::string nodes = "1,2,4,8,16";
};

// "2,4,8" -> {2, 4, 8}; an error names `flag` when an entry is not a positive integer.
std::vector<int> parse_node_counts(const std::string& text, const std::string& flag = "--nodes");

struct NetModelReport {
  StepProfile profile;
  NetworkLink link;
  std::vector<ScalingRow> rows;   // one per node count, in the order given
  std::optional<int> world_size;  // of the measured run, when its summary says
  std::string source;             // the summary.json read, or "" when flags gave everything
};

// The projection for the flags (the run's summary first, flags overriding it). A value that is
// missing or out of range is an error naming the flag (and the summary field it could come from).
NetModelReport build_netmodel_report(const NetModelFlags& flags);

// The report as a text table (what bin/ember_netmodel prints) and as JSON (--json).
std::string format_netmodel_table(const NetModelReport& report);
nlohmann::json netmodel_json(const NetModelReport& report);

}  // namespace ember::dist

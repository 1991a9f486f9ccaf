// bin/ember_netmodel: the step time, scaling efficiency and speedup a training run would have
// on p nodes, projected with the alpha-beta model of collectives (dist/netmodel.h), since one
// machine cannot measure a cluster's network.
//
//   bin/ember_netmodel runs/cifar-dsgd-20240501-120000                 from the run's summary.json
//   bin/ember_netmodel runs/x --latency-us 2 --bandwidth-gbps 200 --algorithm tree
//   bin/ember_netmodel --bytes-per-collective 45e6 --collectives-per-step 1 --compute-ms 120
//
// The run folder's summary.json supplies its "communication" object (payload bytes,
// collectives and compute time per step); flags given override it.
#include <CLI/CLI.hpp>  // command-line flags

#include <cstdio>
#include <string>

#include "apps/common/run_log.h"  // write_json
#include "dist/netmodel.h"

int main(int argc, char** argv) {
  using namespace ember::dist;
  CLI::App app{
      "ember_netmodel: project a run's step time and scaling efficiency on p nodes with the "
      "alpha-beta model of all-reduce (ring or tree)"};
  NetModelFlags flags;
  double bytes = 0, collectives = 0, compute = 0;
  std::string algorithm, json_path;
  app.add_option("RUN", flags.run,
                 "a run folder (or its summary.json) whose \"communication\" object gives the "
                 "figures below");
  auto* bytes_flag = app.add_option("--bytes-per-collective", bytes,
                                    "bytes each node all-reduces per collective (default: the "
                                    "run's payload_bytes_per_step / collectives_per_step)");
  auto* collectives_flag = app.add_option("--collectives-per-step", collectives,
                                          "all-reduces per training step, on average");
  auto* compute_flag =
      app.add_option("--compute-ms", compute, "compute time per step without communication, ms");
  app.add_option("--latency-us", flags.latency_us, "per-message latency alpha, microseconds")
      ->capture_default_str();
  app.add_option("--bandwidth-gbps", flags.bandwidth_gbps,
                 "bandwidth between nodes in gigabits per second (100 = 12.5 GB/s)")
      ->capture_default_str();
  app.add_option("--nodes", flags.nodes, "node counts to project, comma-separated")
      ->capture_default_str();
  auto* algorithm_flag = app.add_option("--algorithm", algorithm,
                                        "all-reduce algorithm: ring or tree (default: "
                                        "the run's, else ring)");
  app.add_option("--json", json_path, "also write the table as JSON to this file");
  app.footer(
      "Examples:\n"
      "  bin/ember_netmodel runs/cifar-dsgd-20240501-120000\n"
      "  bin/ember_netmodel runs/x --latency-us 2 --bandwidth-gbps 200 --nodes 2,8,32,128\n"
      "  bin/ember_netmodel --bytes-per-collective 44.7e6 --collectives-per-step 1 "
      "--compute-ms 120 --json scaling.json\n"
      "Step time is compute + communication (no overlap) and max(compute, communication) "
      "(perfect overlap).");
  CLI11_PARSE(app, argc, argv);
  if (bytes_flag->count()) flags.bytes_per_collective = bytes;
  if (collectives_flag->count()) flags.collectives_per_step = collectives;
  if (compute_flag->count()) flags.compute_ms = compute;
  if (algorithm_flag->count()) flags.algorithm = algorithm;

  try {
    const NetModelReport report = build_netmodel_report(flags);
    std::fputs(format_netmodel_table(report).c_str(), stdout);
    if (!json_path.empty()) {
      ember::app::write_json(json_path, netmodel_json(report));
      std::printf("ember_netmodel: wrote %s\n", json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_netmodel: %s\n", e.what());
    return 1;
  }
  return 0;
}

// The alpha-beta projection behind bin/ember_netmodel (dist/netmodel.h): the formulas against
// values worked out by hand, the step-time projection, reading a run's summary.json, and errors
// that name the flag.
#include <doctest/doctest.h>

#include <fstream>

#include "dist/netmodel.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;

namespace {

// alpha = 10 us, 1 GB/s: a 100 MB message costs 0.1 s plus its latency.
const NetworkLink kLink{10e-6, 1e9};
constexpr double kBytes = 1e8;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

NetModelFlags flags_for(double bytes, double collectives, double compute_ms) {
  NetModelFlags flags;
  flags.bytes_per_collective = bytes;
  flags.collectives_per_step = collectives;
  flags.compute_ms = compute_ms;
  return flags;
}

}  // namespace

TEST_CASE("all-reduce times match the ring and tree formulas worked by hand") {
  // ring, p = 4: 2*3*10us + 2*(3/4)*0.1 s
  CHECK(all_reduce_seconds(CollectiveAlgorithm::Ring, kBytes, 4, kLink) ==
        doctest::Approx(0.15006).epsilon(1e-12));
  // tree, p = 4: 2*ceil(log2 4)*(10us + 0.1 s); p = 5 needs 3 rounds
  CHECK(all_reduce_seconds(CollectiveAlgorithm::Tree, kBytes, 4, kLink) ==
        doctest::Approx(0.40004).epsilon(1e-12));
  CHECK(all_reduce_seconds(CollectiveAlgorithm::Tree, kBytes, 5, kLink) ==
        doctest::Approx(0.60006).epsilon(1e-12));
  // ring, p = 2: 2*10us + 0.1 s (each node sends half, twice)
  CHECK(all_reduce_seconds(CollectiveAlgorithm::Ring, kBytes, 2, kLink) ==
        doctest::Approx(0.10002).epsilon(1e-12));
}

TEST_CASE("broadcast times match the binomial tree and scatter plus ring formulas") {
  // tree, p = 8: 3*(10us + 0.1 s)
  CHECK(broadcast_seconds(CollectiveAlgorithm::Tree, kBytes, 8, kLink) ==
        doctest::Approx(0.30003).epsilon(1e-12));
  // ring (scatter + all-gather), p = 8: (3 + 7)*10us + 2*(7/8)*0.1 s
  CHECK(broadcast_seconds(CollectiveAlgorithm::Ring, kBytes, 8, kLink) ==
        doctest::Approx(0.1751).epsilon(1e-12));
}

TEST_CASE("one node communicates nothing") {
  for (CollectiveAlgorithm algorithm : {CollectiveAlgorithm::Ring, CollectiveAlgorithm::Tree}) {
    CHECK(all_reduce_seconds(algorithm, kBytes, 1, kLink) == 0);
    CHECK(broadcast_seconds(algorithm, kBytes, 1, kLink) == 0);
  }
  const ScalingRow row = project_step({kBytes, 3, 80, CollectiveAlgorithm::Ring}, kLink, 1);
  CHECK(row.communication_ms == 0);
  CHECK(row.step_ms == 80);
  CHECK(row.efficiency == 1);
  CHECK(row.speedup == 1);
  CHECK(contains(error_of([] { all_reduce_seconds(CollectiveAlgorithm::Ring, 1, 0, kLink); }),
                 "0 nodes"));
}

TEST_CASE("a step projects to compute plus communication and the overlap bound") {
  // 2 ring all-reduces of 100 MB on 4 nodes: 2*150.06 ms of communication, 100 ms of compute
  const ScalingRow row = project_step({kBytes, 2, 100, CollectiveAlgorithm::Ring}, kLink, 4);
  CHECK(row.communication_ms == doctest::Approx(300.12));
  CHECK(row.step_ms == doctest::Approx(400.12));
  CHECK(row.efficiency == doctest::Approx(100 / 400.12));
  CHECK(row.speedup == doctest::Approx(400 / 400.12));
  CHECK(row.overlapped_step_ms == doctest::Approx(300.12));
  CHECK(row.overlapped_efficiency == doctest::Approx(100 / 300.12));
  CHECK(row.overlapped_speedup == doctest::Approx(400 / 300.12));
  // compute longer than communication: perfect overlap hides it all
  const ScalingRow hidden = project_step({1e6, 1, 100, CollectiveAlgorithm::Ring}, kLink, 4);
  CHECK(hidden.overlapped_step_ms == 100);
  CHECK(hidden.overlapped_speedup == doctest::Approx(4));
}

TEST_CASE("ring efficiency falls as nodes are added") {
  // Compute dominates here (about 10 ms of communication for 60 ms of compute at 2 nodes), so
  // the speedup still grows; with communication dominating it need not.
  const StepProfile profile{2.5e6, 4, 60, CollectiveAlgorithm::Ring};
  double last_efficiency = 2, last_speedup = 0;
  for (int nodes : {1, 2, 3, 4, 8, 16, 64, 256}) {
    INFO("nodes " << nodes);
    const ScalingRow row = project_step(profile, kLink, nodes);
    CHECK(row.efficiency < last_efficiency);
    CHECK(row.speedup > last_speedup);
    last_efficiency = row.efficiency;
    last_speedup = row.speedup;
  }
}

TEST_CASE("flags give the report and the table and json carry every row") {
  NetModelFlags flags = flags_for(kBytes, 2, 100);
  flags.latency_us = 10;
  flags.bandwidth_gbps = 8;  // 1 GB/s
  flags.nodes = "1,4";
  const NetModelReport report = build_netmodel_report(flags);
  REQUIRE(report.rows.size() == 2);
  CHECK(report.link.bandwidth_bytes_per_second == doctest::Approx(1e9));
  CHECK(report.rows[1].communication_ms == doctest::Approx(300.12));
  CHECK(report.source == "");
  const std::string table = format_netmodel_table(report);
  INFO(table);
  CHECK(contains(table, "ring"));
  CHECK(contains(table, "300.120"));
  CHECK(contains(table, "efficiency"));
  const nlohmann::json json = netmodel_json(report);
  CHECK(json["rows"].size() == 2);
  CHECK(json["rows"][1]["nodes"] == 4);
  CHECK(json["algorithm"] == "ring");
  CHECK(json["rows"][1]["step_ms"].get<double>() == doctest::Approx(400.12));
}

TEST_CASE("a run folder's summary json supplies the figures and flags override them") {
  TemporaryDirectory dir;
  write_text(dir.file("summary.json"), R"({"name": "x", "communication": {
      "payload_bytes_per_step": 2e8, "collectives_per_step": 2, "compute_ms_per_step": 100,
      "world_size": 2, "algorithm": "tree"}})");
  NetModelFlags flags;
  flags.run = dir.path.string();
  flags.bandwidth_gbps = 8;
  flags.nodes = "4";
  const NetModelReport report = build_netmodel_report(flags);
  CHECK(report.profile.bytes_per_collective == 1e8);
  CHECK(report.profile.collectives_per_step == 2);
  CHECK(report.profile.compute_ms == 100);
  CHECK(report.profile.algorithm == CollectiveAlgorithm::Tree);
  REQUIRE(report.world_size.has_value());
  CHECK(*report.world_size == 2);
  CHECK(report.source == dir.file("summary.json"));
  CHECK(report.rows[0].communication_ms == doctest::Approx(2 * 400.04));

  flags.algorithm = "ring";
  flags.compute_ms = 50;
  flags.run = dir.file("summary.json");  // the file itself works too
  const NetModelReport overridden = build_netmodel_report(flags);
  CHECK(overridden.profile.algorithm == CollectiveAlgorithm::Ring);
  CHECK(overridden.profile.compute_ms == 50);
  CHECK(overridden.rows[0].communication_ms == doctest::Approx(300.12));
}

TEST_CASE("bad netmodel input is an error naming the flag or field") {
  auto error_for = [](NetModelFlags flags) {
    return error_of([&] { build_netmodel_report(flags); });
  };
  NetModelFlags flags = flags_for(kBytes, 1, 10);
  flags.nodes = "2,x";
  CHECK(contains(error_for(flags), "--nodes"));
  flags.nodes = "0";
  CHECK(contains(error_for(flags), "--nodes"));
  flags.nodes = "";
  CHECK(contains(error_for(flags), "--nodes"));
  flags = flags_for(kBytes, 1, 10);
  flags.bandwidth_gbps = 0;
  CHECK(contains(error_for(flags), "--bandwidth-gbps"));
  flags = flags_for(kBytes, 1, 10);
  flags.latency_us = -1;
  CHECK(contains(error_for(flags), "--latency-us"));
  flags = flags_for(kBytes, 1, 10);
  flags.algorithm = "star";
  CHECK(contains(error_for(flags), "--algorithm star"));
  CHECK(contains(error_for(flags_for(-5, 1, 10)), "--bytes-per-collective"));
  CHECK(contains(error_for(flags_for(kBytes, 1, 0)), "--compute-ms"));
  NetModelFlags missing;
  missing.collectives_per_step = 1;
  missing.bytes_per_collective = 1;
  CHECK(contains(error_for(missing), "--compute-ms is missing"));

  TemporaryDirectory dir;
  NetModelFlags from_run;
  from_run.run = dir.path.string();
  CHECK(contains(error_for(from_run), "summary.json: cannot be read"));
  write_text(dir.file("summary.json"), R"({"name": "x"})");
  CHECK(contains(error_for(from_run), "no \"communication\" object"));
  write_text(dir.file("summary.json"), R"({"communication": {"collectives_per_step": "four"}})");
  CHECK(contains(error_for(from_run), "communication.collectives_per_step"));
  write_text(dir.file("summary.json"),
             R"({"communication": {"payload_bytes_per_step": 1, "collectives_per_step": 1,
                 "compute_ms_per_step": 1, "algorithm": "star"}})");
  CHECK(contains(error_for(from_run), "communication.algorithm"));
  write_text(dir.file("summary.json"), R"({"communication": {"collectives_per_step": 1}})");
  CHECK(contains(error_for(from_run), "--bytes-per-collective is missing"));
  write_text(dir.file("summary.json"), "{not json");
  CHECK(contains(error_for(from_run), "not valid JSON"));
}

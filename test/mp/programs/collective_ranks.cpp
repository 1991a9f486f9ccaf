// One rank of test/mp/test_collectives_processes.cpp, started by bin/launch: joins through the
// rendezvous (env://), makes a Gloo communicator and checks every collective against results it
// computes itself from what each rank contributes (rank r's values are a formula of r, so every
// process knows every other's without asking). One line per passed check:
//
//   all_reduce ok
//
// Exits 0 when every check passed; otherwise 1, with "collective_ranks: rank R: CHECK: what
// differed" on stderr.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "dist/collective_values.h"  // rank_values, expect_values
#include "dist/gloo_communicator.h"
#include "dist/rendezvous.h"
#include "engine/ember.h"

using namespace ember;
using namespace ember::dist;
using ember::test::expect_values;
using ember::test::rank_values;

namespace {

const DType kDTypes[] = {DType::F32, DType::F64, DType::I32, DType::I64};
const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max, ReduceOp::Min};

bool is_integer(DType dtype) {
  return dtype == DType::I32 || dtype == DType::I64;
}

// The reduction over `ranks` of element i of rank_values(r, count).
double reduced(const std::vector<int>& ranks, int count, int i, ReduceOp op, DType dtype) {
  double sum = 0, high = -1e300, low = 1e300;
  for (int r : ranks) {
    const double v = rank_values(r, count)[i];
    sum += v;
    high = std::max(high, v);
    low = std::min(low, v);
  }
  const int n = static_cast<int>(ranks.size());
  // Integers divide as C++ does: toward zero.
  const double average =
      is_integer(dtype) ? static_cast<double>(static_cast<int64_t>(sum) / n) : sum / n;
  return op == ReduceOp::Sum       ? sum
         : op == ReduceOp::Average ? average
         : op == ReduceOp::Max     ? high
                                   : low;
}

std::vector<int> first_ranks(int n) {
  std::vector<int> ranks(n);
  for (int r = 0; r < n; ++r) ranks[r] = r;
  return ranks;
}

void check_all_reduce(Communicator& comm) {
  const int count = 5;
  for (DType dtype : kDTypes)
    for (ReduceOp op : kOps) {
      Tensor t = tensor(rank_values(comm.rank(), count)).to(dtype);
      comm.all_reduce(t, op)->wait();
      std::vector<double> expected;
      for (int i = 0; i < count; ++i)
        expected.push_back(reduced(first_ranks(comm.size()), count, i, op, dtype));
      expect_values(t, expected, str_cat(reduce_op_name(op), " ", dtype_name(dtype)));
    }
}

void check_broadcast(Communicator& comm) {
  for (int root = 0; root < comm.size(); ++root)
    for (DType dtype : kDTypes) {
      Tensor t = tensor(rank_values(comm.rank(), 7)).to(dtype);
      comm.broadcast(t, root)->wait();
      expect_values(t, rank_values(root, 7), str_cat("from root ", root, " ", dtype_name(dtype)));
    }
}

void check_all_gather(Communicator& comm) {
  for (DType dtype : kDTypes) {
    Tensor input = tensor(rank_values(comm.rank(), 3)).to(dtype);
    Tensor output = zeros({comm.size() * 3}, dtype);
    comm.all_gather(input, output)->wait();
    std::vector<double> expected;
    for (int r = 0; r < comm.size(); ++r)
      for (double v : rank_values(r, 3)) expected.push_back(v);
    expect_values(output, expected, dtype_name(dtype));
  }
}

// Rank r contributes r + 2 elements, except rank 1, which contributes none.
void check_all_gather_v(Communicator& comm) {
  std::vector<int64_t> counts;
  for (int r = 0; r < comm.size(); ++r) counts.push_back(r == 1 ? 0 : r + 2);
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  for (DType dtype : {DType::F32, DType::I64}) {
    Tensor input =
        tensor(rank_values(comm.rank(), static_cast<int>(counts[comm.rank()]))).to(dtype);
    Tensor output = zeros({total}, dtype);
    comm.all_gather_v(input, output, counts)->wait();
    std::vector<double> expected;
    for (int r = 0; r < comm.size(); ++r)
      for (double v : rank_values(r, static_cast<int>(counts[r]))) expected.push_back(v);
    expect_values(output, expected, dtype_name(dtype));
  }
}

void check_reduce_scatter(Communicator& comm) {
  const int block = 3, count = comm.size() * block;
  for (ReduceOp op : kOps) {
    Tensor input = tensor(rank_values(comm.rank(), count));
    Tensor output = zeros({block}, DType::F64);
    comm.reduce_scatter(input, output, op)->wait();
    std::vector<double> expected;
    for (int i = comm.rank() * block; i < (comm.rank() + 1) * block; ++i)
      expected.push_back(reduced(first_ranks(comm.size()), count, i, op, DType::F64));
    expect_values(output, expected, reduce_op_name(op));
  }
}

// Every rank sends to its right neighbour on two tags (tag 5 sent first, received last) and
// receives from its left one: a send must not hold up the receive after it, and a recv takes
// the message of its own tag.
void check_send_recv_ring(Communicator& comm) {
  const int size = comm.size();
  const int right = (comm.rank() + 1) % size, left = (comm.rank() + size - 1) % size;
  WorkHandle sent_5 = comm.send(tensor(rank_values(comm.rank(), 4)), right, 5);
  WorkHandle sent_9 = comm.send(full({2}, 100 + comm.rank(), DType::I64), right, 9);
  Tensor on_9 = zeros({2}, DType::I64), on_5 = zeros({4}, DType::F64);
  comm.recv(on_9, left, 9)->wait();
  comm.recv(on_5, left, 5)->wait();
  sent_5->wait();
  sent_9->wait();
  expect_values(on_9, std::vector<double>(2, 100 + left), "tag 9 from the left neighbour");
  expect_values(on_5, rank_values(left, 4), "tag 5 from the left neighbour");
}

// Every rank marks its arrival in the store before the barrier; after it, every mark is there.
void check_barrier(Communicator& comm, Store& store) {
  for (int round = 0; round < 3; ++round) {
    const std::string prefix = str_cat("barrier/", round, "/");
    store.set(prefix + std::to_string(comm.rank()), to_bytes("1"));
    comm.barrier()->wait();
    std::vector<std::string> keys;
    for (int r = 0; r < comm.size(); ++r) keys.push_back(prefix + std::to_string(r));
    if (!store.check(keys)) throw Error(str_cat("round ", round, ": left before every rank came"));
  }
}

// The even ranks and the odd ranks each all-reduce in a group of their own, at the same time.
void check_sub_groups(Communicator& comm) {
  std::vector<int> even, odd;
  for (int r = 0; r < comm.size(); ++r) (r % 2 == 0 ? even : odd).push_back(r);
  auto even_group = comm.new_group(even);
  auto odd_group = comm.new_group(odd);
  const bool is_even = comm.rank() % 2 == 0;
  if ((even_group != nullptr) != is_even || (odd_group != nullptr) == is_even)
    throw Error("membership of the even and odd groups is wrong");
  Communicator& group = is_even ? *even_group : *odd_group;
  const std::vector<int>& members = is_even ? even : odd;
  if (group.size() != static_cast<int>(members.size()) || group.world_ranks() != members ||
      group.rank() != comm.rank() / 2)
    throw Error("the group's size, rank or world ranks are wrong");
  const int count = 4;
  for (int round = 0; round < 3; ++round)
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      Tensor t = tensor(rank_values(comm.rank(), count)).to(DType::F32);
      group.all_reduce(t, op)->wait();
      std::vector<double> expected;
      for (int i = 0; i < count; ++i)
        expected.push_back(reduced(members, count, i, op, DType::F32));
      expect_values(t, expected, str_cat(is_even ? "even" : "odd", " group ", reduce_op_name(op)));
    }
  // The world still works after the groups.
  Tensor w = full({1}, 1, DType::I32);
  comm.all_reduce(w)->wait();
  expect_values(w, {static_cast<double>(comm.size())}, "world all_reduce after the groups");
}

// One all_reduce of 10 f32 values counts 40 payload bytes, whatever the ring moves.
void check_payload_bytes(Communicator& comm) {
  comm.reset_stats();
  comm.all_reduce(zeros({10}, DType::F32))->wait();
  const CommStats stats = comm.stats();
  if (stats.payload_bytes != 40 || stats.operations != 1 ||
      stats.payload_bytes_by_op.at("all_reduce") != 40)
    throw Error(str_cat("counted ", stats.payload_bytes, " bytes in ", stats.operations,
                        " operations, expected 40 in 1"));
}

}  // namespace

int main() {
  int rank = -1;
  std::string check = "rendezvous";
  try {
    Rendezvous r = rendezvous("env://", -1, -1, std::chrono::seconds(20));
    rank = r.rank;
    check = "gloo communicator";
    CommunicatorOptions options;
    options.timeout = std::chrono::seconds(20);
    auto comm = make_gloo_communicator(r.store, r.rank, r.world_size, options);
    const std::vector<std::pair<std::string, std::function<void()>>> checks = {
        {"all_reduce", [&] { check_all_reduce(*comm); }},
        {"broadcast", [&] { check_broadcast(*comm); }},
        {"all_gather", [&] { check_all_gather(*comm); }},
        {"all_gather_v", [&] { check_all_gather_v(*comm); }},
        {"reduce_scatter", [&] { check_reduce_scatter(*comm); }},
        {"send_recv_ring", [&] { check_send_recv_ring(*comm); }},
        {"barrier", [&] { check_barrier(*comm, *r.store); }},
        {"sub_groups", [&] { check_sub_groups(*comm); }},
        {"payload_bytes", [&] { check_payload_bytes(*comm); }},
    };
    for (const auto& [name, body] : checks) {
      check = name;
      body();
      std::printf("%s ok\n", name.c_str());
      std::fflush(stdout);
    }
    // Rank 0 hosts the store: nobody leaves before every rank is done with it.
    check = "final barrier";
    comm->barrier()->wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "collective_ranks: rank %d: %s: %s\n", rank, check.c_str(), e.what());
    return 1;
  }
  return 0;
}

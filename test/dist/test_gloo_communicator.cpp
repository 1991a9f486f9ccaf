// The Gloo communicator with its ranks as threads of this process, meeting through a
// MemoryStore: every collective against results computed here independently, the statistics,
// the errors promised for bad input, and failures (a rank that never joins, a peer that leaves).
//
// doctest's CHECK is not made for several threads, so a rank's body throws (expect_values) and
// the main thread checks that no rank threw.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include "dist/gloo_communicator.h"
#include "dist/store.h"
#include "engine/ember.h"
#include "test/temporary_files.h"  // error_of, contains

namespace ember::dist {
namespace {

using test::contains;
using test::error_of;
using namespace std::chrono_literals;

CommunicatorOptions with_timeout(Milliseconds timeout) {
  CommunicatorOptions options;
  options.timeout = timeout;
  return options;
}

// Runs body(comm) on `size` threads, one communicator each (all meeting through one store), and
// returns what each rank threw ("" for none).
std::vector<std::string> run_ranks(int size, const std::function<void(Communicator&)>& body,
                                   CommunicatorOptions options = with_timeout(10s),
                                   std::shared_ptr<Store> store = std::make_shared<MemoryStore>()) {
  std::vector<std::string> errors(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        auto comm = make_gloo_communicator(store, rank, size, options);
        body(*comm);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return errors;
}

void require_no_errors(const std::vector<std::string>& errors) {
  for (size_t rank = 0; rank < errors.size(); ++rank) {
    INFO("rank " << rank << ": " << errors[rank]);
    CHECK(errors[rank].empty());
  }
}

// Throws (to the thread's catch) when `actual` differs from `expected`.
void expect_values(const Tensor& actual, const std::vector<double>& expected,
                   const std::string& what) {
  const std::vector<double> got = actual.to_vector<double>();
  bool same = got.size() == expected.size();
  for (size_t i = 0; same && i < got.size(); ++i)
    same = std::abs(got[i] - expected[i]) <= 1e-9 * (1 + std::abs(expected[i]));
  if (same) return;
  std::string text = what + ": got";
  for (double v : got) text += " " + std::to_string(v);
  text += ", expected";
  for (double v : expected) text += " " + std::to_string(v);
  throw Error(text);
}

// Rank r's test data: element i is (r + 1) * 10 + i, minus something for the negatives.
std::vector<double> rank_values(int rank, int count) {
  std::vector<double> values;
  for (int i = 0; i < count; ++i) values.push_back((rank + 1) * 10 + i - (i % 2 ? 25 : 0));
  return values;
}

const DType kDTypes[] = {DType::F32, DType::F64, DType::I32, DType::I64};

TEST_CASE("gloo all_reduce sums averages and takes max and min for every dtype") {
  for (int size : {2, 3, 4}) {
    const int count = 5;
    auto errors = run_ranks(size, [&](Communicator& comm) {
      for (DType dtype : kDTypes) {
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max, ReduceOp::Min}) {
          Tensor t = tensor(rank_values(comm.rank(), count)).to(dtype);
          comm.all_reduce(t, op)->wait();
          std::vector<double> expected(count);
          for (int i = 0; i < count; ++i) {
            double sum = 0, high = -1e300, low = 1e300;
            for (int r = 0; r < size; ++r) {
              const double v = rank_values(r, count)[i];
              sum += v;
              high = std::max(high, v);
              low = std::min(low, v);
            }
            double average = sum / size;
            // Integers divide as C++ does: toward zero.
            if (dtype == DType::I32 || dtype == DType::I64)
              average = static_cast<double>(static_cast<int64_t>(sum) / size);
            expected[i] = op == ReduceOp::Sum       ? sum
                          : op == ReduceOp::Average ? average
                          : op == ReduceOp::Max     ? high
                                                    : low;
          }
          expect_values(t, expected,
                        str_cat("all_reduce ", reduce_op_name(op), " ", dtype_name(dtype)));
        }
      }
    });
    INFO("size " << size);
    require_no_errors(errors);
  }
}

TEST_CASE("gloo broadcast copies the root's tensor to every rank") {
  for (int size : {2, 3, 4}) {
    auto errors = run_ranks(size, [&](Communicator& comm) {
      for (int root = 0; root < size; ++root) {
        for (DType dtype : kDTypes) {
          Tensor t = tensor(rank_values(comm.rank(), 7)).to(dtype);
          comm.broadcast(t, root)->wait();
          expect_values(t, rank_values(root, 7), str_cat("broadcast from ", root));
        }
      }
    });
    INFO("size " << size);
    require_no_errors(errors);
  }
}

TEST_CASE("gloo barrier returns on every rank") {
  std::atomic<int> arrived{0};
  auto errors = run_ranks(3, [&](Communicator& comm) {
    arrived += 1;
    comm.barrier()->wait();
    if (arrived.load() != 3) throw Error("left the barrier before every rank arrived");
  });
  require_no_errors(errors);
}

}  // namespace
}  // namespace ember::dist

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

#include "dist/collective_values.h"  // rank_values, expect_values
#include "dist/gloo_communicator.h"
#include "dist/store.h"
#include "engine/ember.h"
#include "test/support.h"          // EMBER_REQUIRE_GPU
#include "test/temporary_files.h"  // error_of, contains

namespace ember::dist {
namespace {

using test::contains;
using test::error_of;
using test::expect_values;
using test::rank_values;
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

TEST_CASE("gloo all_gather puts every rank's input in rank order") {
  for (int size : {2, 3, 4}) {
    auto errors = run_ranks(size, [&](Communicator& comm) {
      for (DType dtype : kDTypes) {
        Tensor input = tensor(rank_values(comm.rank(), 3)).to(dtype);
        Tensor output = zeros({size * 3}, dtype);
        comm.all_gather(input, output)->wait();
        std::vector<double> expected;
        for (int r = 0; r < size; ++r)
          for (double v : rank_values(r, 3)) expected.push_back(v);
        expect_values(output, expected, str_cat("all_gather ", dtype_name(dtype)));
      }
    });
    INFO("size " << size);
    require_no_errors(errors);
  }
}

TEST_CASE("gloo all_gather_v gathers unequal counts in rank order") {
  for (int size : {2, 3, 4}) {
    // Rank r contributes r + 1 elements, and in a second round the last rank contributes none.
    for (bool last_empty : {false, true}) {
      std::vector<int64_t> counts;
      for (int r = 0; r < size; ++r) counts.push_back(last_empty && r == size - 1 ? 0 : r + 1);
      int64_t total = 0;
      for (int64_t c : counts) total += c;
      auto errors = run_ranks(size, [&](Communicator& comm) {
        const int count = static_cast<int>(counts[comm.rank()]);
        Tensor input = tensor(rank_values(comm.rank(), count)).to(DType::F32);
        Tensor output = zeros({total}, DType::F32);
        comm.all_gather_v(input, output, counts)->wait();
        std::vector<double> expected;
        for (int r = 0; r < size; ++r)
          for (double v : rank_values(r, static_cast<int>(counts[r]))) expected.push_back(v);
        expect_values(output, expected, "all_gather_v");
      });
      INFO("size " << size << ", last rank empty " << last_empty);
      require_no_errors(errors);
    }
  }
}

TEST_CASE("gloo reduce_scatter gives rank r the reduction of every block r") {
  for (int size : {2, 3, 4}) {
    const int block = 3;
    auto errors = run_ranks(size, [&](Communicator& comm) {
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max, ReduceOp::Min}) {
        Tensor input = tensor(rank_values(comm.rank(), size * block));
        Tensor output = zeros({block}, DType::F64);
        comm.reduce_scatter(input, output, op)->wait();
        std::vector<double> expected;
        for (int i = comm.rank() * block; i < (comm.rank() + 1) * block; ++i) {
          double sum = 0, high = -1e300, low = 1e300;
          for (int r = 0; r < size; ++r) {
            const double v = rank_values(r, size * block)[i];
            sum += v;
            high = std::max(high, v);
            low = std::min(low, v);
          }
          expected.push_back(op == ReduceOp::Sum       ? sum
                             : op == ReduceOp::Average ? sum / size
                             : op == ReduceOp::Max     ? high
                                                       : low);
        }
        expect_values(output, expected, "reduce_scatter " + reduce_op_name(op));
      }
    });
    INFO("size " << size);
    require_no_errors(errors);
  }
}

TEST_CASE("gloo send and recv match by source and tag in order") {
  auto errors = run_ranks(3, [&](Communicator& comm) {
    if (comm.rank() == 0) {
      // Tag 7 first, then two messages on tag 1 (which must arrive in order).
      comm.send(tensor(std::vector<double>{7, 7}), 1, 7);
      comm.send(tensor(std::vector<double>{1, 2}), 1, 1);
      comm.send(tensor(std::vector<double>{3, 4}), 1, 1)->wait();
      comm.send(tensor(std::vector<int64_t>{42}), 2)->wait();
    } else if (comm.rank() == 1) {
      // Received in another order than sent: tag 1 first.
      Tensor first = zeros({2}, DType::F64), second = zeros({2}, DType::F64);
      Tensor tagged = zeros({2}, DType::F64);
      comm.recv(first, 0, 1);
      comm.recv(second, 0, 1);
      comm.recv(tagged, 0, 7)->wait();
      expect_values(first, {1, 2}, "first message on tag 1");
      expect_values(second, {3, 4}, "second message on tag 1");
      expect_values(tagged, {7, 7}, "message on tag 7");
    } else {
      Tensor value = zeros({1}, DType::I64);
      comm.recv(value, 0)->wait();
      expect_values(value, {42}, "message on the default tag");
    }
  });
  require_no_errors(errors);
}

TEST_CASE("gloo neighbour exchange where both ranks send before they receive") {
  // Every rank sends to its right neighbour, then receives from its left one: a send must not
  // hold up the receive that comes after it.
  for (int size : {2, 4}) {
    auto errors = run_ranks(size, [&](Communicator& comm) {
      const int right = (comm.rank() + 1) % size, left = (comm.rank() + size - 1) % size;
      Tensor mine = full({4}, comm.rank(), DType::F32), theirs = zeros({4}, DType::F32);
      WorkHandle sent = comm.send(mine, right, 3);
      comm.recv(theirs, left, 3)->wait();
      sent->wait();
      expect_values(theirs, std::vector<double>(4, left), "from the left neighbour");
    });
    INFO("size " << size);
    require_no_errors(errors);
  }
}

TEST_CASE("gloo sub-groups run collectives of their own concurrently") {
  auto errors = run_ranks(4, [&](Communicator& comm) {
    // Two disjoint groups, {0, 2} and {3, 1} (the latter numbered 3 -> 0, 1 -> 1).
    auto even = comm.new_group({0, 2});
    auto odd = comm.new_group({3, 1});
    const bool is_even = comm.rank() % 2 == 0;
    if ((even != nullptr) != is_even) throw Error("membership of the group {0, 2} is wrong");
    if ((odd != nullptr) == is_even) throw Error("membership of the group {3, 1} is wrong");
    auto& group = is_even ? *even : *odd;
    const std::vector<int> expected_world =
        is_even ? std::vector<int>{0, 2} : std::vector<int>{3, 1};
    if (group.size() != 2 || group.world_ranks() != expected_world)
      throw Error("the group's size or world ranks are wrong");
    if (!is_even && group.rank() != (comm.rank() == 3 ? 0 : 1))
      throw Error("ranks are not numbered in the order of the list");
    Tensor t = full({3}, comm.rank() + 1, DType::F32);
    for (int round = 0; round < 3; ++round) {
      Tensor u = t.clone();
      group.all_reduce(u)->wait();
      expect_values(u, std::vector<double>(3, is_even ? 1 + 3 : 2 + 4), "group all_reduce");
    }
    Tensor b = full({2}, comm.rank(), DType::F64);
    group.broadcast(b, 0)->wait();
    expect_values(b, std::vector<double>(2, is_even ? 0 : 3), "group broadcast");
    // The world communicator still works, and a second group over all ranks too.
    Tensor w = full({1}, 1, DType::I32);
    comm.all_reduce(w)->wait();
    expect_values(w, {4}, "world all_reduce after the groups");
    auto all = comm.new_group({3, 2, 1, 0});
    Tensor r = full({1}, comm.rank(), DType::I64);
    all->broadcast(r, 0)->wait();  // group rank 0 is world rank 3
    expect_values(r, {3}, "broadcast in the reversed group");
  });
  require_no_errors(errors);
}

TEST_CASE("gloo operations run asynchronously and in the order they were started") {
  auto errors = run_ranks(3, [&](Communicator& comm) {
    Tensor a = full({1000}, comm.rank(), DType::F32);
    Tensor b = full({10}, 2 * comm.rank(), DType::F64);
    WorkHandle first = comm.all_reduce(a);
    WorkHandle second = comm.all_reduce(b, ReduceOp::Max);
    // In order: the in-place ops see each other's results.
    Tensor c = full({1}, comm.rank() + 1, DType::F32);
    WorkHandle third = comm.all_reduce(c);
    WorkHandle fourth = comm.all_reduce(c);  // runs on the sum of the third
    fourth->wait();
    if (!first->is_completed() || !second->is_completed() || !third->is_completed())
      throw Error("an earlier operation is not complete after a later one's wait");
    first->wait();
    second->wait();
    expect_values(a, std::vector<double>(1000, 0 + 1 + 2), "first all_reduce");
    expect_values(b, std::vector<double>(10, 4), "second all_reduce");
    expect_values(c, {3 * 6}, "two all_reduces in a row");
  });
  require_no_errors(errors);
}

TEST_CASE("gloo is_completed does not block and turns true once done") {
  auto errors = run_ranks(2, [&](Communicator& comm) {
    if (comm.rank() == 0) {
      Tensor t = zeros({1}, DType::F32);
      WorkHandle w = comm.recv(t, 1);
      if (w->is_completed()) throw Error("a recv completed before its send was started");
      comm.barrier()->wait();  // rank 1 sends after this barrier's start
      w->wait();
      if (!w->is_completed()) throw Error("is_completed is false after wait");
      expect_values(t, {5}, "recv");
    } else {
      std::this_thread::sleep_for(100ms);
      comm.send(full({1}, 5, DType::F32), 0)->wait();
      comm.barrier()->wait();
    }
  });
  require_no_errors(errors);
}

TEST_CASE("gloo stats count payload bytes and operations per op") {
  std::vector<CommStats> stats(3);
  auto errors = run_ranks(3, [&](Communicator& comm) {
    const int r = comm.rank();
    comm.all_reduce(zeros({10}, DType::F32))->wait();                         // 40 bytes
    comm.all_reduce(zeros({3}, DType::F64), ReduceOp::Average)->wait();       // 24
    comm.broadcast(zeros({5}, DType::I64), 1)->wait();                        // 40
    comm.all_gather(zeros({2}, DType::I32), zeros({6}, DType::I32))->wait();  // 8
    comm.all_gather_v(zeros({r + 1}, DType::F64), zeros({6}, DType::F64), {1, 2, 3})
        ->wait();                                                                 // 8 (r + 1)
    comm.reduce_scatter(zeros({6}, DType::F32), zeros({2}, DType::F32))->wait();  // 24
    if (r == 0) comm.send(zeros({4}, DType::F32), 1)->wait();                     // 16
    if (r == 1) comm.recv(zeros({4}, DType::F32), 0)->wait();                     // 16
    comm.barrier()->wait();                                                       // 0
    stats[r] = comm.stats();
    comm.reset_stats();
    if (comm.stats().operations != 0 || comm.stats().payload_bytes != 0)
      throw Error("reset_stats left counts behind");
  });
  require_no_errors(errors);
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    const CommStats& s = stats[r];
    const int64_t p2p = r < 2 ? 16 : 0;
    CHECK(s.payload_bytes == 40 + 24 + 40 + 8 + 8 * (r + 1) + 24 + p2p);
    CHECK(s.operations == (r < 2 ? 8 : 7));
    CHECK(s.payload_bytes_by_op.at("all_reduce") == 64);
    CHECK(s.operations_by_op.at("all_reduce") == 2);
    CHECK(s.payload_bytes_by_op.at("broadcast") == 40);
    CHECK(s.payload_bytes_by_op.at("all_gather") == 8);
    CHECK(s.payload_bytes_by_op.at("all_gather_v") == 8 * (r + 1));
    CHECK(s.payload_bytes_by_op.at("reduce_scatter") == 24);
    CHECK(s.payload_bytes_by_op.at("barrier") == 0);
    CHECK(s.operations_by_op.at("barrier") == 1);
    CHECK(s.operations_by_op.count("send") == (r == 0 ? 1u : 0u));
    CHECK(s.operations_by_op.count("recv") == (r == 1 ? 1u : 0u));
    CHECK(s.seconds > 0);
    CHECK(s.seconds < 10);
  }
}

TEST_CASE("gloo rejects bad input on the calling thread with a message naming op and rank") {
  auto errors = run_ranks(2, [&](Communicator& comm) {
    auto expect_error = [&](const std::function<void()>& call, const std::string& part) {
      const std::string message = error_of(call);
      if (!contains(message, part) || !contains(message, "rank " + std::to_string(comm.rank())))
        throw Error("expected an error containing '" + part + "', got '" + message + "'");
    };
    expect_error([&] { comm.all_reduce(zeros({2, 3}).t()); }, "all_reduce");
    expect_error([&] { comm.all_reduce(zeros({2, 3}).t()); }, "not contiguous");
    expect_error([&] { comm.all_reduce(zeros({2}, DType::U8)); }, "dtype u8");
    expect_error([&] { comm.broadcast(zeros({2}), 2); }, "root 2 is outside");
    expect_error([&] { comm.broadcast(zeros({2}), -1); }, "root -1");
    expect_error([&] { comm.send(zeros({2}), comm.rank()); }, "is this rank itself");
    expect_error([&] { comm.recv(zeros({2}), 5); }, "src 5 is outside");
    expect_error([&] { comm.send(zeros({2}), 1 - comm.rank(), -3); }, "tag -3");
    expect_error([&] { comm.all_gather(zeros({2}), zeros({5})); }, "output has 5 elements");
    expect_error([&] { comm.all_gather(zeros({2}), zeros({4}, DType::F64)); }, "output is f64");
    expect_error([&] { comm.all_gather_v(zeros({2}), zeros({3}), {2}); }, "1 counts given");
    expect_error([&] { comm.all_gather_v(zeros({2}), zeros({4}), {1, 3}); }, "counts[");
    expect_error([&] { comm.all_gather_v(zeros({2}), zeros({5}), {2, 2}); }, "sum of counts");
    expect_error([&] { comm.reduce_scatter(zeros({5}), zeros({2})); }, "input has 5 elements");
    expect_error([&] { comm.all_reduce(Tensor()); }, "undefined");
    expect_error([&] { comm.new_group({0, 0}); }, "listed twice");
    expect_error([&] { comm.new_group({0, 7}); }, "rank 7 is outside");
    // None of those was started: the communicator still works, and counted nothing.
    if (comm.stats().operations != 0) throw Error("a rejected call was counted");
    Tensor t = full({1}, 1, DType::F32);
    comm.all_reduce(t)->wait();
    expect_values(t, {2}, "all_reduce after the rejected calls");
  });
  require_no_errors(errors);
}

TEST_CASE("gloo several communicators on one store do not collide") {
  auto store = std::make_shared<MemoryStore>();
  auto errors = run_ranks(
      2,
      [&](Communicator& first) {
        auto second = make_gloo_communicator(store, first.rank(), 2, with_timeout(10s));
        Tensor a = full({2}, 1, DType::F32), b = full({2}, 10, DType::F32);
        WorkHandle wa = first.all_reduce(a);
        WorkHandle wb = second->all_reduce(b);
        wa->wait();
        wb->wait();
        expect_values(a, {2, 2}, "first communicator");
        expect_values(b, {20, 20}, "second communicator");
      },
      with_timeout(10s), store);
  require_no_errors(errors);
}

TEST_CASE("gloo a rank that never joins gives a TimeoutError naming it") {
  auto store = std::make_shared<MemoryStore>();
  // Ranks 0 and 2 of 3 come; rank 1 never does.
  std::vector<std::string> messages(3);
  std::vector<bool> timeouts(3, false);
  std::vector<double> seconds(3, 0);
  std::vector<std::thread> threads;
  for (int rank : {0, 2}) {
    threads.emplace_back([&, rank] {
      const auto start = std::chrono::steady_clock::now();
      try {
        make_gloo_communicator(store, rank, 3, with_timeout(1s));
      } catch (const TimeoutError& e) {
        timeouts[rank] = true;
        messages[rank] = e.what();
      } catch (const std::exception& e) {
        messages[rank] = e.what();
      }
      seconds[rank] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  }
  for (auto& thread : threads) thread.join();
  for (int rank : {0, 2}) {
    INFO("rank " << rank << ": " << messages[rank]);
    CHECK(timeouts[rank]);
    CHECK(contains(messages[rank], "world rank 1 did not come"));
    CHECK(seconds[rank] < 3);
  }
}

TEST_CASE("gloo a peer that leaves makes the next operation fail instead of hanging") {
  auto store = std::make_shared<MemoryStore>();
  std::promise<void> left;
  std::shared_future<void> has_left = left.get_future().share();
  std::string message, second_message;
  double seconds = 1e9;
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    try {
      auto comm = make_gloo_communicator(store, 0, 2, with_timeout(2s));
      Tensor t = full({8}, 1, DType::F32);
      comm->all_reduce(t)->wait();
      has_left.wait_for(5s);
      const auto start = std::chrono::steady_clock::now();
      message = error_of([&] { comm->all_reduce(t)->wait(); });
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // A broken communicator refuses further operations, at once.
      second_message = error_of([&] { comm->barrier()->wait(); });
    } catch (const std::exception& e) {
      message = std::string("unexpected: ") + e.what();
    }
  });
  threads.emplace_back([&] {
    try {
      auto comm = make_gloo_communicator(store, 1, 2, with_timeout(2s));
      Tensor t = full({8}, 1, DType::F32);
      comm->all_reduce(t)->wait();
    } catch (const std::exception&) {
    }
    left.set_value();  // its communicator is destroyed by now
  });
  for (auto& thread : threads) thread.join();
  INFO(message);
  INFO(second_message);
  CHECK(contains(message, "gloo all_reduce on rank 0"));
  CHECK(contains(message, "world rank 1"));
  CHECK(seconds < 3);
  CHECK(contains(second_message, "barrier"));
  CHECK(contains(second_message, "refuses further operations"));
}

TEST_CASE("gloo a peer that stops answering gives a TimeoutError naming it") {
  auto store = std::make_shared<MemoryStore>();
  std::string message;
  bool is_timeout = false;
  double seconds = 1e9;
  std::promise<void> done;
  std::shared_future<void> finished = done.get_future().share();
  std::thread silent([&] {
    try {
      // Connects, then never calls the collective rank 0 waits in.
      auto comm = make_gloo_communicator(store, 1, 2, with_timeout(1s));
      finished.wait_for(10s);
    } catch (const std::exception&) {
    }
  });
  std::thread waiting([&] {
    try {
      auto comm = make_gloo_communicator(store, 0, 2, with_timeout(1s));
      Tensor t = full({4}, 1, DType::F64);
      const auto start = std::chrono::steady_clock::now();
      try {
        comm->all_reduce(t)->wait();
      } catch (const TimeoutError& e) {
        is_timeout = true;
        message = e.what();
      } catch (const std::exception& e) {
        message = e.what();
      }
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } catch (const std::exception& e) {
      message = std::string("unexpected: ") + e.what();
    }
    done.set_value();
  });
  waiting.join();
  silent.join();
  INFO(message);
  CHECK(is_timeout);
  CHECK(contains(message, "all_reduce"));
  CHECK(contains(message, "world rank 1"));
  CHECK(seconds < 3);
}

TEST_CASE("gloo a send nobody receives gives a TimeoutError naming the receiver") {
  std::vector<std::string> messages(2);
  bool is_timeout = false;
  auto errors = run_ranks(
      2,
      [&](Communicator& comm) {
        if (comm.rank() == 0) {
          try {
            comm.send(full({4}, 1, DType::F32), 1, 9)->wait();
          } catch (const TimeoutError& e) {
            is_timeout = true;
            messages[0] = e.what();
          }
        } else {
          std::this_thread::sleep_for(1500ms);  // never posts the receive
        }
      },
      with_timeout(1s));
  require_no_errors(errors);
  INFO(messages[0]);
  CHECK(is_timeout);
  CHECK(contains(messages[0], "gloo send on rank 0"));
  CHECK(contains(messages[0], "world rank 1"));
}

TEST_CASE("gloo destroying a communicator while an operation waits returns promptly") {
  auto store = std::make_shared<MemoryStore>();
  double destroy_seconds = 1e9;
  std::string waited_error;
  std::promise<void> done;
  std::shared_future<void> finished = done.get_future().share();
  std::thread silent([&] {
    try {
      auto comm = make_gloo_communicator(store, 1, 2, with_timeout(3s));
      finished.wait_for(10s);
    } catch (const std::exception&) {
    }
  });
  std::thread waiting([&] {
    try {
      auto comm = make_gloo_communicator(store, 0, 2, with_timeout(3s));
      Tensor t = full({4}, 1, DType::F32);
      WorkHandle stuck = comm->all_reduce(t);
      WorkHandle queued = comm->barrier();  // never runs
      std::this_thread::sleep_for(100ms);
      const auto start = std::chrono::steady_clock::now();
      comm.reset();
      destroy_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      waited_error = error_of([&] { queued->wait(); });
      // The stuck all_reduce ends at its own deadline.
      error_of([&] { stuck->wait(); });
    } catch (const std::exception& e) {
      waited_error = std::string("unexpected: ") + e.what();
    }
    done.set_value();
  });
  waiting.join();
  silent.join();
  INFO(waited_error);
  CHECK(destroy_seconds < 1);
  CHECK(contains(waited_error, "destroyed"));
}

TEST_CASE("gloo a world of one rank") {
  auto errors = run_ranks(1, [&](Communicator& comm) {
    Tensor t = full({3}, 4, DType::F32);
    comm.all_reduce(t, ReduceOp::Average)->wait();
    expect_values(t, {4, 4, 4}, "all_reduce");
    comm.broadcast(t, 0)->wait();
    Tensor out = zeros({3}, DType::F32);
    comm.all_gather(t, out)->wait();
    expect_values(out, {4, 4, 4}, "all_gather");
    comm.reduce_scatter(t, out)->wait();
    comm.barrier()->wait();
  });
  require_no_errors(errors);
}

TEST_CASE("gloo stages cuda tensors through host memory") {
  EMBER_REQUIRE_GPU();
  auto errors = run_ranks(2, [&](Communicator& comm) {
    const Device gpu = Device::cuda(0);
    Tensor t = tensor(rank_values(comm.rank(), 4)).to(gpu, DType::F32);
    comm.all_reduce(t)->wait();
    std::vector<double> expected;
    for (int i = 0; i < 4; ++i) expected.push_back(rank_values(0, 4)[i] + rank_values(1, 4)[i]);
    expect_values(t.cpu(), expected, "cuda all_reduce");
    Tensor b = full({3}, comm.rank() + 5, TensorOptions(DType::F64, gpu));
    comm.broadcast(b, 1)->wait();
    expect_values(b.cpu(), {6, 6, 6}, "cuda broadcast");
    Tensor out = zeros({4}, TensorOptions(DType::I64, gpu));
    comm.all_gather(full({2}, comm.rank(), TensorOptions(DType::I64, gpu)), out)->wait();
    expect_values(out.cpu(), {0, 0, 1, 1}, "cuda all_gather");
  });
  require_no_errors(errors);
}

}  // namespace
}  // namespace ember::dist

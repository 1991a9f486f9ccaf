// What the tests of ember's distributed algorithms share: ranks as threads of this process
// (one Gloo communicator each, meeting through a MemoryStore), small models built identically
// for every rank, and deterministic batches.
//
// doctest's CHECK is not made for several threads: a rank's body throws (or records values),
// and the main thread checks afterwards.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dist/gloo_communicator.h"
#include "dist/store.h"
#include "engine/ember.h"
#include "layers/activation.h"
#include "layers/container.h"
#include "layers/linear.h"
#include "layers/loss.h"

namespace ember::test {

// Runs body(rank, comm) on `size` threads, each with its own communicator; returns what each
// rank threw ("" for none).
inline std::vector<std::string> run_ranks(
    int size, const std::function<void(int rank, std::shared_ptr<dist::Communicator> comm)>& body) {
  auto store = std::make_shared<dist::MemoryStore>();
  std::vector<std::string> errors(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        dist::CommunicatorOptions options;
        options.timeout = std::chrono::seconds(20);
        body(rank, dist::make_gloo_communicator(store, rank, size, options));
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return errors;
}

inline void require_no_errors(const std::vector<std::string>& errors) {
  for (size_t rank = 0; rank < errors.size(); ++rank) {
    INFO("rank " << rank << ": " << errors[rank]);
    REQUIRE(errors[rank].empty());
  }
}

// A multi-layer perceptron in f64 with flat parameters: Linear(widths[0] -> widths[1]), ReLU,
// ... (no ReLU after the last). Built from `seed` alone, so equal seeds give equal replicas.
// Models are built on the main thread: initialization draws from the default generator.
inline std::shared_ptr<nn::Sequential> make_mlp(const std::vector<int64_t>& widths, uint64_t seed) {
  manual_seed(seed);
  auto model = nn::make<nn::Sequential>();
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    model->push_back(nn::make<nn::Linear>(widths[i], widths[i + 1]));
    if (i + 2 < widths.size()) model->push_back(nn::make<nn::ReLU>());
  }
  model->to(DType::F64);
  model->flatten_parameters();
  return model;
}

// Deterministic f64 inputs or targets.
inline Tensor random_batch(const Shape& shape, uint64_t seed) {
  Generator generator(seed);
  return normal(shape, 0, 1, DType::F64, &generator);
}

// Rows [begin, begin + count) of a batch.
inline Tensor rows(const Tensor& batch, int64_t begin, int64_t count) {
  return batch.narrow(0, begin, count).contiguous();
}

// Every parameter's values, concatenated.
inline std::vector<double> parameter_values(const nn::Module& model) {
  std::vector<double> values;
  for (const Tensor& p : model.parameters()) {
    const std::vector<double> v = p.detach().to_vector<double>();
    values.insert(values.end(), v.begin(), v.end());
  }
  return values;
}

inline double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace ember::test

// The data the collective checks use, shared by the thread-rank tests (test_gloo_communicator.cpp)
// and the process ranks (test/mp/programs/collective_ranks.cpp): each rank's values, and a
// comparison that throws ember::Error (to the rank's catch) naming what differed.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace ember::test {

// Rank r's test data: element i is (r + 1) * 10 + i, minus something for the negatives.
inline std::vector<double> rank_values(int rank, int count) {
  std::vector<double> values;
  for (int i = 0; i < count; ++i) values.push_back((rank + 1) * 10 + i - (i % 2 ? 25 : 0));
  return values;
}

// Throws when `actual` differs from `expected` (relative 1e-9: exact for integers).
inline void expect_values(const Tensor& actual, const std::vector<double>& expected,
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

}  // namespace ember::test

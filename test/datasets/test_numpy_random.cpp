// numpy's legacy generator, against values numpy 1.24 printed. The numbers below come from
// /usr/bin/python3 running, for each seed in (0, 11, 569, 4294967295):
//   import numpy as np
//   rs = np.random.RandomState(seed); rs.randint(0, 2**32, size=4, dtype=np.uint64)  # raw words
//   rs = np.random.RandomState(seed); rs.random_sample(3)
//   rs = np.random.RandomState(seed); x = list(range(10)); rs.shuffle(x)
//   rs = np.random.RandomState(seed); (rs.randint(0, 25485227, size=4), rs.randint(-5, 7, size=6),
//                                      rs.randint(0, 2**40, size=3), rs.randint(10, 11, size=2),
//                                      rs.randint(3, 9))
//   rs = np.random.RandomState(seed); a = np.arange(7); rs.shuffle(a); rs.rand(2);
//   rs.randint(0, 100, size=3)
// and for the sums: rs = np.random.RandomState(3); float(np.sum(rs.rand(n))).hex().
#include <doctest/doctest.h>

#include <numeric>

#include "datasets/numpy_random.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {
struct NumpyExpectation {
  uint32_t seed;
  std::vector<uint32_t> raw;
  std::vector<double> samples;
  std::vector<int> shuffled;
  std::vector<int64_t> seeds_like, small, wide, single;
  int64_t scalar;
  std::vector<int> mixed_shuffle;
  std::vector<double> mixed_rand;
  std::vector<int64_t> mixed_randint;
};

const std::vector<NumpyExpectation> expectations = {
    {0,
     {2357136044u, 2546248239u, 3071714933u, 3626093760u},
     {0.5488135039273248, 0.7151893663724195, 0.6027633760716439},
     {2, 8, 4, 9, 1, 6, 7, 3, 0, 5},
     {8325804, 18261621, 2215104, 5157699},
     {6, -2, 2, 4, -2, 0},
     {1041261508388, 377492290630, 931851835992},
     {10, 10},
     7,
     {6, 2, 1, 3, 0, 5, 4},
     {0.6458941130666561, 0.4375872112626925},
     {70, 88, 88}},
    {11,
     {774252441u, 293375679u, 83645520u, 2854952027u},
     {0.1802696888767692, 0.019475241487624584, 0.4632185264983446},
     {7, 8, 2, 6, 4, 5, 1, 3, 0, 9},
     {2500505, 24940223, 16536656, 2825307},
     {-4, 2, -4, 2, -3, 3},
     {472001189468, 759462665981, 687593393965},
     {10, 10},
     7,
     {2, 5, 4, 6, 3, 0, 1},
     {0.42020360458772743, 0.4854270981677824},
     {92, 48, 32}},
    {569,
     {3762878498u, 849797407u, 1192699607u, 1151816980u},
     {0.8761134236891484, 0.27769701382650647, 0.5063598490037802},
     {8, 0, 6, 9, 5, 1, 3, 4, 7, 2},
     {4782114, 10936607, 18294487, 10966292},
     {6, 1, -4, 4, 1, 1},
     {698813111359, 486717128322, 613822522771},
     {10, 10},
     6,
     {0, 5, 1, 6, 3, 4, 2},
     {0.954769238721576, 0.5315394668347968},
     {63, 2, 14}},
    {4294967295u,
     {419326371u, 479346978u, 3918654476u, 2416749639u},
     {0.0976320289940138, 0.9123828453026218, 0.78903530185164},
     {6, 9, 5, 1, 8, 0, 7, 4, 2, 3},
     {16673187, 9584930, 830535, 12385856},
     {1, 5, 4, -5, 6, -3},
     {460189069067, 871489130011, 607968668086},
     {10, 10},
     8,
     {1, 5, 0, 6, 4, 2, 3},
     {0.7800035981134678, 0.01793967398674523},
     {11, 74, 27}},
};
}  // namespace

TEST_CASE("numpy legacy random state reproduces numpy's draws for several seeds") {
  for (const auto& e : expectations) {
    INFO("seed " << e.seed);
    NumpyRandomState raw(e.seed);
    for (uint32_t word : e.raw) CHECK(raw.next_u32() == word);

    NumpyRandomState samples(e.seed);
    for (double value : e.samples) CHECK(samples.random_sample() == value);  // bit for bit

    NumpyRandomState shuffler(e.seed);
    std::vector<int> values(10);
    std::iota(values.begin(), values.end(), 0);
    shuffler.shuffle(values);
    CHECK(values == e.shuffled);

    NumpyRandomState integers(e.seed);
    CHECK(integers.randint(0, 25485227, 4) == e.seeds_like);
    CHECK(integers.randint(-5, 7, 6) == e.small);
    CHECK(integers.randint(0, int64_t{1} << 40, 3) == e.wide);  // 64-bit words
    CHECK(integers.randint(10, 11, 2) == e.single);             // draws nothing
    CHECK(integers.randint(3, 9) == e.scalar);

    NumpyRandomState mixed(e.seed);
    std::vector<int> array(7);
    std::iota(array.begin(), array.end(), 0);
    mixed.shuffle(array);
    CHECK(array == e.mixed_shuffle);
    CHECK(mixed.rand(2) == e.mixed_rand);
    CHECK(mixed.randint(0, 100, 3) == e.mixed_randint);
  }
}

TEST_CASE("numpy sums round as numpy's pairwise summation") {
  auto sum_of_rand = [](size_t n) { return numpy_sum(NumpyRandomState(3).rand(n)); };
  CHECK(sum_of_rand(5) == 0x1.7a1062809d2fep+1);
  CHECK(sum_of_rand(8) == 0x1.0bb21d8ac3e06p+2);
  CHECK(sum_of_rand(13) == 0x1.73e567ef95c91p+2);
  // A plain loop gives ...bdp+7 here: the pairwise blocks are what numpy does.
  CHECK(sum_of_rand(300) == 0x1.254a7104bf2bep+7);
  CHECK(numpy_sum({}) == 0.0);
}

TEST_CASE("numpy randint rejects an empty range") {
  NumpyRandomState random(1);
  CHECK(contains(error_of([&] { random.randint(5, 5, 1); }),
                 "randint: low (5) must be below high (5)"));
  CHECK(random.random_interval(0) == 0);
}

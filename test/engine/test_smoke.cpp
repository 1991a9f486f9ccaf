#include <doctest/doctest.h>

#include "engine/ember.h"

TEST_CASE("smoke") {
  ember::Tensor a = ember::ones({2, 3});
  CHECK(ember::sum(a).item<float>() == 6.0f);
}

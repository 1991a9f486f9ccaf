// The one translation unit that holds doctest's runner (it is slow to compile; see CMakeLists).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

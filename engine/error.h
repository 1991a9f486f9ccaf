// ember's exceptions. Every error says what went wrong in terms a user can act on: the op or
// file, the shapes/dtypes/devices involved, and what was expected. Header-only, so that the
// CUDA backend can throw them without linking against the engine.
#pragma once

#include <sstream>    // message building
#include <stdexcept>  // std::runtime_error
#include <string>

namespace ember {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A device (or host) could not provide the memory asked for.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Concatenates anything printable: str_cat("add: shapes ", a, " and ", b).
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace ember

// Throws ember::Error with the message pieces when `cond` is false.
#define EMBER_CHECK(cond, ...)                                        \
  do {                                                                \
    if (!(cond)) throw ::ember::Error(::ember::str_cat(__VA_ARGS__)); \
  } while (0)

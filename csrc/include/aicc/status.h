// Errors raised by the C++ API. The Python bindings translate InvalidArgument to
// ValueError, Unsupported to TypeError and CollectiveError to
// aicc_kernels.CollectiveError, keeping the message: the message is the contract
// ("<argument>: expected <what>, got <what>"), identical to the Python layer's.
#pragma once

#include <stdexcept>
#include <string>

namespace aicc {

class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Unsupported : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CollectiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Formats "<arg>: expected <expected>, got <got>" and throws InvalidArgument.
[[noreturn]] inline void throw_invalid(const std::string& arg, const std::string& expected,
                                       const std::string& got) {
  throw InvalidArgument(arg + ": expected " + expected + ", got " + got);
}

}  // namespace aicc

// The dtx::Error a piece of code throws, for tests that check its code and
// message.
#pragma once

#include <gtest/gtest.h>

#include "dtx/error.h"

namespace dtx::test {

// The dtx::Error `f` throws; a test failure (and an empty Error) if it throws none.
template <typename F>
Error error_from(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a dtx::Error";
  return Error({}, "no error was thrown");
}

}  // namespace dtx::test

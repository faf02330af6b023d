#include "core/error_table.hpp"

#include <gtest/gtest.h>

namespace radguard {
namespace {

TEST(ErrorTable, EveryCodeHasItsOwnRow) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(statuses_for(code).code, code);
  }
}

TEST(ErrorTable, UsageErrorsExitWithTwo) { EXPECT_EQ(statuses_for(ErrorCode::usage).exit_code, 2); }

}  // namespace
}  // namespace radguard

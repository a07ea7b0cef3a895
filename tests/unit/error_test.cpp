#include <errand/core/error.hpp>

#include <system_error>

#include <gtest/gtest.h>

namespace errand {
namespace {

TEST(ErrorKindTest, EveryKindHasItsOwnName) {
  EXPECT_EQ(to_string(ErrorKind::dns), "dns");
  EXPECT_EQ(to_string(ErrorKind::connect), "connect");
  EXPECT_EQ(to_string(ErrorKind::tls), "tls");
  EXPECT_EQ(to_string(ErrorKind::timeout), "timeout");
  EXPECT_EQ(to_string(ErrorKind::protocol), "protocol");
  EXPECT_EQ(to_string(ErrorKind::http_status), "http_status");
  EXPECT_EQ(to_string(ErrorKind::cancelled), "cancelled");
  EXPECT_EQ(to_string(ErrorKind::io), "io");
  EXPECT_EQ(to_string(ErrorKind::config), "config");
}

TEST(ErrorKindTest, OutOfRangeValueIsNamedUnknown) {
  EXPECT_EQ(to_string(static_cast<ErrorKind>(99)), "unknown");
  EXPECT_EQ(to_string(static_cast<Phase>(99)), "unknown");
}

TEST(PhaseTest, EveryPhaseHasItsOwnName) {
  EXPECT_EQ(to_string(Phase::none), "none");
  EXPECT_EQ(to_string(Phase::dns), "dns");
  EXPECT_EQ(to_string(Phase::connect), "connect");
  EXPECT_EQ(to_string(Phase::tls), "tls");
  EXPECT_EQ(to_string(Phase::write), "write");
  EXPECT_EQ(to_string(Phase::first_byte), "first_byte");
  EXPECT_EQ(to_string(Phase::read), "read");
}

TEST(ErrorTest, DescribeIsKindThenMessageWithoutPhase) {
  Error e(ErrorKind::connect, "connection refused by 127.0.0.1:1");
  EXPECT_EQ(e.describe(), "connect: connection refused by 127.0.0.1:1");
}

TEST(ErrorTest, DescribeNamesThePhaseWhenSet) {
  auto e = Error::timeout(Phase::first_byte, "no response within 500ms");
  EXPECT_EQ(e.describe(), "timeout (first_byte): no response within 500ms");
}

TEST(ErrorTest, TimeoutFactorySetsKindPhaseAndTimedOutCode) {
  auto e = Error::timeout(Phase::tls, "slow handshake");
  EXPECT_EQ(e.kind(), ErrorKind::timeout);
  EXPECT_EQ(e.phase(), Phase::tls);
  EXPECT_EQ(e.code(), std::make_error_code(std::errc::timed_out));
  EXPECT_EQ(e.message(), "slow handshake");
}

TEST(ErrorTest, ConfigErrorDescribesFileLineAndColumnFirst) {
  auto e = Error::config("unknown key \"retires\"", SourceLocation{"jobs/probe.yaml", 12, 5});
  EXPECT_EQ(e.kind(), ErrorKind::config);
  EXPECT_EQ(e.where().file, "jobs/probe.yaml");
  EXPECT_EQ(e.where().line, 12);
  EXPECT_EQ(e.where().column, 5);
  EXPECT_EQ(e.describe(), "jobs/probe.yaml:12:5: config: unknown key \"retires\"");
}

TEST(ErrorTest, ConfigErrorOmitsUnknownColumn) {
  auto e = Error::config("bad schedule", SourceLocation{"a.yaml", 3, 0});
  EXPECT_EQ(e.describe(), "a.yaml:3: config: bad schedule");
}

TEST(ErrorTest, ConfigErrorWithOnlyAFileNamesTheFile) {
  auto e = Error::config("file is empty", SourceLocation{"a.yaml", 0, 0});
  EXPECT_EQ(e.describe(), "a.yaml: config: file is empty");
}

TEST(ErrorTest, ConfigErrorWithoutFileHasNoLocationPrefix) {
  // A line number without a file is meaningless on its own and is not shown.
  auto e = Error::config("bad URL", SourceLocation{"", 4, 2});
  EXPECT_EQ(e.describe(), "config: bad URL");
}

TEST(ErrorTest, WithPhaseSetsThePhaseOnLvaluesAndRvalues) {
  Error e(ErrorKind::io, "reset");
  e.with_phase(Phase::read);
  EXPECT_EQ(e.phase(), Phase::read);
  EXPECT_EQ(e.describe(), "io (read): reset");

  Error moved = Error(ErrorKind::io, "closed").with_phase(Phase::write);
  EXPECT_EQ(moved.phase(), Phase::write);
  EXPECT_EQ(moved.message(), "closed");
}

TEST(ErrorTest, DefaultErrorIsIoWithoutPhase) {
  Error e;
  EXPECT_EQ(e.kind(), ErrorKind::io);
  EXPECT_EQ(e.phase(), Phase::none);
  EXPECT_FALSE(e.code());
  EXPECT_EQ(e.describe(), "io: ");
}

TEST(ErrorTest, KeepsTheUnderlyingErrorCode) {
  auto code = std::make_error_code(std::errc::connection_refused);
  Error e(ErrorKind::connect, "refused", code, Phase::connect);
  EXPECT_EQ(e.code(), code);
  EXPECT_EQ(e.phase(), Phase::connect);
}

TEST(ResultTest, FailBuildsAnUnexpectedWithTheGivenKind) {
  Result<int> r = fail(ErrorKind::dns, "no such host", {}, Phase::dns);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), ErrorKind::dns);
  EXPECT_EQ(r.error().phase(), Phase::dns);
  EXPECT_EQ(r.error().message(), "no such host");

  Result<void> v = fail(Error::config("bad"));
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().kind(), ErrorKind::config);
}

}  // namespace
}  // namespace errand

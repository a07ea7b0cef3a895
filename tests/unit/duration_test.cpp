#include <errand/core/duration.hpp>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace errand {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

nanoseconds parsed(std::string_view text) {
  auto d = parse_duration(text);
  EXPECT_TRUE(d.has_value()) << "\"" << text << "\": " << (d ? "" : d.error().describe());
  return d ? *d : nanoseconds(-1);
}

// The error for `text`, which must be a config error quoting the text.
Error refused(std::string_view text) {
  auto d = parse_duration(text);
  EXPECT_FALSE(d.has_value()) << "\"" << text << "\" parsed as " << (d ? d->count() : 0) << "ns";
  if (d) return Error();
  EXPECT_EQ(d.error().kind(), ErrorKind::config) << d.error().describe();
  // The text is quoted, cut at 64 characters.
  EXPECT_NE(d.error().message().find("\"" + std::string(text.substr(0, 64)) + "\""), std::string::npos)
      << d.error().message();
  return d.error();
}

TEST(ParseDurationTest, BareNumberIsSeconds) {
  EXPECT_EQ(parsed("2"), 2s);
  EXPECT_EQ(parsed("2.5"), 2500ms);
  EXPECT_EQ(parsed("0"), 0ns);
  EXPECT_EQ(parsed(".5"), 500ms);
}

TEST(ParseDurationTest, AcceptsEveryUnit) {
  EXPECT_EQ(parsed("7ns"), 7ns);
  EXPECT_EQ(parsed("250us"), 250us);
  EXPECT_EQ(parsed("500ms"), 500ms);
  EXPECT_EQ(parsed("2s"), 2s);
  EXPECT_EQ(parsed("3m"), 180s);
  EXPECT_EQ(parsed("2h"), 7200s);
}

TEST(ParseDurationTest, FractionsScaleByTheUnit) {
  EXPECT_EQ(parsed("1.5ms"), 1500us);
  EXPECT_EQ(parsed("0.25s"), 250ms);
  EXPECT_EQ(parsed("1.5h"), 90min);
}

TEST(ParseDurationTest, CompoundDurationsAddUp) {
  EXPECT_EQ(parsed("1m30s"), 90s);
  EXPECT_EQ(parsed("1h2m3s"), 3723s);
  EXPECT_EQ(parsed("1s500ms"), 1500ms);
}

TEST(ParseDurationTest, SurroundingSpacesAreIgnored) {
  EXPECT_EQ(parsed("  2s "), 2s);
}

TEST(ParseDurationTest, EmptyOrBlankIsRefused) {
  EXPECT_NE(refused("").message().find("empty"), std::string::npos);
  EXPECT_NE(refused("   ").message().find("empty"), std::string::npos);
}

TEST(ParseDurationTest, TextWithoutNumberIsRefused) {
  EXPECT_NE(refused("abc").message().find("expected a number"), std::string::npos);
  refused("s");
  refused(".");
}

TEST(ParseDurationTest, UnknownUnitIsRefusedAndNamed) {
  EXPECT_NE(refused("5x").message().find("unknown unit \"x\""), std::string::npos);
  EXPECT_NE(refused("5S").message().find("unknown unit \"S\""), std::string::npos);  // units are case-sensitive
  refused("5sec");
  refused("1e3");
}

TEST(ParseDurationTest, NegativeIsRefused) {
  EXPECT_NE(refused("-1").message().find("negative"), std::string::npos);
  refused("-1s");
  refused("1m-5s");
}

TEST(ParseDurationTest, SecondDecimalPointIsRefused) {
  refused("1.2.3");
  refused("1..2s");
}

TEST(ParseDurationTest, NumberWithoutUnitAfterACompoundPartIsRefused) {
  EXPECT_NE(refused("1m30").message().find("missing unit"), std::string::npos);
  refused("2 s");
}

TEST(ParseDurationTest, TooLargeIsRefusedInsteadOfOverflowing) {
  EXPECT_NE(refused("999999999h").message().find("too large"), std::string::npos);
  refused(std::string(400, '9'));  // beyond double's range
}

TEST(ParseDurationTest, ErrorMessageGivesExamples) {
  EXPECT_NE(refused("soon").message().find("examples: 2.5, 500ms"), std::string::npos);
}

TEST(FormatDurationTest, PicksTheLargestUnitBelowTheValue) {
  EXPECT_EQ(format_duration(0ns), "0ns");
  EXPECT_EQ(format_duration(999ns), "999ns");
  EXPECT_EQ(format_duration(1000ns), "1.00us");
  EXPECT_EQ(format_duration(250us), "250.00us");
  EXPECT_EQ(format_duration(1'500'000ns), "1.50ms");
  EXPECT_EQ(format_duration(999ms), "999.00ms");
  EXPECT_EQ(format_duration(1s), "1.00s");
  EXPECT_EQ(format_duration(90s), "90.00s");
}

TEST(FormatDurationTest, RoundingNeverShowsAThousandOfAUnit) {
  EXPECT_EQ(format_duration(999'999ns), "1.00ms");
  EXPECT_EQ(format_duration(999'999'999ns), "1.00s");
  EXPECT_EQ(format_duration(999'994ns), "999.99us");
}

TEST(ParseDurationTest, AcceptsSurroundingTabs) {
  auto d = parse_duration("\t2s\t");
  ASSERT_TRUE(d) << d.error().describe();
  EXPECT_EQ(*d, 2s);
}

TEST(FormatDurationTest, RoundsToTwoDecimals) {
  EXPECT_EQ(format_duration(1'234'567ns), "1.23ms");
  EXPECT_EQ(format_duration(2'345'678'901ns), "2.35s");
}

TEST(FormatDurationTest, ParsesBackToAboutTheSameDuration) {
  for (auto d : {nanoseconds(1'500'000), nanoseconds(2'500'000'000), nanoseconds(42'000)}) {
    auto back = parse_duration(format_duration(d));
    ASSERT_TRUE(back.has_value()) << format_duration(d);
    EXPECT_EQ(*back, d) << format_duration(d);
  }
}

}  // namespace
}  // namespace errand

// Request::extensions: state layers attach to a request, keyed by type; the first entries live
// inline, the rest in an overflow list, and erase() keeps every other entry reachable.
#include <errand/http/message.hpp>

#include <gtest/gtest.h>

namespace errand::http {
namespace {

struct First { int value; };
struct Second { int value; };
struct Third { int value; };
struct Fourth { int value; };

TEST(ExtensionsTest, EntriesAreFoundByTypeAndReplacedByAnInsertOfTheSameType) {
  Extensions e;
  EXPECT_EQ(e.get<First>(), nullptr);
  e.insert(std::make_shared<First>(First{1}));
  e.insert(std::make_shared<Second>(Second{2}));
  e.insert(std::make_shared<Third>(Third{3}));  // past the inline entries
  e.insert(std::make_shared<First>(First{10}));
  ASSERT_NE(e.get<First>(), nullptr);
  EXPECT_EQ(e.get<First>()->value, 10);
  EXPECT_EQ(e.get<Second>()->value, 2);
  EXPECT_EQ(e.get<Third>()->value, 3);
}

TEST(ExtensionsTest, EraseRemovesOneTypeWhereverItLivesAndKeepsTheOthers) {
  Extensions e;
  e.insert(std::make_shared<First>(First{1}));
  e.insert(std::make_shared<Second>(Second{2}));
  e.insert(std::make_shared<Third>(Third{3}));
  e.insert(std::make_shared<Fourth>(Fourth{4}));
  e.erase<First>();  // inline: an overflow entry moves in
  EXPECT_EQ(e.get<First>(), nullptr);
  EXPECT_EQ(e.get<Second>()->value, 2);
  EXPECT_EQ(e.get<Third>()->value, 3);
  EXPECT_EQ(e.get<Fourth>()->value, 4);
  e.erase<Fourth>();
  EXPECT_EQ(e.get<Fourth>(), nullptr);
  EXPECT_EQ(e.get<Third>()->value, 3);
  e.erase<First>();  // not there: nothing happens
  e.erase<Second>();
  e.erase<Third>();
  EXPECT_EQ(e.get<Second>(), nullptr);
  EXPECT_EQ(e.get<Third>(), nullptr);
  e.insert(std::make_shared<Fourth>(Fourth{5}));  // the emptied places are used again
  EXPECT_EQ(e.get<Fourth>()->value, 5);
}

TEST(ExtensionsTest, ACopySharesTheEntriesButErasesOnItsOwn) {
  Request original;
  original.extensions.insert(std::make_shared<First>(First{1}));
  Request copy = original;
  EXPECT_EQ(copy.extensions.get<First>(), original.extensions.get<First>());  // the same object
  copy.extensions.erase<First>();
  EXPECT_EQ(copy.extensions.get<First>(), nullptr);
  ASSERT_NE(original.extensions.get<First>(), nullptr);
}

}  // namespace
}  // namespace errand::http

#include "http/pool.hpp"

#include <memory>
#include <string>

#include <errand/core/clock.hpp>

#include <gtest/gtest.h>

#include <thread>

namespace errand::http {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

// What PoolCore needs of a connection, and a record of what the pool did to it.
class FakeConn {
 public:
  FakeConn(std::string origin, int id, TimePoint created) : origin_(std::move(origin)), id_(id), created_(created), last_used_(created) {}

  bool is_open() const { return open_; }
  void close() {
    open_ = false;
    ++close_calls_;
  }
  TimePoint created_at() const { return created_; }
  TimePoint last_used() const { return last_used_; }
  const std::string& origin() const { return origin_; }

  void touch(TimePoint t) { last_used_ = t; }
  void peer_closed() { open_ = false; }  // closed behind the pool's back, without close()
  int id() const { return id_; }
  int close_calls() const { return close_calls_; }

 private:
  std::string origin_;
  int id_;
  TimePoint created_;
  TimePoint last_used_;
  bool open_ = true;
  int close_calls_ = 0;
};

using Pool = PoolCore<FakeConn>;
using Conn = std::shared_ptr<FakeConn>;

const std::string kA = "http://a.example:80";
const std::string kB = "https://b.example:443";
const std::string kC = "http://c.example:8080";

class PoolCoreTest : public ::testing::Test {
 protected:
  // Opens a connection the way the client does: record it, "connect".
  Conn open(Pool& pool, const std::string& origin) {
    pool.on_opening(origin);
    return std::make_shared<FakeConn>(origin, ++next_id_, clock_.now());
  }

  // Hands a connection back after a request that just finished.
  void give_back(Pool& pool, const Conn& conn, bool reusable = true) {
    conn->touch(clock_.now());
    pool.release(conn, reusable, clock_.now());
  }

  ManualClock clock_;
  int next_id_ = 0;
};

TEST_F(PoolCoreTest, ReusesMostRecentlyReleasedConnectionFirst) {
  Pool pool(PoolLimits{});
  auto c1 = open(pool, kA);
  auto c2 = open(pool, kA);
  auto c3 = open(pool, kA);
  give_back(pool, c1);
  give_back(pool, c3);
  give_back(pool, c2);
  EXPECT_EQ(pool.idle_count(kA), 3u);

  EXPECT_EQ(pool.take_idle(kA, clock_.now()), c2);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), c3);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), c1);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), nullptr);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(kA), 3u) << "taken connections are in use, still open";
  EXPECT_EQ(c1->close_calls() + c2->close_calls() + c3->close_calls(), 0);
}

TEST_F(PoolCoreTest, IdleConnectionsAreKeptPerOrigin) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  auto b = open(pool, kB);
  give_back(pool, a);
  EXPECT_EQ(pool.take_idle(kB, clock_.now()), nullptr);
  EXPECT_EQ(pool.take_idle(kC, clock_.now()), nullptr) << "an origin never seen has no idle connection";
  give_back(pool, b);
  EXPECT_EQ(pool.idle_count(kA), 1u);
  EXPECT_EQ(pool.idle_count(kB), 1u);
  EXPECT_EQ(pool.idle_count(), 2u);
  EXPECT_EQ(pool.take_idle(kB, clock_.now()), b);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a);
}

using Refusal = ConnectionSlots::Refusal;

TEST(ConnectionSlotsTest, PerOriginLimitBlocksOnlyThatOrigin) {
  ConnectionSlots slots(2, 0);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kA), Refusal::per_origin);
  EXPECT_EQ(slots.try_take(kB), Refusal::none);
  EXPECT_EQ(slots.in_use(), 3u);
}

TEST(ConnectionSlotsTest, TotalLimitBlocksEveryOriginUntilASlotIsGivenBack) {
  ConnectionSlots slots(100, 3);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kB), Refusal::none);
  EXPECT_EQ(slots.try_take(kC), Refusal::total);
  EXPECT_EQ(slots.try_take(kA), Refusal::total);
  slots.give_back(kB);
  EXPECT_EQ(slots.try_take(kC), Refusal::none);
}

TEST(ConnectionSlotsTest, PerOriginRefusalIsReportedBeforeTheTotal) {
  ConnectionSlots slots(1, 1);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kA), Refusal::per_origin);
  EXPECT_EQ(slots.try_take(kB), Refusal::total);
}

TEST(ConnectionSlotsTest, ZeroTotalMeansNoTotalLimit) {
  ConnectionSlots slots(1, 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(slots.try_take("http://host" + std::to_string(i) + ":80"), Refusal::none);
  EXPECT_EQ(slots.in_use(), 50u);
}

TEST(ConnectionSlotsTest, GivingBackASlotNeverTakenChangesNothing) {
  ConnectionSlots slots(1, 0);
  slots.give_back(kA);
  EXPECT_EQ(slots.in_use(), 0u);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  slots.give_back(kA);
  slots.give_back(kA);  // one too many
  EXPECT_EQ(slots.in_use(), 0u);
  EXPECT_EQ(slots.try_take(kA), Refusal::none);
  EXPECT_EQ(slots.try_take(kA), Refusal::per_origin);
}

TEST(ConnectionSlotsTest, IsSafeToUseFromSeveralThreads) {
  ConnectionSlots slots(1000000, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        EXPECT_EQ(slots.try_take(kA), Refusal::none);
        slots.give_back(kA);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST_F(PoolCoreTest, IdleConnectionsStillCountAsOpen) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  give_back(pool, a);
  EXPECT_EQ(pool.open_count(kA), 1u);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a);
}

TEST_F(PoolCoreTest, EvictsTheLeastRecentlyUsedIdleConnectionOfAnotherOrigin) {
  Pool pool(PoolLimits{});
  auto b = open(pool, kB);
  auto c = open(pool, kC);
  auto a = open(pool, kA);
  give_back(pool, b);
  clock_.advance(1s);
  give_back(pool, c);
  give_back(pool, a);
  ASSERT_TRUE(pool.evict_lru_idle(kA));
  EXPECT_FALSE(b->is_open()) << "b was idle longest";
  EXPECT_TRUE(c->is_open());
  ASSERT_TRUE(pool.evict_lru_idle(kA));
  EXPECT_FALSE(c->is_open());
  EXPECT_FALSE(pool.evict_lru_idle(kA)) << "only the excepted origin is left";
  EXPECT_TRUE(a->is_open());
}

TEST_F(PoolCoreTest, DropsAreReportedSoSlotsCanBeGivenBack) {
  Pool pool(PoolLimits{});
  std::vector<std::string> dropped;
  pool.on_drop([&](const std::string& origin) { dropped.push_back(origin); });
  auto a = open(pool, kA);
  give_back(pool, a, /*reusable=*/false);
  auto b = open(pool, kB);
  give_back(pool, b);
  pool.close_idle();
  EXPECT_EQ(dropped, (std::vector<std::string>{kA, kB}));
}

TEST_F(PoolCoreTest, OnClosedForgetsAFailedConnection) {
  Pool pool(PoolLimits{});
  pool.on_opening(kA);  // establishing fails...
  EXPECT_EQ(pool.open_count(kA), 1u);
  pool.on_closed(kA);  // ...and it is forgotten
  EXPECT_EQ(pool.open_count(), 0u);
  EXPECT_EQ(pool.opened(), 1u);
  EXPECT_EQ(pool.closed(), 1u);
}

TEST_F(PoolCoreTest, OnClosedNeverUnderflows) {
  Pool pool(PoolLimits{});
  pool.on_closed(kA);  // unknown origin
  auto b = open(pool, kB);
  pool.on_closed(kB);
  pool.on_closed(kB);  // one too many
  EXPECT_EQ(pool.open_count(), 0u);
  EXPECT_EQ(pool.open_count(kB), 0u);
  EXPECT_EQ(pool.closed(), 1u);
}

TEST_F(PoolCoreTest, ReleasingANonReusableConnectionClosesIt) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  give_back(pool, a, /*reusable=*/false);
  EXPECT_EQ(a->close_calls(), 1);
  EXPECT_FALSE(a->is_open());
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(kA), 0u);
  EXPECT_EQ(pool.closed(), 1u);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), nullptr);
}

TEST_F(PoolCoreTest, ReleasingAClosedConnectionDropsItEvenIfCalledReusable) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  a->peer_closed();
  give_back(pool, a, /*reusable=*/true);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(), 0u);
}

TEST_F(PoolCoreTest, ReleasingAConnectionPastItsLifetimeDropsIt) {
  PoolLimits limits;
  limits.max_lifetime = 10min;
  Pool pool(limits);
  auto a = open(pool, kA);
  clock_.advance(10min);
  give_back(pool, a);
  EXPECT_EQ(a->close_calls(), 1);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(), 0u);
}

TEST_F(PoolCoreTest, IdleTimeoutIsMeasuredFromLastUse) {
  PoolLimits limits;
  limits.idle_timeout = 90s;
  Pool pool(limits);
  auto a = open(pool, kA);
  clock_.advance(1h);  // a long request: age does not matter, idleness does
  give_back(pool, a);
  clock_.advance(90s - 1ns);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a);
  EXPECT_EQ(a->close_calls(), 0);
}

TEST_F(PoolCoreTest, TakeIdleClosesAndSkipsConnectionsIdlePastTheTimeout) {
  PoolLimits limits;
  limits.idle_timeout = 90s;
  Pool pool(limits);
  auto old = open(pool, kA);
  auto fresh = open(pool, kA);
  give_back(pool, old);
  clock_.advance(60s);
  give_back(pool, fresh);
  clock_.advance(30s);  // `old` now idle for exactly 90 s, `fresh` for 30 s

  EXPECT_EQ(pool.take_idle(kA, clock_.now()), fresh);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), nullptr);
  EXPECT_EQ(old->close_calls(), 1);
  EXPECT_EQ(fresh->close_calls(), 0);
  EXPECT_EQ(pool.open_count(kA), 1u) << "only `fresh` (in use) remains open";
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.closed(), 1u);
}

TEST_F(PoolCoreTest, MaxLifetimeRetiresEvenABusyConnection) {
  PoolLimits limits;
  limits.idle_timeout = 90s;
  limits.max_lifetime = 5min;
  Pool pool(limits);
  auto a = open(pool, kA);
  for (int i = 0; i < 4; ++i) {  // used every minute: never idle long
    clock_.advance(1min);
    give_back(pool, a);
    ASSERT_EQ(pool.take_idle(kA, clock_.now()), a) << "minute " << i + 1;
  }
  clock_.advance(59s);
  give_back(pool, a);
  clock_.advance(1s);  // 5 min old
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), nullptr);
  EXPECT_EQ(a->close_calls(), 1);
  EXPECT_EQ(pool.open_count(), 0u);
}

TEST_F(PoolCoreTest, ZeroMaxLifetimeMeansUnlimited) {
  PoolLimits limits;
  limits.idle_timeout = 90s;
  limits.max_lifetime = {};
  Pool pool(limits);
  auto a = open(pool, kA);
  clock_.advance(24h * 365);
  give_back(pool, a);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a);
}

TEST_F(PoolCoreTest, TakeIdleSkipsConnectionsThePeerClosed) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  auto b = open(pool, kA);
  give_back(pool, a);
  give_back(pool, b);
  b->peer_closed();
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a);
  EXPECT_EQ(b->close_calls(), 1) << "the pool closes what it drops";
  EXPECT_EQ(pool.open_count(kA), 1u);
  EXPECT_EQ(pool.idle_count(kA), 0u);
  EXPECT_EQ(pool.closed(), 1u);
}

TEST_F(PoolCoreTest, EvictExpiredClosesOnlyExpiredIdleConnectionsAcrossOrigins) {
  PoolLimits limits;
  limits.idle_timeout = 90s;
  Pool pool(limits);
  auto a_old = open(pool, kA);
  auto a_mid = open(pool, kA);
  auto a_new = open(pool, kA);
  auto b_old = open(pool, kB);
  auto c_busy = open(pool, kC);  // in use: never evicted by the sweeper
  give_back(pool, a_old);
  give_back(pool, b_old);
  clock_.advance(50s);
  give_back(pool, a_mid);
  clock_.advance(10s);
  give_back(pool, a_new);
  clock_.advance(40s);  // old: 100 s idle, mid: 50 s, new: 40 s

  EXPECT_EQ(pool.evict_expired(clock_.now()), 2u);
  EXPECT_EQ(a_old->close_calls(), 1);
  EXPECT_EQ(b_old->close_calls(), 1);
  EXPECT_EQ(a_mid->close_calls() + a_new->close_calls() + c_busy->close_calls(), 0);
  EXPECT_EQ(pool.idle_count(), 2u);
  EXPECT_EQ(pool.idle_count(kB), 0u);
  EXPECT_EQ(pool.open_count(), 3u);
  EXPECT_EQ(pool.closed(), 2u);
  // LIFO order survives the sweep.
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a_new);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), a_mid);
}

TEST_F(PoolCoreTest, EvictExpiredRemovesEveryExpiredOneIncludingNeighbours) {
  PoolLimits limits;
  limits.idle_timeout = 10s;
  Pool pool(limits);
  std::vector<Conn> conns;
  for (int i = 0; i < 5; ++i) conns.push_back(open(pool, kA));
  for (auto& c : conns) give_back(pool, c);
  conns[2]->peer_closed();
  clock_.advance(10s);
  EXPECT_EQ(pool.evict_expired(clock_.now()), 5u);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(), 0u);
  for (auto& c : conns) EXPECT_EQ(c->close_calls(), 1) << "conn " << c->id();
}

TEST_F(PoolCoreTest, EvictExpiredWithNothingExpiredChangesNothing) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  give_back(pool, a);
  EXPECT_EQ(pool.evict_expired(clock_.now()), 0u);
  EXPECT_EQ(pool.idle_count(), 1u);
  EXPECT_EQ(pool.closed(), 0u);
}

TEST_F(PoolCoreTest, CloseIdleClosesEveryIdleConnectionButNotThoseInUse) {
  Pool pool(PoolLimits{});
  auto a1 = open(pool, kA);
  auto a2 = open(pool, kA);
  auto b1 = open(pool, kB);
  auto busy = open(pool, kB);
  give_back(pool, a1);
  give_back(pool, a2);
  give_back(pool, b1);
  pool.close_idle();
  EXPECT_EQ(a1->close_calls(), 1);
  EXPECT_EQ(a2->close_calls(), 1);
  EXPECT_EQ(b1->close_calls(), 1);
  EXPECT_EQ(busy->close_calls(), 0);
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(pool.open_count(), 1u);
  EXPECT_EQ(pool.open_count(kB), 1u);
  EXPECT_EQ(pool.closed(), 3u);
  EXPECT_EQ(pool.take_idle(kA, clock_.now()), nullptr);
}

TEST_F(PoolCoreTest, CountsOpenedAndClosedOverALifecycle) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  auto b = open(pool, kA);
  pool.on_opening(kB);  // fails to establish
  pool.on_closed(kB);
  give_back(pool, a);
  give_back(pool, b, /*reusable=*/false);
  EXPECT_EQ(pool.opened(), 3u);
  EXPECT_EQ(pool.closed(), 2u);
  EXPECT_EQ(pool.open_count(), 1u);
  EXPECT_EQ(pool.idle_count(), 1u);
  pool.close_idle();
  EXPECT_EQ(pool.closed(), 3u);
  EXPECT_EQ(pool.opened() - pool.closed(), pool.open_count());
}

TEST_F(PoolCoreTest, ReusedConnectionCanBeReleasedAgain) {
  Pool pool(PoolLimits{});
  auto a = open(pool, kA);
  for (int i = 0; i < 3; ++i) {
    give_back(pool, a);
    clock_.advance(1s);
    ASSERT_EQ(pool.take_idle(kA, clock_.now()), a) << "round " << i;
  }
  EXPECT_EQ(pool.opened(), 1u);
  EXPECT_EQ(pool.closed(), 0u);
  EXPECT_EQ(pool.open_count(), 1u);
}

TEST_F(PoolCoreTest, ExposesItsLimits) {
  PoolLimits limits;
  limits.idle_timeout = 5s;
  limits.max_lifetime = 1h;
  Pool pool(limits);
  EXPECT_EQ(pool.limits().idle_timeout, 5s);
  EXPECT_EQ(pool.limits().max_lifetime, 1h);
}

}  // namespace
}  // namespace errand::http

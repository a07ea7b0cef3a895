// The connection pool's bookkeeping, free of I/O so that unit tests drive it on a ManualClock.
//
// One PoolCore per Runtime worker (a shard): it is touched only by that worker's thread and
// takes no lock. Per origin it keeps idle connections LIFO (the most recently used is the
// warmest: its TCP window is open and the server is least likely to have timed it out),
// counts the connections it knows of, and evicts connections idle longer than idle_timeout or
// older than max_lifetime. The limits on open connections hold across workers and live in
// ConnectionSlots (below); waiting for a free slot and establishing connections are the async
// layer's job (client.cpp).
//
// Conn must provide: bool is_open() const; void close(); TimePoint created_at() const;
// TimePoint last_used() const; const std::string& origin() const.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace errand::http {

struct PoolLimits {
  std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(90);
  std::chrono::steady_clock::duration max_lifetime{};  // 0 = unlimited
};

template <typename Conn>
class PoolCore {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using ConnPtr = std::shared_ptr<Conn>;

  explicit PoolCore(PoolLimits limits) : limits_(limits) {}

  // Called with the origin whenever the pool itself closes a connection (not reusable,
  // expired, evicted), so that an owner keeping its own counts can free the slot too.
  void on_drop(std::function<void(const std::string&)> hook) { on_drop_ = std::move(hook); }

  // The most recently released idle connection to `origin` that is still usable, or null.
  // Expired or closed ones met on the way are closed and forgotten.
  ConnPtr take_idle(const std::string& origin, TimePoint now) {
    auto it = origins_.find(origin);
    if (it == origins_.end()) return nullptr;
    auto& idle = it->second.idle;
    while (!idle.empty()) {
      ConnPtr conn = std::move(idle.back());
      idle.pop_back();
      --idle_total_;
      if (usable(*conn, now)) return conn;
      drop(it->second, *conn);
    }
    return nullptr;
  }

  // Records a connection being opened; undo with on_closed() if establishing fails.
  void on_opening(const std::string& origin) {
    ++origins_[origin].open;
    ++open_total_;
    ++opened_;
  }

  // Hands a connection back after a request. A connection that cannot serve another request
  // (not reusable, closed, expired) is closed and its slot freed.
  void release(ConnPtr conn, bool reusable, TimePoint now) {
    auto& state = origins_[conn->origin()];
    if (!reusable || !usable(*conn, now)) {
      drop(state, *conn);
      return;
    }
    state.idle.push_back(std::move(conn));
    ++idle_total_;
  }

  // Frees the slot of a connection that failed or was closed while in use.
  void on_closed(const std::string& origin) {
    auto it = origins_.find(origin);
    if (it == origins_.end() || it->second.open == 0) return;
    --it->second.open;
    --open_total_;
    ++closed_;
  }

  // Closes idle connections past their idle timeout or lifetime; returns how many.
  std::size_t evict_expired(TimePoint now) {
    std::size_t evicted = 0;
    for (auto& [origin, state] : origins_) {
      auto& idle = state.idle;
      for (std::size_t i = 0; i < idle.size();) {
        if (usable(*idle[i], now)) {
          ++i;
          continue;
        }
        ConnPtr conn = std::move(idle[i]);
        idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(i));
        --idle_total_;
        drop(state, *conn);
        ++evicted;
      }
    }
    return evicted;
  }

  // Closes the least recently used idle connection of an origin other than `except` (to make
  // room under a total limit). Returns false when there is none.
  bool evict_lru_idle(const std::string& except) {
    OriginState* victim_state = nullptr;
    std::size_t victim_index = 0;
    for (auto& [origin, state] : origins_) {
      if (origin == except) continue;
      for (std::size_t i = 0; i < state.idle.size(); ++i) {
        if (!victim_state || state.idle[i]->last_used() < victim_state->idle[victim_index]->last_used()) {
          victim_state = &state;
          victim_index = i;
        }
      }
    }
    if (!victim_state) return false;
    ConnPtr conn = std::move(victim_state->idle[victim_index]);
    victim_state->idle.erase(victim_state->idle.begin() + static_cast<std::ptrdiff_t>(victim_index));
    --idle_total_;
    drop(*victim_state, *conn);
    return true;
  }

  // Closes every idle connection (shutdown).
  void close_idle() {
    for (auto& [origin, state] : origins_) {
      for (auto& conn : state.idle) drop(state, *conn);
      idle_total_ -= state.idle.size();
      state.idle.clear();
    }
  }

  std::size_t open_count() const noexcept { return open_total_; }
  std::size_t idle_count() const noexcept { return idle_total_; }
  std::size_t open_count(const std::string& origin) const {
    auto it = origins_.find(origin);
    return it == origins_.end() ? 0 : it->second.open;
  }
  std::size_t idle_count(const std::string& origin) const {
    auto it = origins_.find(origin);
    return it == origins_.end() ? 0 : it->second.idle.size();
  }
  std::uint64_t opened() const noexcept { return opened_; }
  std::uint64_t closed() const noexcept { return closed_; }
  const PoolLimits& limits() const noexcept { return limits_; }

 private:
  struct OriginState {
    std::vector<ConnPtr> idle;  // back = most recently released
    std::size_t open = 0;       // idle + in use + being established
  };

  bool usable(const Conn& conn, TimePoint now) const {
    if (!conn.is_open()) return false;
    if (now - conn.last_used() >= limits_.idle_timeout) return false;
    if (limits_.max_lifetime.count() > 0 && now - conn.created_at() >= limits_.max_lifetime) return false;
    return true;
  }

  void drop(OriginState& state, Conn& conn) {
    conn.close();
    if (state.open > 0) {
      --state.open;
      --open_total_;
      ++closed_;
    }
    if (on_drop_) on_drop_(conn.origin());
  }

  PoolLimits limits_;
  std::function<void(const std::string&)> on_drop_;
  std::unordered_map<std::string, OriginState> origins_;
  std::size_t open_total_ = 0;
  std::size_t idle_total_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t closed_ = 0;
};

// Open connections per origin and in all, across every worker of a client. Touched only when
// a connection is opened or closed, never per request, so a mutex is cheap enough.
// Thread-safe.
class ConnectionSlots {
 public:
  ConnectionSlots(std::size_t per_origin, std::size_t total) : per_origin_(per_origin), total_(total) {}

  enum class Refusal { none, per_origin, total };

  // Takes a slot for a new connection to `origin`, or says which limit refuses it.
  Refusal try_take(const std::string& origin) {
    std::lock_guard lock(mutex_);
    std::size_t& used = by_origin_[origin];
    if (used >= per_origin_) return Refusal::per_origin;
    if (total_ && in_use_ >= total_) return Refusal::total;
    ++used;
    ++in_use_;
    return Refusal::none;
  }

  // Frees a slot taken for `origin`; a slot never taken is ignored.
  void give_back(const std::string& origin) {
    std::lock_guard lock(mutex_);
    auto it = by_origin_.find(origin);
    if (it == by_origin_.end() || it->second == 0) return;
    if (--it->second == 0) by_origin_.erase(it);
    --in_use_;
  }

  std::size_t in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> by_origin_;
  std::size_t in_use_ = 0;
  const std::size_t per_origin_;
  const std::size_t total_;  // 0 = no limit
};

}  // namespace errand::http

// Stages (http::StageWith): the Client runs rows of them in one coroutine. These tests pin the
// order of begin/end, answers, repeats, suspension, rows around a coroutine layer, and that
// every state a begin() made is destroyed — against the target server.
#include <gtest/gtest.h>

#include <mutex>

#include <boost/asio/this_coro.hpp>

#include <errand/http/client.hpp>

#include "server/target_server.hpp"
#include "support.hpp"

namespace errand::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// What the layers of one test did, in order.
class Log {
 public:
  void add(std::string line) {
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

std::string outcome_text(const Result<Response>& outcome) {
  return outcome ? std::to_string(outcome->status) : std::string(to_string(outcome.error().kind()));
}

// Counts its live states, so that a test can tell none leaked.
struct Counted {
  static inline std::atomic<int> live{0};
  Counted() { ++live; }
  Counted(const Counted&) = delete;
  ~Counted() { --live; }
  int attempts = 0;
};

// Logs its calls. Optionally answers (with `answer_status`), repeats once after `repeat_after`
// when the outcome is `repeat_on`, or suspends and sends twice.
class Recorder final : public StageWith<Counted> {
 public:
  Recorder(std::string name, std::shared_ptr<Log> log) : name_(std::move(name)), log_(std::move(log)) {}
  int answer_status = 0;
  int repeat_on = 0;
  Duration repeat_after{};
  bool suspend = false;

 protected:
  Begin before(Request&, Counted& state, Result<Response>& outcome, Client&, BeginContext) override {
    log_->add(name_ + ".begin");
    ++state.attempts;
    if (answer_status) {
      Response answer;
      answer.status = answer_status;
      outcome = std::move(answer);
      return Begin::answered;
    }
    return suspend ? Begin::suspend : Begin::proceed;
  }
  std::optional<Duration> after(Request&, Counted& state, Result<Response>& outcome, Client&,
                                EndContext context) override {
    log_->add(name_ + ".end " + outcome_text(outcome) + (context.interrupted ? " interrupted" : ""));
    if (repeat_on && outcome && outcome->status == repeat_on && state.attempts == 1 && !context.interrupted)
      return repeat_after;
    return std::nullopt;
  }
  void before_again(Request&, Counted& state, BeginContext) override {
    log_->add(name_ + ".again");
    ++state.attempts;
  }
  asio::awaitable<Result<Response>> run_suspended(Request& request, Counted&, Next next, Client&) override {
    log_->add(name_ + ".suspended");
    auto first = co_await next(request);
    log_->add(name_ + ".first " + outcome_text(first));
    co_return co_await next(request);
  }

 private:
  std::string name_;
  std::shared_ptr<Log> log_;
};

// A coroutine layer between stages; it may also hand the request to a Stage of its own.
class Around final : public Middleware {
 public:
  Around(std::shared_ptr<Log> log, std::shared_ptr<Stage> own = nullptr) : log_(std::move(log)), own_(std::move(own)) {}
  asio::awaitable<Result<Response>> send(Request& request, Next next, Client& client) override {
    log_->add("around.in");
    Result<Response> outcome;  // no co_await inside ?: with GCC 12
    if (own_) outcome = co_await own_->send(request, next, client);
    else outcome = co_await next(request);
    log_->add("around.out " + outcome_text(outcome));
    co_return outcome;
  }

 private:
  std::shared_ptr<Log> log_;
  std::shared_ptr<Stage> own_;
};

class StageTest : public testing::TargetSuite {
 protected:
  void SetUp() override {
    TargetSuite::SetUp();
    Counted::live = 0;
  }
  std::shared_ptr<Recorder> recorder(std::string name) { return std::make_shared<Recorder>(std::move(name), log_); }
  Result<Response> send(std::vector<std::shared_ptr<Middleware>> layers, const std::string& path) {
    ClientOptions o;
    o.runtime = &runtime_;
    o.middleware = std::move(layers);
    Client c(o);
    auto r = Request::make("GET", url(path));
    EXPECT_TRUE(r);
    return testing::run_sync(runtime_, c.send(std::move(*r)));
  }
  using Lines = std::vector<std::string>;

  std::shared_ptr<Log> log_ = std::make_shared<Log>();
  net::Runtime runtime_{{.threads = 1}};
};

TEST_F(StageTest, ARowBeginsOutsideInAndEndsInsideOut) {
  auto r = send({recorder("a"), recorder("b")}, "/status/200");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(log_->lines(), (Lines{"a.begin", "b.begin", "b.end 200", "a.end 200"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

TEST_F(StageTest, AnAnswerSkipsEverythingFurtherInAndItsOwnEnd) {
  auto answering = recorder("b");
  answering->answer_status = 418;
  auto r = send({recorder("a"), answering, recorder("c")}, "/status/200");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 418);
  EXPECT_EQ(log_->lines(), (Lines{"a.begin", "b.begin", "a.end 418"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

TEST_F(StageTest, ARepeatRunsTheStagesFurtherInAgainAfterThePause) {
  auto repeating = recorder("a");
  repeating->repeat_on = 503;
  repeating->repeat_after = 50ms;
  auto began = Clock::now();
  auto r = send({repeating, recorder("b")}, "/status/503");
  auto took = Clock::now() - began;
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(log_->lines(), (Lines{"a.begin", "b.begin", "b.end 503", "a.end 503", "a.again", "b.begin", "b.end 503",
                                  "a.end 503"}));
  EXPECT_GE(took, 50ms);
  EXPECT_EQ(Counted::live.load(), 0);
}

TEST_F(StageTest, RowsMeetAroundACoroutineLayer) {
  auto r = send({recorder("a"), std::make_shared<Around>(log_), recorder("b")}, "/status/204");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(log_->lines(), (Lines{"a.begin", "around.in", "b.begin", "b.end 204", "around.out 204", "a.end 204"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

TEST_F(StageTest, ASuspendedRequestGoesThroughTheStagesCoroutine) {
  auto suspending = recorder("a");
  suspending->suspend = true;
  auto r = send({recorder("o"), suspending, recorder("b")}, "/status/202");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 202);
  // The suspending stage's end() is not called: its coroutine had the whole request.
  EXPECT_EQ(log_->lines(), (Lines{"o.begin", "a.begin", "a.suspended", "b.begin", "b.end 202", "a.first 202",
                                  "b.begin", "b.end 202", "o.end 202"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

TEST_F(StageTest, AStageOutsideTheChainRunsAsARowOfOne) {
  auto r = send({std::make_shared<Around>(log_, recorder("own"))}, "/status/200");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(log_->lines(), (Lines{"around.in", "own.begin", "own.end 200", "around.out 200"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

// The transport leaves Response::url to the row (no copy per attempt): whatever the shape of
// the chain, the response leaves it with the request's URL, or the last hop's after redirects.
TEST_F(StageTest, TheResponseLeavesTheChainWithItsFinalUrl) {
  auto plain = send({recorder("a"), recorder("b")}, "/status/200?x=1");
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_EQ(plain->url.to_string(), url("/status/200?x=1"));

  auto around = send({recorder("a"), std::make_shared<Around>(log_), recorder("b")}, "/status/204");
  ASSERT_TRUE(around) << around.error().describe();
  EXPECT_EQ(around->url.to_string(), url("/status/204"));

  auto repeated = recorder("r");
  repeated->repeat_on = 503;
  repeated->repeat_after = 1ms;
  auto again = send({repeated, recorder("b")}, "/status/503");
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->url.to_string(), url("/status/503"));

  auto redirected = send({recorder("a"), recorder("b")}, "/redirect/2");
  ASSERT_TRUE(redirected) << redirected.error().describe();
  EXPECT_EQ(redirected->redirects, 2);
  EXPECT_EQ(redirected->url.path(), "/ok");
}

TEST_F(StageTest, AFailureReachesEveryStageAsAValue) {
  auto r = send({recorder("a"), recorder("b")}, "/reset");
  ASSERT_FALSE(r);
  EXPECT_EQ(log_->lines(), (Lines{"a.begin", "b.begin", "b.end io", "a.end io"}));
  EXPECT_EQ(Counted::live.load(), 0);
}

// A Stage written against the raw interface that claims more state than a row can hold.
class Oversized final : public Stage {
 public:
  std::size_t state_size() const noexcept override { return max_state + state_alignment; }
  Begin begin(Request&, void*, Result<Response>&, Client&, BeginContext) override { return Begin::proceed; }
  std::optional<Duration> end(Request&, void*, Result<Response>&, Client&, EndContext) override { return std::nullopt; }
  void again(Request&, void*, BeginContext) override {}
  asio::awaitable<Result<Response>> suspended(Request&, void*, Next, Client&) override {
    co_return fail(ErrorKind::config, "unused");
  }
  void destroy(void*) noexcept override {}
};

TEST_F(StageTest, AClientRefusesAStageWhoseStateCannotFit) {
  ClientOptions o;
  o.runtime = &runtime_;
  o.middleware.push_back(std::make_shared<Oversized>());
  EXPECT_THROW(Client{o}, std::invalid_argument);
}

}  // namespace
}  // namespace errand::http

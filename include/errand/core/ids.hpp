// errand/core/ids.hpp — identifiers.
//
// uuid_v7(): RFC 9562 version 7 — 48 bits of Unix milliseconds, then random bits — so ids
// sort by creation time (good for idempotency keys, run ids and journal rows). Random bits
// come from a per-thread generator seeded from std::random_device. Thread-safe.
#pragma once

#include <chrono>
#include <string>

namespace errand {

std::string uuid_v7();
std::string uuid_v7(std::chrono::system_clock::time_point at);  // for tests: a given time

}  // namespace errand

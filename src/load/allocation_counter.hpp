// Counts calls to the global operator new, for `errand bench --engine client` (allocations
// per request of the errand Client). allocation_counter.cpp replaces the global (unaligned)
// operator new and delete with malloc/free and, while counting is on, one relaxed atomic
// increment per allocation; off, the cost is one relaxed load. Replacing delete as well
// keeps new/delete pairs consistent for the sanitizers.
#pragma once

#include <cstdint>

namespace errand::load {

void count_allocations(bool on) noexcept;
std::uint64_t allocations() noexcept;  // since the program started, while counting was on

}  // namespace errand::load

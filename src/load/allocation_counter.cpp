#include "load/allocation_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace errand::load {
namespace {
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> counted{0};

void* allocate(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void* allocate_nothrow(std::size_t size) noexcept {
  if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
}  // namespace

void count_allocations(bool on) noexcept { counting.store(on, std::memory_order_relaxed); }
std::uint64_t allocations() noexcept { return counted.load(std::memory_order_relaxed); }

}  // namespace errand::load

void* operator new(std::size_t size) { return errand::load::allocate(size); }
void* operator new[](std::size_t size) { return errand::load::allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return errand::load::allocate_nothrow(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return errand::load::allocate_nothrow(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

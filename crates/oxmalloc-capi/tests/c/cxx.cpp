// C++ operator new/delete through liboxmalloc (preloaded by tests/cxx.rs):
// every form, sized and aligned, nothrow NULLs, std::bad_alloc, and the
// new_handler loop (a counting handler, a throwing handler, and one that
// frees a reserve so the retry succeeds). Prints one line per failed check
// and "cxx: N checks, M failed"; exits 1 on failure.
#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "check.h"

static int (*is_ours)(const void *);
static bool ours(const void *p) { return is_ours && is_ours(p); }

static volatile size_t v_huge = SIZE_MAX / 2;  // never satisfiable
static volatile size_t v_align24 = 24;

struct alignas(64) Line64 { char bytes[64]; };
struct alignas(4096) Page4k { char bytes[100]; };
struct alignas(1 << 21) Huge2m { char bytes[10]; };

static void plain_forms() {
    for (size_t size : {0ul, 1ul, 8ul, 24ul, 100ul, 1000ul, 5000ul, 70000ul, 1ul << 20, 9ul << 20}) {
        void *p = ::operator new(size);
        CHECK(p != nullptr && ours(p), "operator new(%zu) = %p", size, p);
        CHECK(((uintptr_t)p & 7) == 0, "operator new(%zu) misaligned", size);
        std::memset(p, 0x42, size);
        ::operator delete(p);
        p = ::operator new[](size);
        CHECK(p != nullptr && ours(p), "operator new[](%zu) = %p", size, p);
        ::operator delete[](p);
        p = ::operator new(size);
        ::operator delete(p, size);  // sized
        p = ::operator new[](size);
        ::operator delete[](p, size);
        p = ::operator new(size, std::nothrow);
        CHECK(p != nullptr && ours(p), "operator new(%zu, nothrow)", size);
        ::operator delete(p, std::nothrow);
        p = ::operator new[](size, std::nothrow);
        CHECK(p != nullptr && ours(p), "operator new[](%zu, nothrow)", size);
        ::operator delete[](p, std::nothrow);
    }
    // new(0) is unique
    void *a = ::operator new(0), *b = ::operator new(0);
    CHECK(a != b, "operator new(0) not unique");
    ::operator delete(a);
    ::operator delete(b);
}

static void aligned_forms() {
    for (size_t align : {16ul, 32ul, 64ul, 256ul, 4096ul, 65536ul, 1ul << 21, 1ul << 24}) {
        for (size_t size : {1ul, 64ul, 1000ul, 100000ul, 3ul << 20}) {
            std::align_val_t al{align};
            void *p = ::operator new(size, al);
            CHECK(p != nullptr && ((uintptr_t)p & (align - 1)) == 0 && ours(p), "new(%zu, align %zu) = %p", size, align, p);
            std::memset(p, 1, size);
            ::operator delete(p, al);
            p = ::operator new[](size, al);
            CHECK(((uintptr_t)p & (align - 1)) == 0, "new[](%zu, align %zu) = %p", size, align, p);
            ::operator delete[](p, size, al);
            p = ::operator new(size, al, std::nothrow);
            CHECK(p != nullptr && ((uintptr_t)p & (align - 1)) == 0, "new(%zu, align %zu, nothrow) = %p", size, align, p);
            ::operator delete(p, size, al);
            p = ::operator new[](size, al, std::nothrow);
            CHECK(p != nullptr && ((uintptr_t)p & (align - 1)) == 0, "new[](%zu, align %zu, nothrow)", size, align);
            ::operator delete[](p, al, std::nothrow);
            p = ::operator new(size, al);
            ::operator delete(p, al, std::nothrow);
        }
    }
    // Over-aligned types go through the aligned forms by themselves.
    auto *l = new Line64[10];
    CHECK(((uintptr_t)l & 63) == 0 && ours(l), "new Line64[10] = %p", (void *)l);
    delete[] l;
    auto *pg = new Page4k;
    CHECK(((uintptr_t)pg & 4095) == 0, "new Page4k = %p", (void *)pg);
    delete pg;
    auto *h = new Huge2m;
    CHECK(((uintptr_t)h & ((1 << 21) - 1)) == 0, "new Huge2m = %p", (void *)h);
    delete h;
    std::vector<Line64> v(1000);
    CHECK(((uintptr_t)v.data() & 63) == 0, "vector<Line64> data misaligned");
}

static void failures_throw_or_null() {
    // nothrow: NULL.
    void *p = ::operator new(v_huge, std::nothrow);
    CHECK(p == nullptr, "new(huge, nothrow) = %p", p);
    p = ::operator new[](v_huge, std::nothrow);
    CHECK(p == nullptr, "new[](huge, nothrow) = %p", p);
    p = ::operator new(v_huge, std::align_val_t{64}, std::nothrow);
    CHECK(p == nullptr, "new(huge, 64, nothrow) = %p", p);
    p = ::operator new(64, std::align_val_t{v_align24}, std::nothrow);
    CHECK(p == nullptr, "new(64, align 24, nothrow) = %p", p);

    // throwing: std::bad_alloc.
    int caught = 0;
    try { p = ::operator new(v_huge); } catch (const std::bad_alloc &) { caught++; }
    try { p = ::operator new[](v_huge); } catch (const std::bad_alloc &) { caught++; }
    try { p = ::operator new(v_huge, std::align_val_t{128}); } catch (const std::bad_alloc &) { caught++; }
    try { p = ::operator new[](v_huge, std::align_val_t{1 << 22}); } catch (const std::bad_alloc &) { caught++; }
    try { p = ::operator new(64, std::align_val_t{v_align24}); } catch (const std::bad_alloc &) { caught++; }
    try {
        std::vector<char> big;
        big.reserve(v_huge);
    } catch (const std::bad_alloc &) { caught++; }
    CHECK(caught == 6, "caught %d of 6 std::bad_alloc", caught);
    // The allocator still works after the throws.
    auto s = std::make_unique<std::string>(1000, 'x');
    CHECK(s->size() == 1000 && ours(s.get()), "allocation after bad_alloc");
}

static int handler_calls;
static void counting_handler() {
    if (++handler_calls == 3) std::set_new_handler(nullptr);
}
struct HandlerError {};
static void throwing_handler() { throw HandlerError{}; }

static std::vector<void *> reserve;
static void releasing_handler() {
    handler_calls++;
    if (reserve.empty()) {
        std::set_new_handler(nullptr);
        return;
    }
    for (void *r : reserve) std::free(r);
    reserve.clear();
    // Give the freed memory back so it counts against OXMALLOC_LIMIT no more.
    malloc_trim(0);
}

static void new_handlers() {
    handler_calls = 0;
    std::set_new_handler(counting_handler);
    bool caught = false;
    try { ::operator new(v_huge); } catch (const std::bad_alloc &) { caught = true; }
    CHECK(caught && handler_calls == 3, "counting handler: caught %d, calls %d (want 3)", caught, handler_calls);

    handler_calls = 0;
    std::set_new_handler(counting_handler);
    caught = false;
    try { ::operator new(v_huge, std::align_val_t{256}); } catch (const std::bad_alloc &) { caught = true; }
    CHECK(caught && handler_calls == 3, "aligned, counting handler: caught %d, calls %d", caught, handler_calls);

    std::set_new_handler(throwing_handler);
    bool custom = false;
    try { ::operator new[](v_huge); } catch (const HandlerError &) { custom = true; }
    CHECK(custom, "the handler's own exception did not reach the caller");
    // nothrow forms do not call the handler (it could throw through them).
    void *p = ::operator new(v_huge, std::nothrow);
    CHECK(p == nullptr, "nothrow with a throwing handler");
    std::set_new_handler(nullptr);

    // A handler that frees memory makes the retry succeed (needs a mapping
    // limit: OXMALLOC_LIMIT, set by the test runner).
    if (std::getenv("OXMALLOC_LIMIT") != nullptr) {
        size_t chunk = 32u << 20;
        for (;;) {
            void *r = std::malloc(chunk);
            if (r == nullptr) break;
            std::memset(r, 1, 4096);
            reserve.push_back(r);
            if (reserve.size() > 64) break;
        }
        CHECK(!reserve.empty() && reserve.size() <= 64, "filling up to OXMALLOC_LIMIT: %zu blocks", reserve.size());
        handler_calls = 0;
        std::set_new_handler(releasing_handler);
        void *big = nullptr;
        try { big = ::operator new(chunk * 2); } catch (const std::bad_alloc &) {}
        CHECK(big != nullptr && handler_calls == 1, "releasing handler: %p after %d calls", big, handler_calls);
        ::operator delete(big);
        std::set_new_handler(nullptr);
        for (void *r : reserve) std::free(r);
        reserve.clear();
    }
}

static void containers_and_threads() {
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([t, &total] {
            std::map<int, std::string> m;
            std::unordered_map<std::string, std::vector<int>> u;
            for (int i = 0; i < 20000; i++) {
                m[i] = std::to_string(i * (t + 1));
                u[std::to_string(i)].push_back(i);
                if (i % 3 == 0) m.erase(i / 2);
            }
            long sum = 0;
            for (auto &kv : m) sum += (long)kv.second.size();
            for (auto &kv : u) sum += (long)kv.second.size();
            total += sum;
        });
    }
    for (auto &th : threads) th.join();
    CHECK(total.load() > 0, "threads computed nothing");
    // Objects made on one thread, deleted on another.
    std::vector<std::string *> made;
    std::thread maker([&] {
        for (int i = 0; i < 10000; i++) made.push_back(new std::string(std::to_string(i) + std::string(40, 'y')));
    });
    maker.join();
    std::thread deleter([&] {
        for (auto *s : made) delete s;
    });
    deleter.join();
    std::printf("containers: %ld\n", total.load());
}

int main() {
    is_ours = reinterpret_cast<int (*)(const void *)>(dlsym(RTLD_DEFAULT, "ox_is_ours"));
    CHECK(is_ours != nullptr, "ox_is_ours not found: liboxmalloc is not loaded");
    plain_forms();
    aligned_forms();
    failures_throw_or_null();
    new_handlers();
    containers_and_threads();
    std::printf("cxx: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

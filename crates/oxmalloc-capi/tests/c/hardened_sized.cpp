/*
 * C++ sized delete with the wrong size (CHECKLIST B21).
 *
 *   hardened_sized SIZE
 *
 * Prints "ptr 0x..." then calls ::operator delete(p, SIZE + 8) on a block
 * from ::operator new(SIZE). The hardened library must abort with
 * "size mismatch on free of 0x... (size mismatch: given SIZE+8, actual SIZE)".
 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static char stdout_buffer[4096];

int main(int argc, char **argv) {
    std::setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
    std::size_t size = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 64;
    void *p = ::operator new(size);
    std::memset(p, 1, size);
    std::printf("ptr 0x%lx\n", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(p)));
    std::fflush(stdout);
    ::operator delete(p, size + 8);
    std::printf("survived\n");
    return 0;
}

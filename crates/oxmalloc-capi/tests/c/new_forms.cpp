/*
 * Every replaceable global operator new/delete, called once each: the
 * exports test compiles this (without linking) and reads the undefined
 * symbols of the object, so that its list of mangled names is the
 * compiler's, not one typed by hand.
 */
#include <cstddef>
#include <new>

void all_forms() {
    const std::nothrow_t &nt = std::nothrow;
    const std::align_val_t al{64};
    void *p;
    p = ::operator new(8);
    ::operator delete(p);
    p = ::operator new(8);
    ::operator delete(p, std::size_t{8});
    p = ::operator new(8, nt);
    ::operator delete(p, nt);
    p = ::operator new(64, al);
    ::operator delete(p, al);
    p = ::operator new(64, al);
    ::operator delete(p, std::size_t{64}, al);
    p = ::operator new(64, al, nt);
    ::operator delete(p, al, nt);
    p = ::operator new[](8);
    ::operator delete[](p);
    p = ::operator new[](8);
    ::operator delete[](p, std::size_t{8});
    p = ::operator new[](8, nt);
    ::operator delete[](p, nt);
    p = ::operator new[](64, al);
    ::operator delete[](p, al);
    p = ::operator new[](64, al);
    ::operator delete[](p, std::size_t{64}, al);
    p = ::operator new[](64, al, nt);
    ::operator delete[](p, al, nt);
}

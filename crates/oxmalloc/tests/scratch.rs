#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

fn run(tag: usize) {
    let mut v = Vec::new();
    for i in 0..100000usize {
        let size = i % 2000 + 1;
        let p = oxmalloc::raw::malloc(size);
        if p.is_null() {
            oxmalloc::print_stats();
            panic!("thread {tag}: null at i={i} size={size}");
            std::process::abort();
        }
        unsafe { std::ptr::write_bytes(p, 1, size) };
        v.push(p as usize);
    }
}

#[test]
fn many_sizes_no_free() {
    run(0);
    let t: Vec<_> = (1..5).map(|i| std::thread::spawn(move || run(i))).collect();
    for t in t {
        t.join().unwrap();
    }
}

//! The allocator gives back what a thread cached: after a load peak, the small chunks glibc keeps
//! per thread (outside the heap's free lists) go back to the heap, where a trim can return their
//! pages. Alone in its own test binary, so no other test allocates while the heap is counted.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use hotline::memory::{
    release_thread_cache, thread_cache_request, THREAD_CACHE_DEPTH, THREAD_CACHE_SIZES,
};

/// Bytes the heap counts as in use (chunks in a thread's cache count as in use).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's own counters.
    unsafe { libc::mallinfo2() }.uordblks
}

#[test]
fn chunks_a_thread_freed_into_its_cache_go_back_to_the_heap() {
    let before = heap_in_use();
    // Each cached size, as deep as the cache: ~240 kB.
    let chunks: Vec<usize> = (0..THREAD_CACHE_SIZES)
        .flat_map(|class| (0..THREAD_CACHE_DEPTH).map(move |_| thread_cache_request(class)))
        // SAFETY: a plain allocation, freed just below.
        .map(|size| unsafe { libc::malloc(size) } as usize)
        .collect();
    assert!(chunks.iter().all(|&chunk| chunk != 0));
    for chunk in chunks {
        // SAFETY: each pointer came from malloc above and is freed once.
        unsafe { libc::free(chunk as *mut libc::c_void) };
    }
    let cached = heap_in_use().saturating_sub(before);
    assert!(
        cached > 200_000,
        "freed chunks should sit in the thread's cache, counted in use: {cached} bytes"
    );

    release_thread_cache();

    let left = heap_in_use().saturating_sub(before);
    assert!(
        left < cached / 10,
        "{left} of the {cached} cached bytes are still held after the release"
    );
}

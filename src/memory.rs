//! Giving memory back after a load peak, so a day's busy hour does not leave the process at its
//! peak size: sparse tables shrink, and the allocator returns its free pages to the OS.

use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// Tables smaller than this are left alone: shrinking them saves nothing.
const SMALL_TABLE: usize = 64;

/// Shrinks `map` when it is using less than a quarter of its capacity.
pub fn shrink_sparse<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > SMALL_TABLE && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// Shrinks `vec` when it is using less than a quarter of its capacity.
pub fn shrink_sparse_vec<T>(vec: &mut Vec<T>) {
    if vec.capacity() > SMALL_TABLE && vec.len() * 4 < vec.capacity() {
        vec.shrink_to(vec.len() * 2);
    }
}

/// Shrinks `heap` when it is using less than a quarter of its capacity.
pub fn shrink_sparse_heap<T: Ord>(heap: &mut BinaryHeap<T>) {
    if heap.capacity() > SMALL_TABLE && heap.len() * 4 < heap.capacity() {
        heap.shrink_to(heap.len() * 2);
    }
}

/// Fixes the allocator's thresholds at their defaults (128 kB), before any thread starts.
///
/// glibc raises both thresholds each time a large block is freed (up to 32 MB and 64 MB), so
/// after a busy hour's big tables are freed, the free space at the top of a thread's arena is
/// never handed back (neither on free nor by `malloc_trim`, which trims only the main arena's
/// top): ~1 MB per media worker stayed resident. Fixed thresholds keep big tables in their own
/// mappings, unmapped when freed, and keep the arenas trimmed.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: i32 = 128 * 1024;
        // SAFETY: mallopt only sets the allocator's own parameters; called before other threads.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
        }
    }
}

/// Returns free heap pages to the OS (glibc keeps them otherwise; elsewhere a no-op).
pub fn release_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
        // from us and is safe to call from any thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// How many of glibc's smallest chunk sizes each thread caches (up to 1,032 bytes).
pub const THREAD_CACHE_SIZES: usize = 64;

/// How many freed chunks of each size a thread's cache holds.
pub const THREAD_CACHE_DEPTH: usize = 7;

/// The request that fills cached chunk size `size_class` exactly (chunks are 32 + 16·n bytes).
pub const fn thread_cache_request(size_class: usize) -> usize {
    24 + 16 * size_class
}

/// Empties this thread's cache of freed chunks into the heap, where a trim can give their
/// pages back (elsewhere a no-op).
///
/// glibc keeps up to `THREAD_CACHE_DEPTH` freed chunks of each of its `THREAD_CACHE_SIZES`
/// smallest sizes per thread, outside the heap's free lists. After a load peak they lie
/// scattered over the peak's pages, each keeping its page resident: ~1.4 MB in the SIP thread
/// after 20,000 calls. They are taken out here (twice the cache's depth, as taking one can
/// refill the cache from the heap's list of that size) and freed by a short-lived thread, whose
/// own cache goes back to the heap when it exits.
pub fn release_thread_cache() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const TAKEN_PER_SIZE: usize = 2 * THREAD_CACHE_DEPTH;
        let mut taken = Vec::with_capacity(THREAD_CACHE_SIZES * TAKEN_PER_SIZE);
        for size_class in 0..THREAD_CACHE_SIZES {
            let request = thread_cache_request(size_class);
            for _ in 0..TAKEN_PER_SIZE {
                // SAFETY: a plain allocation; every non-null pointer is freed below.
                let chunk = unsafe { libc::malloc(request) };
                if !chunk.is_null() {
                    taken.push(chunk as usize);
                }
            }
        }
        let free_all = |chunks: &[usize]| {
            for &chunk in chunks {
                // SAFETY: each was returned by malloc above and is freed exactly once.
                unsafe { libc::free(chunk as *mut libc::c_void) };
            }
        };
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("memory-release".to_owned())
                .spawn_scoped(scope, || free_all(&taken));
            match helper {
                // Joined, not just waited for: its cache is emptied as the thread exits.
                Ok(helper) => {
                    let _ = helper.join();
                }
                // No thread: freeing here puts them back in this thread's cache; nothing lost.
                Err(_) => free_all(&taken),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_maps_shrink_and_full_ones_do_not() {
        let mut map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let full = map.capacity();
        shrink_sparse(&mut map);
        assert_eq!(map.capacity(), full);
        map.retain(|k, _| *k < 100);
        shrink_sparse(&mut map);
        assert!(map.capacity() < full / 10);
        assert_eq!(map.len(), 100);
    }

    #[test]
    fn a_sparse_vec_shrinks_and_keeps_its_items() {
        let mut vec: Vec<u32> = (0..10_000).collect();
        shrink_sparse_vec(&mut vec);
        assert!(vec.capacity() >= 10_000);
        vec.truncate(100);
        shrink_sparse_vec(&mut vec);
        assert!(vec.capacity() < 1_000);
        assert_eq!(vec, (0..100).collect::<Vec<u32>>());
    }
}

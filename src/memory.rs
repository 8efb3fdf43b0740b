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

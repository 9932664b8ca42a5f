//! With glibc's thresholds pinned, free space at the top of a thread's
//! arena goes back to the system as soon as it is freed, even after a large
//! block was freed (which, left alone, makes glibc raise its trim threshold
//! to twice the block's size and keep that much at every arena's top).
//! A test binary of its own: the thresholds are the whole process's.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

/// Resident pages of this process, in bytes. Read without touching the
/// heap: a block allocated above the burst would keep it from the top.
fn resident() -> usize {
    use std::io::Read;
    let mut buf = [0u8; 256];
    let mut file = std::fs::File::open("/proc/self/statm").expect("statm");
    let n = file.read(&mut buf).expect("statm read");
    let text = std::str::from_utf8(&buf[..n]).expect("statm text");
    let pages: usize = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[test]
fn a_burst_freed_at_an_arena_s_top_is_handed_back() {
    assert!(mongars_metrics::pin_heap_thresholds(32 << 20, 128 << 10));
    // A thread of its own, so its blocks come from an arena other than the
    // first (whose top `malloc_trim` would give back anyway).
    std::thread::spawn(|| {
        // A 24 MiB block freed, as the models' load buffers are at
        // start-up. Under glibc's moving thresholds it would be mapped on
        // its own and its free would raise the trim threshold to 48 MiB;
        // pinned, it comes from the arena and its free trims the top.
        let big = vec![1u8; 24 << 20];
        assert_eq!(big[big.len() - 1], 1);
        drop(big);
        // A burst: 20 MiB in 64 KiB blocks, written so they are resident.
        let burst: Vec<Vec<u8>> = (0..320).map(|i| vec![i as u8 | 1; 64 << 10]).collect();
        assert!(burst.iter().all(|b| b[100] != 0));
        let during = resident();
        drop(burst);
        let after = resident();
        assert!(
            during - after.min(during) >= 16 << 20,
            "resident {during} during the burst, {after} after it: the arena kept its top"
        );
    })
    .join()
    .expect("the burst's thread");
}

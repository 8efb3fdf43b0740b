//! Deleting call recordings older than the retention period (`[records] recording_retention_days`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

/// Deletes `*.wav` files under `dir` (one level of date folders) last modified before
/// `now - keep`, and date folders left empty; returns how many files went.
pub fn sweep(dir: &Path, keep: Duration, now: SystemTime) -> usize {
    let Some(cutoff) = now.checked_sub(keep) else {
        return 0;
    };
    let Ok(days) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for day in days.flatten() {
        let day = day.path();
        if !day.is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&day) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            let is_wav = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("wav"));
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if is_wav && old {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(error) => {
                        warn!(%error, file = %path.display(), "cannot delete an old recording")
                    }
                }
            }
        }
        // Only succeeds when the folder is empty.
        let _ = std::fs::remove_dir(&day);
    }
    if removed > 0 {
        info!(removed, dir = %dir.display(), "old recordings deleted");
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn only_recordings_older_than_the_period_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let old_day = dir.path().join("2026-01-01");
        let new_day = dir.path().join("2026-11-30");
        std::fs::create_dir_all(&old_day).expect("dir");
        std::fs::create_dir_all(&new_day).expect("dir");
        let write = |path: &Path, age: Duration| {
            let file = std::fs::File::create(path).expect("file");
            file.set_modified(now - age).expect("mtime");
        };
        write(&old_day.join("a.wav"), 100 * DAY);
        write(&new_day.join("b.wav"), DAY);
        write(&new_day.join("notes.txt"), 100 * DAY);
        assert_eq!(sweep(dir.path(), 90 * DAY, now), 1);
        assert!(!old_day.exists(), "an emptied date folder goes too");
        assert!(new_day.join("b.wav").exists());
        assert!(
            new_day.join("notes.txt").exists(),
            "only recordings are touched"
        );
        assert_eq!(sweep(&dir.path().join("missing"), DAY, now), 0);
    }
}

use std::process::Command;

use super::*;

#[test]
fn sees_a_process_tree_and_its_usage() {
    // sh -> sleep: a tree of two under this test process.
    let mut child = Command::new("sh").args(["-c", "sleep 5 & wait"]).spawn().unwrap();
    let root = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while descendants(root).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let below = descendants(root);
    assert_eq!(below.len(), 1, "{below:?}");
    let usage = ProcessTable::snapshot().tree_usage(root);
    assert_eq!(usage.processes, 2);
    assert!(usage.rss_bytes > 0);
    assert!(alive(root));
    let _ = kill(Pid::from_raw(below[0] as i32), Signal::SIGKILL);
    let _ = child.wait();
    assert!(!alive(root));
}

#[test]
fn power_off_kills_the_whole_tree_not_just_its_root() {
    // sh -> sh -> sleep, standing for a shim, its program and what the program started.
    let mut child =
        Command::new("sh").args(["-c", "sh -c 'sleep 30 & wait' & wait"]).spawn().unwrap();
    let root = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while descendants(root).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let below = descendants(root);
    assert_eq!(below.len(), 2, "{below:?}");
    power_off(root);
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while below.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left: Vec<&u32> = below.iter().filter(|p| alive(**p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

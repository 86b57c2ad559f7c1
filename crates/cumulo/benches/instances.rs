//! Launch N demo-app instances (default 200) through one stack, then measure: the launch rate
//! (CreateStack to CREATE_COMPLETE), that every app answers, and the memory Cumulo itself
//! uses per instance (the region's growth plus each instance's supervisor process).
//!
//!     cargo bench -p cumulo --bench instances [-- N]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size: shared pages divided among the processes sharing them.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn get(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let (host, path) =
        rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let Ok(mut s) = std::net::TcpStream::connect(host) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let exe = env!("CARGO_BIN_EXE_cumulo");
    let dir = tempfile::tempdir().unwrap();
    let mut template = String::from("Resources:\n");
    for i in 0..n {
        template.push_str(&format!(
            "  App{i}:\n    Type: AWS::EC2::Instance\n    Properties:\n      ImageId: ami-12345678\n      AvailabilityZone: us-east-1{}\n      UserData: {{\"Fn::Base64\": \"#!/bin/sh\\nexec cumulo demo-app\\n\"}}\n",
            ["a", "b", "c"][i % 3]
        ));
    }
    std::fs::write(dir.path().join("many.yaml"), template).unwrap();
    let mut server = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--ephemeral"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let endpoint = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(i) = line.find("http://") {
            break line[i..].split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.id());
    let start = Instant::now();
    let status = Command::new(exe)
        .args(["deploy", "many.yaml", "--endpoint-url", &endpoint])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let launched = start.elapsed();
    assert!(status.success(), "deploy failed");
    let list: Vec<serde_json::Value> = serde_json::from_str(
        get(&format!("{endpoint}/_cumulo/instances")).split_once("\r\n\r\n").unwrap().1,
    )
    .unwrap();
    assert_eq!(list.len(), n);
    // Every app answers (they start in the background once the instance is running).
    let answered_at = Instant::now();
    let mut pending: Vec<&serde_json::Value> = list.iter().collect();
    while !pending.is_empty() && answered_at.elapsed() < Duration::from_secs(120) {
        pending.retain(|i| {
            !get(&format!("http://127.0.0.1:{}/", i["ports"][0]["host"])).contains("Hello from")
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let all_answering = start.elapsed();
    if !pending.is_empty() {
        for i in pending.iter().take(3) {
            eprintln!("not answering: {i}");
            let out = Command::new(exe)
                .args(["logs", i["instanceId"].as_str().unwrap(), "--endpoint-url", &endpoint])
                .output()
                .unwrap();
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
        let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
        let _ = server.wait();
        panic!("{} apps never answered", pending.len());
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(server.id());
    let shims: Vec<u64> =
        list.iter().filter_map(|i| i["machinePid"].as_u64()).map(|p| pss_kib(p as u32)).collect();
    let apps: Vec<u64> =
        list.iter().filter_map(|i| i["appPid"].as_u64()).map(|p| pss_kib(p as u32)).collect();
    let shim_avg = shims.iter().sum::<u64>() as f64 / shims.len().max(1) as f64;
    let app_avg = apps.iter().sum::<u64>() as f64 / apps.len().max(1) as f64;
    println!("{n} demo-app instances (AWS::EC2::Instance, one stack), 2-core machine:");
    println!(
        "  CreateStack -> CREATE_COMPLETE (all running): {:.2} s  ({:.0} instances/s)",
        launched.as_secs_f64(),
        n as f64 / launched.as_secs_f64()
    );
    println!(
        "  ... and every app answering HTTP:             {:.2} s",
        all_answering.as_secs_f64()
    );
    println!(
        "  region process RSS: {} MiB before, {} MiB after: {:.0} KiB per instance",
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / n as f64
    );
    println!("  supervisor (shim) PSS per instance: {shim_avg:.0} KiB");
    println!("  demo app PSS per instance: {app_avg:.0} KiB (the workload, not Cumulo)");
    let start = Instant::now();
    let status = Command::new(exe)
        .args(["delete", "many", "--endpoint-url", &endpoint])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    println!(
        "  DeleteStack -> DELETE_COMPLETE (all terminated): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
}

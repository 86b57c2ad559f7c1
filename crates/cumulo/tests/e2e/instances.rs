//! Instances that really run: UserData starts the demo app, each instance answers with its own
//! id and zone and reaches only its own metadata; CreationPolicy signals; a missing signal
//! rolls back; bad UserData; cfn-init; no process outlives Cumulo; a restart boots instances
//! again.

use std::time::Duration;

use crate::support::{Running, alive, eventually, http, instances, run};

const TWO_ZONES: &str = r##"
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: !Select [0, !GetAZs ""]}
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24, AvailabilityZone: !Select [1, !GetAZs ""]}
  Web:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: web
      VpcId: !Ref Vpc
      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 80, ToPort: 80, CidrIp: 0.0.0.0/0}]
  A:
    Type: AWS::EC2::Instance
    CreationPolicy: {ResourceSignal: {Timeout: PT5M}}
    Properties:
      ImageId: ami-12345678
      SubnetId: !Ref SubnetA
      SecurityGroupIds: [!Ref Web]
      UserData:
        Fn::Base64: !Sub |
          #!/bin/bash
          cfn-signal -e 0 --stack ${AWS::StackName} --resource A
          exec cumulo demo-app --port 80
  B:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      SubnetId: !Ref SubnetB
      SecurityGroupIds: [!Ref Web]
      UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80\n"}
Outputs:
  A: {Value: !Ref A}
  B: {Value: !Ref B}
"##;

fn serve(dir: &std::path::Path, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--data-dir") {
        args.push("--ephemeral");
    }
    let mut server = Running::start(&args, dir);
    let endpoint = server.endpoint();
    (server, endpoint)
}

fn port_of(instance: &serde_json::Value) -> u64 {
    instance["ports"][0]["host"].as_u64().expect("a port")
}

#[test]
fn two_instances_in_two_zones_answer_with_their_own_metadata() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("two.yaml"), TWO_ZONES).unwrap();
    let (mut server, endpoint) = serve(dir.path(), &[]);
    let (ok, out, err) = run(&["deploy", "two.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Received SUCCESS signal with UniqueId i-"),
        "the CreationPolicy signal shows as an event: {out}"
    );
    let list = instances(&endpoint);
    assert_eq!(list.len(), 2);
    let mut zones = Vec::new();
    for i in &list {
        let id = i["instanceId"].as_str().unwrap();
        let zone = i["zone"].as_str().unwrap();
        zones.push(zone.to_string());
        // The app answers on the instance's own port, naming its instance and zone.
        let (status, body) = http("GET", &format!("http://127.0.0.1:{}/", port_of(i)), &[]);
        assert_eq!(status, 200);
        assert!(body.contains(id) && body.contains(zone), "{body}");
        // Its metadata service, v2 (token) and v1, gives its own id and zone.
        let imds = format!("http://127.0.0.1:{}", i["imdsPort"]);
        let (status, token) = http(
            "PUT",
            &format!("{imds}/latest/api/token"),
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        );
        assert_eq!(status, 200);
        let (_, got) = http(
            "GET",
            &format!("{imds}/latest/meta-data/instance-id"),
            &[("X-aws-ec2-metadata-token", &token)],
        );
        assert_eq!(got, id);
        let (_, got) =
            http("GET", &format!("{imds}/latest/meta-data/placement/availability-zone"), &[]);
        assert_eq!(got, zone);
        let (status, _) = http(
            "GET",
            &format!("{imds}/latest/meta-data/instance-id"),
            &[("X-aws-ec2-metadata-token", "forged")],
        );
        assert_eq!(status, 401);
        let (status, _) = http("PUT", &format!("{imds}/latest/api/token"), &[]);
        assert_eq!(status, 400, "a token needs a TTL");
        let (_, doc) =
            http("GET", &format!("{imds}/latest/dynamic/instance-identity/document"), &[]);
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            (doc["instanceId"].as_str(), doc["availabilityZone"].as_str()),
            (Some(id), Some(zone))
        );
    }
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    // The EC2 API sees them too.
    let (ok, out, _) = run(&["instances", "--endpoint-url", &endpoint], dir.path());
    assert!(
        ok && out.contains("running") && out.contains("10.0.1.4") && out.contains("10.0.2.4"),
        "{out}"
    );
    // Deleting the stack terminates them and their processes.
    let pids: Vec<u64> = list.iter().filter_map(|i| i["appPid"].as_u64()).collect();
    assert_eq!(pids.len(), 2);
    let (ok, out, err) = run(&["delete", "two", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    assert!(instances(&endpoint).iter().all(|i| i["state"] == "terminated"));
    eventually("the apps to exit", Duration::from_secs(10), || pids.iter().all(|p| !alive(*p)));
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn missing_signal_times_out_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let template = "Resources:\n  Quiet:\n    Type: AWS::EC2::Instance\n    CreationPolicy: {ResourceSignal: {Timeout: PT2M}}\n    Properties:\n      ImageId: ami-12345678\n      UserData: {\"Fn::Base64\": \"#!/bin/bash\\nexec sleep 600\\n\"}\n";
    std::fs::write(dir.path().join("quiet.yaml"), template).unwrap();
    // Two minutes of AWS time at 120x: a second.
    let (mut server, endpoint) = serve(dir.path(), &["--time-scale", "120"]);
    let (ok, out, err) = run(&["deploy", "quiet.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("Failed to receive 1 resource signal(s) within the specified duration"),
        "{out}"
    );
    assert!(err.contains("ROLLBACK_COMPLETE"), "{err}");
    assert!(instances(&endpoint).iter().all(|i| i["state"] == "terminated"));
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn bad_user_data_shows_in_the_console_and_the_instance_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let template = "Resources:\n  Broken:\n    Type: AWS::EC2::Instance\n    Properties:\n      ImageId: ami-12345678\n      UserData: {\"Fn::Base64\": \"#!/bin/bash\\necho installing the app\\necho 'no such package: flask' >&2\\nexit 1\\n\"}\n";
    std::fs::write(dir.path().join("broken.yaml"), template).unwrap();
    let (mut server, endpoint) = serve(dir.path(), &[]);
    let (ok, out, err) = run(&["deploy", "broken.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "as on AWS, a failing script does not fail the instance: {out}{err}");
    let id = instances(&endpoint)[0]["instanceId"].as_str().unwrap().to_string();
    let mut console = String::new();
    eventually("the script to fail", Duration::from_secs(10), || {
        console = run(&["logs", &id, "--endpoint-url", &endpoint], dir.path()).1;
        console.contains("exited with status 1")
    });
    assert!(
        console.contains("installing the app") && console.contains("no such package: flask"),
        "{console}"
    );
    assert_eq!(instances(&endpoint)[0]["state"], "running");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn no_instance_process_outlives_a_killed_cumulo() {
    let dir = tempfile::tempdir().unwrap();
    // A UserData that leaves a daemonized grandchild behind (setsid + double fork).
    let template = "Resources:\n  Daemon:\n    Type: AWS::EC2::Instance\n    Properties:\n      ImageId: ami-12345678\n      UserData: {\"Fn::Base64\": \"#!/bin/bash\\nsetsid sh -c 'sleep 600 & echo $! > daemon.pid' &\\nexec cumulo demo-app\\n\"}\n";
    std::fs::write(dir.path().join("two.yaml"), TWO_ZONES).unwrap();
    std::fs::write(dir.path().join("daemon.yaml"), template).unwrap();
    let (mut server, endpoint) = serve(dir.path(), &[]);
    for t in ["two.yaml", "daemon.yaml"] {
        let (ok, out, err) = run(&["deploy", t, "--endpoint-url", &endpoint], dir.path());
        assert!(ok, "{out}{err}");
    }
    // An instance is running once its machine is; its app's pid follows a moment later.
    let pids_now = || -> Vec<u64> {
        instances(&endpoint)
            .iter()
            .flat_map(|i| [i["appPid"].as_u64(), i["machinePid"].as_u64()])
            .flatten()
            .collect()
    };
    eventually("every app to start", Duration::from_secs(10), || pids_now().len() == 6);
    let mut pids = pids_now();
    assert_eq!(pids.len(), 6);
    // The daemonized sleep of the third instance, found through its pid file.
    eventually("the daemon to start", Duration::from_secs(10), || glob_daemon_pid().is_some());
    pids.push(glob_daemon_pid().unwrap());
    assert!(pids.iter().all(|p| alive(*p)));
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    eventually("every instance process to die with cumulo", Duration::from_secs(15), || {
        pids.iter().all(|p| !alive(*p))
    });
}

/// The pid the daemonizing UserData wrote (in its instance directory under the temp dir).
fn glob_daemon_pid() -> Option<u64> {
    let tmp = std::env::temp_dir();
    for run in std::fs::read_dir(tmp)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cumulo-run-"))
    {
        for inst in std::fs::read_dir(run.path().join("instances")).into_iter().flatten().flatten()
        {
            if let Ok(text) = std::fs::read_to_string(inst.path().join("daemon.pid"))
                && let Ok(pid) = text.trim().parse::<u64>()
                && alive(pid)
            {
                return Some(pid);
            }
        }
    }
    None
}

#[test]
fn instances_boot_again_when_the_region_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    std::fs::write(dir.path().join("two.yaml"), TWO_ZONES).unwrap();
    let (mut server, endpoint) = serve(dir.path(), &["--data-dir", data_s]);
    let (ok, out, err) = run(&["deploy", "two.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    let before = instances(&endpoint);
    let old_pids: Vec<u64> = before.iter().filter_map(|i| i["appPid"].as_u64()).collect();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    assert!(old_pids.iter().all(|p| !alive(*p)), "a stopped region leaves no process");
    let (mut server, endpoint) = serve(dir.path(), &["--data-dir", data_s]);
    let after = instances(&endpoint);
    assert_eq!(after.len(), 2);
    for i in &after {
        assert_eq!(i["state"], "running");
        let id = i["instanceId"].as_str().unwrap();
        assert!(before.iter().any(|b| b["instanceId"] == id), "same instances");
        let mut body = String::new();
        eventually("the app to answer after the reboot", Duration::from_secs(10), || {
            body = std::net::TcpStream::connect(("127.0.0.1", port_of(i) as u16))
                .map(|_| http("GET", &format!("http://127.0.0.1:{}/", port_of(i)), &[]).1)
                .unwrap_or_default();
            body.contains(id)
        });
    }
    let (ok, out, err) = run(&["delete", "two", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

const INIT: &str = r##"
Resources:
  Server:
    Type: AWS::EC2::Instance
    CreationPolicy: {ResourceSignal: {Timeout: PT5M}}
    Metadata:
      AWS::CloudFormation::Init:
        configSets:
          default: [prepare, {ConfigSet: app}]
          app: [configure]
        prepare:
          files:
            /etc/app/app.conf:
              content: !Sub |
                stack=${AWS::StackName}
                greeting={{greeting}}
              context: {greeting: hello}
              mode: "000640"
            /etc/app/settings.json:
              content: {port: 8080, debug: false}
          commands:
            "01_first":
              command: echo first > order.log
              cwd: /var/app
            "02_second":
              command: echo second >> order.log
              cwd: /var/app
            "03_skipped":
              command: echo should-not-run >> order.log
              cwd: /var/app
              test: "false"
        configure:
          packages:
            yum: {no-such-package-here: []}
          services:
            sysvinit:
              cfn-hup: {enabled: true, ensureRunning: true}
              httpd-not-here: {enabled: true, ensureRunning: true}
          files:
            /etc/cfn/cfn-hup.conf:
              content: !Sub "[main]\nstack=${AWS::StackId}\ninterval=1\n"
    Properties:
      ImageId: ami-12345678
      UserData:
        Fn::Base64: !Sub |
          #!/bin/bash
          cfn-init -v --stack ${AWS::StackName} --resource Server
          cfn-signal -e $? --stack ${AWS::StackName} --resource Server
          exec sleep 3600
"##;

#[test]
fn cfn_init_applies_files_commands_and_services() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("init.yaml"), INIT).unwrap();
    let (mut server, endpoint) = serve(dir.path(), &[]);
    let (ok, out, err) = run(&["deploy", "init.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    let i = &instances(&endpoint)[0];
    let id = i["instanceId"].as_str().unwrap();
    let console = run(&["logs", id, "--endpoint-url", &endpoint], dir.path()).1;
    for expected in [
        "cfn-init: running config prepare",
        "cfn-init: running config configure",
        "cfn-init: wrote /etc/app/app.conf",
        "cfn-init: command 03_skipped: test failed, skipped",
        "package no-such-package-here (yum) is not installed on this host",
        "service httpd-not-here: no program named httpd-not-here",
        "service cfn-hup started",
    ] {
        assert!(console.contains(expected), "{expected:?} missing from:\n{console}");
    }
    let home = find_instance_dir(id).expect("instance dir");
    let conf = std::fs::read_to_string(home.join("root/etc/app/app.conf")).unwrap();
    assert_eq!(conf, "stack=init\ngreeting=hello\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(home.join("root/etc/app/app.conf")).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let settings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("root/etc/app/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["port"], 8080);
    assert_eq!(
        std::fs::read_to_string(home.join("root/var/app/order.log")).unwrap(),
        "first\nsecond\n"
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

fn find_instance_dir(id: &str) -> Option<std::path::PathBuf> {
    let tmp = std::env::temp_dir();
    std::fs::read_dir(tmp)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cumulo-run-"))
        .map(|e| e.path().join("instances").join(id))
        .find(|p| p.is_dir())
}

/// A corpus template's own Init block, run through an overrides file (its UserData calls
/// /opt/aws/bin, which default mode has not; the overrides file runs the same steps).
#[test]
fn corpus_init_block_through_an_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/aws-cloudformation__aws-cloudformation-templates/EC2/InstanceWithCfnInit.yaml");
    std::fs::copy(&corpus, dir.path().join("cfninit.yaml")).unwrap();
    std::fs::write(
        dir.path().join("cumulo.overrides.yaml"),
        "instances:\n  Instance:\n    user_data: |\n      #!/bin/bash\n      cfn-init -v --stack \"$CUMULO_STACK_NAME\" --resource Instance\n      cfn-signal -e $? --stack \"$CUMULO_STACK_NAME\" --resource Instance\n      exec sleep 3600\n",
    )
    .unwrap();
    let (mut server, endpoint) = serve(dir.path(), &["--overrides", "cumulo.overrides.yaml"]);
    // The template's KeyName (default `sample`) must name a key pair, as in AWS.
    let (ok, out, err) = crate::support::aws(
        &endpoint,
        &["ec2", "create-key-pair", "--key-name", "sample", "--key-type", "ed25519"],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&["deploy", "cfninit.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    let id = instances(&endpoint)[0]["instanceId"].as_str().unwrap().to_string();
    let console = run(&["logs", &id, "--endpoint-url", &endpoint], dir.path()).1;
    assert!(console.contains("package httpd (yum) is not installed on this host"), "{console}");
    assert!(
        console.contains("service httpd: no program named httpd")
            || console.contains("service httpd started"),
        "{console}"
    );
    let home = find_instance_dir(&id).unwrap();
    assert!(
        std::fs::read_to_string(home.join("root/var/www/html/index.html"))
            .unwrap()
            .contains("Congratulations")
    );
    assert!(
        std::fs::read_to_string(home.join("root/etc/cfn/cfn-hup.conf"))
            .unwrap()
            .contains("stack=arn:aws:cloudformation:us-east-1:000000000000:stack/cfninit/")
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

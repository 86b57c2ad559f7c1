//! SSM Parameter Store over awsJson, driven by the aws CLI, on the store templates read; and
//! SigV4 checks of a region started with credentials.

use crate::support::{Running, aws, aws_as};

const TEMPLATE: &str = r#"
Parameters:
  DbHost:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /app/db/host
Resources:
  Copy:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /app/copy
      Type: String
      Value: '{{resolve:ssm:/app/db/host}}'
Outputs:
  Host:
    Value: !Ref DbHost
"#;

#[test]
fn aws_cli_drives_ssm_and_templates_read_the_same_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), TEMPLATE).unwrap();
    let mut server =
        Running::start(&["serve", "--listen", "127.0.0.1:0", "--ephemeral"], dir.path());
    let endpoint = server.endpoint();
    let ssm = |args: &[&str]| {
        let mut all = vec!["ssm"];
        all.extend_from_slice(args);
        aws(&endpoint, &all, dir.path())
    };
    let put =
        ["put-parameter", "--name", "/app/db/host", "--value", "db.local", "--type", "String"];
    let (ok, out, err) = ssm(&[&put[..], &["--query", "Version"]].concat());
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1");
    let (ok, _, err) = ssm(&put);
    assert!(!ok);
    assert!(
        err.contains("(ParameterAlreadyExists) when calling the PutParameter operation"),
        "{err}"
    );
    let (ok, out, err) = ssm(&[
        "put-parameter",
        "--name",
        "/app/db/host",
        "--value",
        "db2.local",
        "--overwrite",
        "--query",
        "Version",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "2");
    let (ok, out, err) = ssm(&[
        "get-parameter",
        "--name",
        "/app/db/host",
        "--query",
        "Parameter.[Value,Version,Type]",
        "--output",
        "text",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "db2.local\t2\tString");
    let (ok, _, err) = ssm(&["get-parameter", "--name", "/app/none"]);
    assert!(!ok);
    assert!(err.contains("(ParameterNotFound) when calling the GetParameter operation"), "{err}");
    let (ok, out, err) = ssm(&[
        "get-parameter",
        "--name",
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        "--query",
        "Parameter.Value",
        "--output",
        "text",
    ]);
    assert!(ok, "{err}");
    assert!(out.trim().starts_with("ami-"), "{out}");
    // The stack reads what the API put, and its resource is a parameter the API reads.
    let (ok, out, err) = aws(
        &endpoint,
        &["cloudformation", "deploy", "--template-file", "app.yaml", "--stack-name", "app"],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            "app",
            "--query",
            "Stacks[0].Outputs[0].OutputValue",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "db2.local");
    let (ok, out, err) = ssm(&[
        "get-parameters-by-path",
        "--path",
        "/app",
        "--recursive",
        "--query",
        "Parameters[].[Name,Value]",
        "--output",
        "text",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "/app/copy\tdb2.local\n/app/db/host\tdb2.local");
    // Paging: the CLI follows NextToken page by page (one parameter per page here).
    let (ok, out, err) = ssm(&[
        "get-parameters-by-path",
        "--path",
        "/app",
        "--recursive",
        "--page-size",
        "1",
        "--query",
        "Parameters[].Name",
        "--output",
        "text",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["/app/copy", "/app/db/host"]);
    let (ok, out, err) = ssm(&[
        "get-parameters-by-path",
        "--path",
        "/app",
        "--query",
        "Parameters[].Name",
        "--output",
        "text",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["/app/copy"]);
}

#[test]
fn a_region_with_credentials_checks_signatures() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("credentials"),
        "[default]\naws_access_key_id = AKIDCUMULOTEST\naws_secret_access_key = cumulo-secret\n",
    )
    .unwrap();
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--credentials", "credentials"],
        dir.path(),
    );
    let endpoint = server.endpoint();
    let right = ("AKIDCUMULOTEST", "cumulo-secret");
    let wrong = ("AKIDCUMULOTEST", "not-the-secret");
    let unknown = ("AKIDSOMEONEELSE", "cumulo-secret");
    let identity = ["sts", "get-caller-identity", "--query", "Account", "--output", "text"];
    let (ok, out, err) = aws_as(&endpoint, &identity, dir.path(), right);
    assert!(ok, "{err}");
    assert_eq!(out.trim().len(), 12, "{out}");
    let (ok, _, err) = aws_as(&endpoint, &identity, dir.path(), wrong);
    assert!(!ok);
    assert!(err.contains("(SignatureDoesNotMatch) when calling the GetCallerIdentity operation: The request signature we calculated does not match"), "{err}");
    let (ok, _, err) = aws_as(&endpoint, &identity, dir.path(), unknown);
    assert!(!ok);
    assert!(err.contains("(InvalidClientTokenId) when calling the GetCallerIdentity operation: The security token included in the request is invalid."), "{err}");
    // JSON: a wrongly signed put changes nothing.
    let put = ["ssm", "put-parameter", "--name", "/signed", "--value", "v", "--type", "String"];
    let (ok, _, err) = aws_as(&endpoint, &put, dir.path(), wrong);
    assert!(!ok);
    assert!(
        err.contains("(InvalidSignatureException) when calling the PutParameter operation"),
        "{err}"
    );
    let (ok, _, err) =
        aws_as(&endpoint, &["ssm", "get-parameter", "--name", "/signed"], dir.path(), right);
    assert!(!ok);
    assert!(err.contains("ParameterNotFound"), "{err}");
    let (ok, _, err) = aws_as(&endpoint, &put, dir.path(), right);
    assert!(ok, "{err}");
    // STS AssumeRole in the local account, signed rightly.
    let (ok, out, err) = aws(&endpoint, &identity, dir.path());
    assert!(!ok, "{out}");
    assert!(err.contains("InvalidClientTokenId"), "{err}");
    let (_, account, _) = aws_as(&endpoint, &identity, dir.path(), right);
    let role = format!("arn:aws:iam::{}:role/deployer", account.trim());
    let (ok, out, err) = aws_as(
        &endpoint,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &role,
            "--role-session-name",
            "ci",
            "--query",
            "AssumedRoleUser.Arn",
            "--output",
            "text",
        ],
        dir.path(),
        right,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("arn:aws:sts::{}:assumed-role/deployer/ci", account.trim()));
    // Cumulo's own commands sign with the AWS keys of their environment.
    let (ok, out, err) = crate::support::run_with(
        &["status", "--endpoint-url", &endpoint],
        dir.path(),
        &[("AWS_ACCESS_KEY_ID", right.0), ("AWS_SECRET_ACCESS_KEY", right.1)],
    );
    assert!(ok, "{out}{err}");
}

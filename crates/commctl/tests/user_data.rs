//! `commctl user-data` parsed by Python's `email` package, and the part
//! handler (contrib/cloud-init/part-handler.py) registering a host with a
//! running server.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use common::Stack;
use serde_json::{Value, json};

fn part_handler_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/cloud-init/part-handler.py")
}

/// Parses a MIME document with Python's email package.
fn parse_mime(path: &Path) -> Value {
    let script = r#"
import email, json, sys
with open(sys.argv[1]) as f:
    msg = email.message_from_file(f)
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    parts.append({
        "type": part.get_content_type(),
        "filename": part.get_filename(),
        "disposition": part.get("Content-Disposition"),
        "payload": part.get_payload(decode=True).decode("utf-8"),
    })
print(json.dumps({
    "type": msg.get_content_type(),
    "multipart": msg.is_multipart(),
    "defects": [str(d) for d in msg.defects],
    "parts": parts,
}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn user_data(s: &Stack, args: &[&str], stdin: Option<&str>) -> common::Run {
    let mut cmd = common::commctl_command(s.path());
    cmd.arg("user-data")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap().into()
}

#[test]
fn user_data_is_valid_mime_in_the_right_order() {
    let s = Stack::start();
    let keys = s.path().join("keys");
    let key_path = keys.join("id_rsa");
    let auth_path = keys.join("authorized_keys");
    let outfile = s.path().join("cluster.userdata");
    user_data(
        &s,
        &[
            "--endpoint",
            &s.base,
            "--username",
            "a",
            "--password",
            "--cluster",
            "ud",
            "--remote-user",
            "root",
            "--ssh-key-path",
            key_path.to_str().unwrap(),
            "--authorized-keys-path",
            auth_path.to_str().unwrap(),
            "--outfile",
            outfile.to_str().unwrap(),
        ],
        Some("a\n"),
    )
    .expect(0);
    let mode = std::fs::metadata(&outfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the user-data holds a password");

    let text = std::fs::read_to_string(&outfile).unwrap();
    assert!(text.starts_with("Content-Type: multipart/mixed; boundary="));
    let doc = parse_mime(&outfile);
    assert_eq!(doc["type"], "multipart/mixed");
    assert_eq!(doc["defects"], json!([]));
    let parts = doc["parts"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    // The part handler comes before the part it handles.
    assert_eq!(
        types,
        [
            "text/cloud-config",
            "text/part-handler",
            "text/x-commissaire-host"
        ]
    );
    for part in parts {
        let disposition = part["disposition"].as_str().unwrap();
        assert!(disposition.starts_with("attachment; filename="), "{part}");
        assert!(part["filename"].is_string(), "{part}");
    }
    assert!(
        parts[0]["payload"]
            .as_str()
            .unwrap()
            .starts_with("#cloud-config")
    );
    let handler = std::fs::read_to_string(part_handler_path()).unwrap();
    assert!(
        parts[1]["payload"].as_str() == Some(handler.as_str()),
        "the part handler part differs from {}",
        part_handler_path().display()
    );
    assert_eq!(parts[1]["filename"], "part-handler.py");
    let host: Value = serde_json::from_str(parts[2]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        host,
        json!({
            "endpoint": s.base, "username": "a", "password": "a", "cluster": "ud",
            "remote_user": "root", "ssh_key_path": key_path, "authorized_keys_path": auth_path,
        })
    );

    // The payload as generated registers the host: run the part handler on it.
    s.commctl(&["cluster", "create", "ud"]).expect(0);
    let payload = s.write("payload.json", parts[2]["payload"].as_str().unwrap());
    let out = Command::new("python3")
        .arg(part_handler_path())
        .arg(&payload)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The key pair was made and authorized.
    let private = std::fs::read(&key_path).unwrap();
    let public = std::fs::read_to_string(key_path.with_extension("pub")).unwrap();
    let authorized = std::fs::read_to_string(&auth_path).unwrap();
    assert_eq!(authorized.trim(), public.trim());
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The host is registered (as the address it connected from), with that key, in the cluster.
    let got = s
        .commctl(&["--json", "host", "get", "127.0.0.1"])
        .expect(0)
        .json();
    assert_eq!(got["address"], "127.0.0.1");
    let creds = s
        .commctl(&["--json", "host", "creds", "127.0.0.1"])
        .expect(0)
        .json();
    assert_eq!(
        creds["ssh_priv_key"],
        base64::engine::general_purpose::STANDARD.encode(&private)
    );
    assert_eq!(creds["remote_user"], "root");
    assert_eq!(
        s.commctl(&["--json", "host", "list", "ud"])
            .expect(0)
            .json(),
        json!(["127.0.0.1"])
    );

    // Running it again keeps the key, does not duplicate it, and the server
    // accepts the identical registration.
    let out = Command::new("python3")
        .arg(part_handler_path())
        .arg(&payload)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&key_path).unwrap(), private);
    assert_eq!(std::fs::read_to_string(&auth_path).unwrap(), authorized);
}

#[test]
fn user_data_to_stdout_with_a_custom_cloud_config() {
    let s = Stack::start();
    let cloud = s.write("my-cloud.yaml", "#cloud-config\npackages: [vim]\n");
    let out = user_data(
        &s,
        &["-e", "https://example.com/", "-C", cloud.to_str().unwrap()],
        None,
    )
    .expect(0);
    let file = s.write("stdout.userdata", &out.stdout);
    let doc = parse_mime(&file);
    let parts = doc["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["filename"], "my-cloud.yaml");
    assert_eq!(parts[0]["payload"], "#cloud-config\npackages: [vim]\n");
    assert_eq!(parts[2]["type"], "text/x-commissaire-host");
    // Only the given keys.
    let host: Value = serde_json::from_str(parts[2]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(host, json!({"endpoint": "https://example.com/"}));

    // Boundaries are random.
    let again = user_data(&s, &["-e", "https://example.com/"], None).expect(0);
    let boundary = |t: &str| t.lines().next().unwrap().to_string();
    assert_ne!(boundary(&out.stdout), boundary(&again.stdout));

    // --endpoint is required.
    user_data(&s, &[], None).expect(2);
}

#[test]
fn part_handler_reports_failures() {
    let s = Stack::start();
    let keys = s.path().join("k");
    let payload = s.write(
        "payload.json",
        &json!({
            "endpoint": s.base, "username": "a", "password": "wrong",
            "ssh_key_path": keys.join("id_rsa"), "authorized_keys_path": keys.join("authorized_keys"),
        })
        .to_string(),
    );
    let out = Command::new("python3")
        .arg(part_handler_path())
        .arg(&payload)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(!stderr.contains("wrong"), "{stderr}");

    // cloud-init's calls: list_types, and __begin__/__end__ are ignored.
    let script = format!(
        r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("ph", {path:?})
ph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ph)
assert ph.list_types() == ["text/x-commissaire-host"], ph.list_types()
ph.handle_part(None, "__begin__", None, None)
ph.handle_part(None, "__end__", None, None)
ph.handle_part(None, "text/plain", "x", "ignored")
print("ok")
"#,
        path = part_handler_path().to_str().unwrap()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

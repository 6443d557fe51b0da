//! The command tree, without a server: one meaning per short flag across
//! every command, the original commctl's documented invocations, where
//! `-o` goes and what an unknown format does.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use commctl::cli::{Cli, Command, HostCommand, OutputFormat, USER_DATA_EXCEPTIONS};

#[test]
fn command_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn ssh_extra_args_keep_hyphens() {
    let cli = Cli::try_parse_from([
        "commctl",
        "host",
        "ssh",
        "10.0.0.1",
        "-v",
        "-q",
        "-o",
        "BatchMode=yes",
        "-p",
        "9876",
        "uptime",
    ])
    .unwrap();
    match cli.command {
        Command::Host {
            command:
                HostCommand::Ssh {
                    address,
                    extra_args,
                    ..
                },
            ..
        } => {
            assert_eq!(address, "10.0.0.1");
            assert_eq!(
                extra_args,
                ["-v", "-q", "-o", "BatchMode=yes", "-p", "9876", "uptime"]
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Every `(letter, long name, command path)` in the tree, globals included.
fn short_flags(cmd: &clap::Command, path: &str, out: &mut Vec<(char, String, String)>) {
    for arg in cmd.get_arguments() {
        if let Some(short) = arg.get_short() {
            let long = arg
                .get_long()
                .map(str::to_string)
                .unwrap_or_else(|| arg.get_id().to_string());
            out.push((short, long, path.to_string()));
        }
    }
    for sub in cmd.get_subcommands() {
        short_flags(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_short_flag_has_one_meaning_in_every_command() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut flags = Vec::new();
    short_flags(&cmd, "commctl", &mut flags);
    let mut meaning: std::collections::BTreeMap<char, (String, String)> = Default::default();
    let mut exceptions_seen = Vec::new();
    for (short, long, path) in &flags {
        if path == "commctl user-data" && USER_DATA_EXCEPTIONS.contains(&(*short, long.as_str())) {
            exceptions_seen.push((*short, long.clone()));
            continue;
        }
        match meaning.get(short) {
            Some((first, where_)) => assert_eq!(
                first, long,
                "-{short} is --{first} in '{where_}' but --{long} in '{path}'"
            ),
            None => {
                meaning.insert(*short, (long.clone(), path.clone()));
            }
        }
    }
    // The exceptions exist (the original's user-data flags) and are
    // exceptions: elsewhere the letter means something else.
    exceptions_seen.sort();
    let mut expected: Vec<(char, String)> = USER_DATA_EXCEPTIONS
        .iter()
        .map(|(c, l)| (*c, l.to_string()))
        .collect();
    expected.sort();
    assert_eq!(exceptions_seen, expected);
    assert_eq!(meaning[&'c'].0, "config");
    assert_eq!(meaning[&'o'].0, "output");
    assert_eq!(meaning[&'q'].0, "quiet");
    assert_eq!(meaning[&'v'].0, "verbose");
}

#[test]
fn the_old_long_flags_still_parse() {
    for args in [
        &[
            "commctl",
            "host",
            "create",
            "--cluster",
            "c",
            "--remote-user",
            "u",
            "h",
            "k",
        ][..],
        &[
            "commctl",
            "cluster",
            "create",
            "--container-manager",
            "m",
            "c",
        ],
        &["commctl", "network", "create", "--options", "a=b", "n"],
        &[
            "commctl",
            "container_manager",
            "create",
            "--options",
            "a=b",
            "m",
        ],
        &["commctl", "passhash", "--rounds", "4", "--password", "x"],
        &[
            "commctl",
            "user-data",
            "-e",
            "http://x",
            "-c",
            "cl",
            "-o",
            "f",
            "-p",
            "-u",
            "u",
        ],
        &[
            "commctl",
            "user-data",
            "--endpoint",
            "http://x",
            "--cluster",
            "cl",
            "--outfile",
            "f",
        ],
    ] {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}

/// The invocations the original commctl's documentation (0.0.6) shows.
#[test]
fn the_original_commctls_documented_invocations_still_parse() {
    let documented: &[&[&str]] = &[
        &[
            "container_manager",
            "create",
            "--type",
            "openshift",
            r#"--options={"server_url": "https://openshift.example.com", "token": "aaa"}"#,
            "ocp",
        ],
        &[
            "cluster",
            "create",
            "--container-manager",
            "ocp",
            "mycluster",
        ],
        &[
            "cluster",
            "create",
            "--type",
            "kubernetes",
            "--network",
            "default",
            "my_cluster",
        ],
        &[
            "cluster",
            "create",
            "-t",
            "kubernetes",
            "-n",
            "default",
            "my_cluster",
        ],
        &[
            "host",
            "create",
            "--cluster",
            "my_cluster",
            "192.168.152.110",
            "/path/key",
        ],
        &["cluster", "restart", "start", "my_cluster"],
        &["cluster", "deploy", "start", "mycluster", "7.4.1"],
        &["cluster", "upgrade", "start", "datacenter1", "7.2.2"],
        &["host", "ssh", "192.168.1.100", "-v", "-p", "9876"],
        &[
            "network",
            "create",
            "--type",
            "flannel_server",
            "--options",
            r#"{"address": "192.168.152.100:8080"}"#,
            "my_network",
        ],
        &["host", "list", "datacenter1"],
        &["passhash", "--file", "my_password.txt"],
        &["passhash", "--rounds", "15"],
        &["passhash", "--password", "bad_idea"],
        &[
            "user-data",
            "-p",
            "-c",
            "my_cluster",
            "-o",
            "cluster.userdata",
            "-e",
            "https://example.com/",
        ],
        &[
            "user-data",
            "--password",
            "--username",
            "USER",
            "--cluster",
            "CLUSTER",
            "--endpoint",
            "https://example.com/",
            "--outfile",
            "CLUSTER.userdata",
        ],
        &[
            "user-data",
            "-e",
            "https://e/",
            "-c",
            "c",
            "-u",
            "u",
            "-p",
            "-r",
            "root",
            "-s",
            "/k",
            "-a",
            "/a",
            "-C",
            "/ci",
            "-o",
            "/out",
        ],
    ];
    for args in documented {
        let line = [&["commctl", "-c", "/etc/commissaire.json"][..], args].concat();
        let cli = Cli::try_parse_from(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(
            cli.config.as_deref(),
            Some(std::path::Path::new("/etc/commissaire.json"))
        );
    }
    let cli = Cli::try_parse_from([
        "commctl",
        "user-data",
        "-p",
        "-c",
        "my_cluster",
        "-o",
        "cluster.userdata",
        "-e",
        "http://e",
    ])
    .unwrap();
    match cli.command {
        Command::UserData(a) => {
            assert_eq!(a.cluster.as_deref(), Some("my_cluster"));
            assert_eq!(a.outfile, Some(PathBuf::from("cluster.userdata")));
            assert!(a.password);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_output_format_is_a_usage_error() {
    let e = Cli::try_parse_from(["commctl", "cluster", "list", "-o", "xml"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("xml"), "{e}");
}

#[test]
fn output_format_after_the_group_or_the_command() {
    for args in [
        &["commctl", "cluster", "list", "-o", "yaml"][..],
        &["commctl", "cluster", "-o", "yaml", "list"],
        &["commctl", "cluster", "list", "--output=yaml"],
        &["commctl", "-o", "yaml", "cluster", "list"],
    ] {
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(commctl::output_format(&cli), OutputFormat::Yaml, "{args:?}");
    }
}

#[test]
fn json_flag_anywhere() {
    let cli = Cli::try_parse_from(["commctl", "cluster", "list", "--json"]).unwrap();
    assert!(cli.json);
    let cli = Cli::try_parse_from(["commctl", "--json", "cluster", "list"]).unwrap();
    assert!(cli.json);
}

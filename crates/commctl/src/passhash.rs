//! `passhash`: bcrypt hashes for the server's HTTP Basic users file.

use std::io::{IsTerminal, Read};
use std::path::Path;

use crate::error::{CliError, CliResult};

/// Drops one trailing line break (`\n` or `\r\n`).
pub fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Reads a password from a file (`-` is stdin), dropping one trailing line break.
pub fn read_password_file(path: &Path) -> CliResult<String> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::io("reading the password from stdin", e))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?
    };
    Ok(strip_newline(text))
}

/// Prompts for a password on a terminal, or reads one line from stdin when
/// it is not a terminal.
pub fn prompt_or_stdin(prompt: &str) -> CliResult<String> {
    if std::io::stdin().is_terminal() {
        return crate::config::prompt_password(prompt);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::io("reading the password from stdin", e))?;
    Ok(strip_newline(line))
}

/// The password for `passhash`: `--password`, `--file`, or a prompt.
pub fn password(password: Option<&str>, file: Option<&Path>) -> CliResult<String> {
    let pw = match (password, file) {
        (Some(p), _) => p.to_string(),
        (None, Some(f)) => read_password_file(f)?,
        (None, None) => prompt_or_stdin("Password: ")?,
    };
    if pw.is_empty() {
        return Err(CliError::Input("the password is empty".into()));
    }
    Ok(pw)
}

/// A bcrypt hash of `password` with cost `rounds` (4 to 31).
pub fn hash(password: &str, rounds: u32) -> CliResult<String> {
    bcrypt::hash(password, rounds).map_err(|e| CliError::Input(format!("cannot hash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify() {
        let h = hash("secret", 4).unwrap();
        assert!(h.starts_with("$2"));
        assert!(bcrypt::verify("secret", &h).unwrap());
    }

    #[test]
    fn newline_stripping() {
        assert_eq!(strip_newline("a\n".into()), "a");
        assert_eq!(strip_newline("a\r\n".into()), "a");
        assert_eq!(strip_newline("a\n\n".into()), "a\n");
        assert_eq!(strip_newline("a".into()), "a");
    }
}

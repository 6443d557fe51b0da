//! `commctl config get-contexts` and `use-context`: the configuration
//! file's contexts listed (never a password) and its `current-context`
//! rewritten in place.

use std::io::Write;
use std::path::Path;

use super::{Endpoints, read_file, unknown_context};
use crate::error::{CliError, CliResult};

/// One row of `config get-contexts` (never a password).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextRow {
    /// The context's name.
    pub name: String,
    /// Whether it is the one in use (`--context`, `COMMCTL_CONTEXT`, or the
    /// file's `current-context`).
    pub current: bool,
    /// Its endpoints (the file's top-level ones when it has none).
    pub endpoint: Vec<String>,
    /// Its user name, if any.
    pub username: Option<String>,
    /// Its kubeconfig, if any.
    pub kubeconfig: Option<String>,
    /// Whether it keeps a password (the password itself is never shown).
    pub password_set: bool,
}

/// The contexts of the file at `path`, the one in use marked (`chosen`
/// overrides the file's `current-context`).
pub fn contexts(path: &Path, required: bool, chosen: Option<&str>) -> CliResult<Vec<ContextRow>> {
    let file = read_file(path, required)?;
    let current = chosen.or(file.current_context.as_deref());
    if let Some(name) = current
        && !file.contexts.contains_key(name)
    {
        return Err(unknown_context(name, &file, path));
    }
    Ok(file
        .contexts
        .iter()
        .map(|(name, c)| {
            let (merged, _) = file
                .with_context(Some(name), path)
                .expect("a listed context exists");
            ContextRow {
                name: name.clone(),
                current: current == Some(name.as_str()),
                endpoint: merged.endpoint.map(Endpoints::into_vec).unwrap_or_default(),
                username: merged.username,
                kubeconfig: merged.kubeconfig.map(|k| k.display().to_string()),
                password_set: c.password.is_some()
                    || (!c.has_credentials() && file.password.is_some()),
            }
        })
        .collect())
}

/// Makes `name` the `current-context` of the file at `path`, rewriting it
/// in place: the other members are kept, and so is the file's mode (a file
/// with passwords should be 0600). An unknown name changes nothing and is
/// an error.
pub fn use_context(path: &Path, name: &str) -> CliResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let file = read_file(path, true)?;
    if !file.contexts.contains_key(name) {
        return Err(unknown_context(name, &file, path));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Config(format!("{} is not JSON: {e}", path.display())))?;
    let Some(object) = value.as_object_mut() else {
        return Err(CliError::Config(format!(
            "{} is not a JSON object",
            path.display()
        )));
    };
    object.remove("current_context");
    object.insert(
        "current-context".into(),
        serde_json::Value::String(name.into()),
    );
    let mode = std::fs::metadata(path)
        .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?
        .permissions()
        .mode()
        & 0o7777;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| CliError::io(format!("writing next to {}", path.display()), e))?;
    let body = serde_json::to_string_pretty(&value).expect("a JSON value serializes") + "\n";
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|_| temp.write_all(body.as_bytes()))
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| CliError::io(format!("writing next to {}", path.display()), e))?;
    temp.persist(path)
        .map_err(|e| CliError::io(format!("replacing {}", path.display()), e.error))?;
    Ok(())
}

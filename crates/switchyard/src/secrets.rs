//! Secrets generated on first start and kept in the data dir with mode 0600.

use anyhow::{Context, Result};
use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// The file holding the instance secret.
pub const SECRET_FILE: &str = "secret.key";

/// Reads the instance secret, creating it (32 random bytes, hex) if missing.
pub fn instance_secret(data_dir: &Path) -> Result<String> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim().to_owned();
        if s.len() >= 32 {
            return Ok(s);
        }
        anyhow::bail!(
            "{} is too short; delete it to generate a new one",
            path.display()
        );
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = hex::encode(raw);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated the instance secret");
    Ok(secret)
}

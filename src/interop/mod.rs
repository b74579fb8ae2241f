//! Moving recordings in and out of other formats.

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "mcap")]
pub mod mcap;
pub mod message_info;
#[cfg(feature = "parquet")]
pub mod parquet;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The `.rec` files named by `inputs`: files as given, directories searched recursively for
/// `*.rec` (sorted, so that runs are repeatable). A path that does not exist is an error.
pub fn find_recordings(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::from(e).with_path(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::from(e).with_path(dir))?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "rec") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        let meta = std::fs::metadata(p).map_err(|e| Error::from(e).with_path(p))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

//! Crash-safe file creation, and the seam every durable write goes through.
//!
//! [`write_atomic`]: write to a temporary name, fsync the file, rename it into place, fsync
//! the directory. A reader therefore sees either no file or the whole file, never a part; a
//! failure at any step leaves no new file behind (as far as the failing disk allows).
//!
//! [`FileSystem`] is the seam: the WAL, channel segments, datastore and table files, catalog
//! files, dataset contents and the request-id file write and sync through [`fs()`], which is the
//! operating system ([`Os`]) unless a test installed another one (see [`super::faults`], which
//! injects `ENOSPC`, `EIO` and failing `fsync`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

/// Suffix of files being written; anything with it is garbage left by a crash and is deleted on open.
pub const TMP_SUFFIX: &str = ".tmp";

/// What a durable write does to a file. Implementations must behave as the OS does on
/// success; on failure they may have written part of `buf`, as a real short write does.
pub trait FileSystem: Send + Sync {
    /// Writes all of `buf` at the file's position.
    fn write_all(&self, f: &mut File, path: &Path, buf: &[u8]) -> io::Result<()>;
    /// Flushes the file to the device: data and metadata, or (`data_only`) what reading the
    /// data back needs (`fdatasync`). Directories are synced with `data_only = false`.
    fn sync(&self, f: &File, path: &Path, data_only: bool) -> io::Result<()>;
}

/// The operating system's file system.
pub struct Os;

impl FileSystem for Os {
    fn write_all(&self, f: &mut File, _path: &Path, buf: &[u8]) -> io::Result<()> {
        f.write_all(buf)
    }
    fn sync(&self, f: &File, _path: &Path, data_only: bool) -> io::Result<()> {
        if data_only { f.sync_data() } else { f.sync_all() }
    }
}

static INSTALLED: OnceLock<&'static dyn FileSystem> = OnceLock::new();

/// The file system durable writes go through.
pub fn fs() -> &'static dyn FileSystem {
    *INSTALLED.get_or_init(|| &Os)
}

/// Installs `fs` for the rest of the process; must come before the first write. Returns false
/// (and changes nothing) when a file system is already in use.
pub fn install(fs: &'static dyn FileSystem) -> bool {
    INSTALLED.set(fs).is_ok()
}

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}{TMP_SUFFIX}", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        fs().write_all(&mut f, &tmp, bytes)?;
        fs().sync(&f, &tmp, false)
    })();
    if let Err(e) = written {
        // Never renamed, so never read; removed now so a full disk gets its space back.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Err(e) = sync_dir(dir) {
        // The caller hears of a failure and may write the same content again under another
        // name; the entry whose durability is unknown goes, so a restart cannot find both.
        let _ = fs::remove_file(path);
        let _ = sync_dir(dir);
        return Err(e);
    }
    Ok(())
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs().sync(&File::open(dir)?, dir, false)
}

/// Creates a directory and its parents, then fsyncs the parent so the entry survives a crash.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    // A bare relative name's parent is "": the current directory.
    match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => sync_dir(Path::new(".")),
        Some(p) => sync_dir(p),
        None => Ok(()),
    }
}

/// Removes leftover `*.tmp` files in `dir` (not recursive).
pub fn remove_tmp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

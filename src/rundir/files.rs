//! Writing files into the run directory so that a crash never leaves half
//! of one: a temporary file, flushed and fsynced, renamed into place, the
//! directory fsynced; and the size and SHA-256 of each file written, which
//! the manifest lists and `verify` checks.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A written file's name, size and SHA-256, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

struct HashingWriter<W> {
    inner: W,
    hash: super::digest::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file being written atomically: a temporary file, flushed and fsynced,
/// renamed into place, and the directory fsynced on [`AtomicFile::commit`].
/// A crash leaves either the old file or the new one, never half of one;
/// dropping it uncommitted removes the temporary file.
pub struct AtomicFile {
    dir: std::path::PathBuf,
    name: String,
    tmp: std::path::PathBuf,
    /// Buffered before the hash, so the hash sees large blocks, not the
    /// many small writes of a CSV or JSON encoder.
    writer: Option<BufWriter<HashingWriter<File>>>,
}

impl AtomicFile {
    /// Starts writing `name` in `dir`.
    pub fn create(dir: &Path, name: &str) -> io::Result<Self> {
        let tmp = dir.join(super::temp_name(name));
        let file = File::create(&tmp)?;
        let writer =
            BufWriter::with_capacity(256 * 1024, HashingWriter { inner: file, hash: Default::default(), bytes: 0 });
        Ok(AtomicFile { dir: dir.to_owned(), name: name.to_owned(), tmp, writer: Some(writer) })
    }

    /// Makes it durable and puts it in place; returns its digest.
    pub fn commit(mut self) -> io::Result<FileDigest> {
        let w = self.writer.take().expect("committed once");
        let w = w.into_inner().map_err(|e| e.into_error())?;
        let digest = FileDigest { name: self.name.clone(), bytes: w.bytes, sha256: w.hash.finish_hex() };
        let file = w.inner;
        file.sync_all()?;
        fs::rename(&self.tmp, self.dir.join(&self.name))?;
        sync_dir(&self.dir)?;
        Ok(digest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `name` in `dir` atomically with one closure (see [`AtomicFile`]).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<FileDigest> {
    let mut f = AtomicFile::create(dir, name)?;
    fill(&mut f)?;
    f.commit()
}

/// Fsyncs a directory so a rename in it survives power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

/// The SHA-256 and size of a file on disk.
pub fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut w = HashingWriter { inner: io::sink(), hash: super::digest::Sha256::default(), bytes: 0 };
    io::copy(&mut File::open(path)?, &mut w)?;
    Ok((w.bytes, w.hash.finish_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_file_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"one")).unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two");
        let err = write_atomic(dir.path(), "x.txt", |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two", "a failed write keeps the old file");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}

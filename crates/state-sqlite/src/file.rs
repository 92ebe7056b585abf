//! What a state file on disk is before SQLite touches it: missing (a new
//! state), or a SQLite database whose header is read for its schema version —
//! and refused when it is empty, truncated or not SQLite at all, because
//! taking any of those for a new state would re-send a whole history.

use std::io::Read;
use std::path::{Path, PathBuf};
use tillflow_core::StateError;

/// The length of SQLite's database header.
const HEADER_LEN: usize = 100;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StateFile {
    /// Nothing at the path: a new state is made there.
    Missing,
    /// A SQLite database; `schema_version` is its `PRAGMA user_version`.
    Database { schema_version: u32 },
}

/// `<path><suffix>`: SQLite's journal (`-journal`) or write-ahead log (`-wal`,
/// left by tillflow versions that used WAL) beside the database.
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A hot journal (a process killed mid-commit: its header is not zeroed) or a
/// write-ahead log with frames means the file is between two states and SQLite
/// puts it right on open, so the file's own size says nothing until then.
fn log_pending(path: &Path) -> bool {
    let mut journal_header = [0u8; 28];
    let hot_journal = std::fs::File::open(beside(path, "-journal"))
        .and_then(|mut journal| journal.read_exact(&mut journal_header))
        .is_ok()
        && journal_header.iter().any(|byte| *byte != 0);
    let wal_frames = std::fs::metadata(beside(path, "-wal")).map(|meta| meta.len() > 32).unwrap_or(false);
    hot_journal || wal_frames
}

fn refuse(path: &Path, what: &str) -> StateError {
    StateError::new(format!(
        "{} {what}. It is not a state tillflow can use, and it is not taken for a new one \
         (that would re-send every pipeline's whole history): restore the file from a backup, \
         or delete it to start over on purpose",
        path.display()
    ))
}

/// Reads the header of the file at `path` (without opening it for writing).
pub(crate) fn inspect(path: &Path) -> Result<StateFile, StateError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::Missing),
        Err(e) => return Err(StateError::new(format!("cannot read {}: {e}", path.display()))),
    };
    let length = file.metadata().map_err(|e| StateError::new(format!("cannot read {}: {e}", path.display())))?.len();
    let mut header = [0u8; HEADER_LEN];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        // A state is renamed into place only once its schema is written, so
        // it is never legitimately shorter than a header, log or no log.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(if length == 0 {
                refuse(path, "is empty (0 bytes)")
            } else {
                refuse(path, &format!("is truncated: {length} bytes, shorter than a SQLite header"))
            });
        }
        Err(e) => return Err(StateError::new(format!("cannot read {}: {e}", path.display()))),
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(StateError::new(format!("{} is not a SQLite database", path.display())));
    }
    let schema_version = u32::from_be_bytes([header[60], header[61], header[62], header[63]]);
    if !log_pending(path)
        && let Some(expected) = expected_length(&header)
        && length < expected
    {
        return Err(refuse(path, &format!("is truncated: {length} bytes where its header promises {expected}")));
    }
    Ok(StateFile::Database { schema_version })
}

/// The file length the header promises (page size × page count), when the
/// page count is trustworthy: SQLite marks it valid by copying the change
/// counter (bytes 24..28) into bytes 92..96 whenever it writes it.
fn expected_length(header: &[u8; HEADER_LEN]) -> Option<u64> {
    let word = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    let page_count = u64::from(word(28));
    (word(24) == word(92) && page_count > 0 && page_size >= 512).then_some(page_size * page_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_short_file_is_refused_even_beside_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        assert_eq!(inspect(&path).unwrap(), StateFile::Missing);
        std::fs::write(&path, b"").unwrap();
        let error = inspect(&path).unwrap_err().to_string();
        assert!(error.contains("is empty (0 bytes)") && error.contains("not taken for a new one"), "{error}");
        std::fs::write(&path, b"SQLite format 3\0").unwrap();
        assert!(inspect(&path).unwrap_err().to_string().contains("is truncated: 16 bytes"));
        std::fs::write(beside(&path, "-journal"), [7u8; 4096]).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert!(inspect(&path).unwrap_err().to_string().contains("is empty (0 bytes)"));
    }

    #[test]
    fn a_file_shorter_than_its_header_promises_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut header = [0u8; 4096];
        header[..16].copy_from_slice(b"SQLite format 3\0");
        header[16..18].copy_from_slice(&4096u16.to_be_bytes());
        header[24..28].copy_from_slice(&9u32.to_be_bytes());
        header[28..32].copy_from_slice(&3u32.to_be_bytes());
        header[60..64].copy_from_slice(&5u32.to_be_bytes());
        header[92..96].copy_from_slice(&9u32.to_be_bytes());
        std::fs::write(&path, header).unwrap();
        let error = inspect(&path).unwrap_err().to_string();
        assert!(error.contains("is truncated: 4096 bytes where its header promises 12288"), "{error}");
        // A persisted journal whose header is zeroed is cold: the file is still truncated.
        std::fs::write(beside(&path, "-journal"), [0u8; 512]).unwrap();
        assert!(inspect(&path).is_err());
        // A hot journal means a commit was cut short; SQLite rolls it back on open.
        std::fs::write(beside(&path, "-journal"), [0xd9u8; 512]).unwrap();
        assert_eq!(inspect(&path).unwrap(), StateFile::Database { schema_version: 5 });
        std::fs::remove_file(beside(&path, "-journal")).unwrap();
        // A page count SQLite did not mark valid says nothing.
        header[92..96].copy_from_slice(&8u32.to_be_bytes());
        std::fs::write(&path, header).unwrap();
        assert_eq!(inspect(&path).unwrap(), StateFile::Database { schema_version: 5 });
    }
}

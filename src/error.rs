//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in recfile, with the structured facts needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it concerned when known.
    #[error("I/O error{}: {source}", path_suffix(.path))]
    Io {
        /// The file being accessed, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the `.rec` magic bytes.
    #[error("not a .rec file (bad magic bytes {found:02x?})")]
    BadMagic {
        /// The first bytes found (up to 8).
        found: Vec<u8>,
    },
    /// The file is empty (zero bytes).
    #[error("the file is empty: it holds no .rec header")]
    EmptyFile,
    /// The file is shorter than its fixed header.
    #[error("file too short for a .rec header: {len} bytes, need {needed}")]
    TruncatedHeader {
        /// Length of the file.
        len: u64,
        /// Bytes required.
        needed: u64,
    },
    /// The file was written by a newer, incompatible major version of the format.
    #[error("unsupported format version {found_major}.{found_minor} (this build reads major version {supported_major})")]
    UnsupportedVersion {
        /// Major version in the file.
        found_major: u16,
        /// Minor version in the file.
        found_minor: u16,
        /// Major version this build supports.
        supported_major: u16,
    },
    /// A CRC did not match: the bytes at `offset` are damaged or were never completely written.
    #[error("CRC mismatch in {what} at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// What was being checked (header, slot, record kind).
        what: &'static str,
        /// File offset of the damaged structure.
        offset: u64,
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// Neither commit slot of the header is valid.
    #[error("both commit slots are damaged")]
    NoValidSlot,
    /// A structure in the file is malformed: a length, offset or value is out of range.
    #[error("malformed {what} at offset {offset}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// File offset of the structure.
        offset: u64,
        /// What was expected.
        reason: String,
    },
    /// A record is cut off by the end of the file.
    #[error("truncated {what} at offset {offset}: needs {needed} bytes, {available} available")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// File offset of the structure.
        offset: u64,
        /// Bytes required.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// Another process or handle is writing this file.
    #[error("{path} is locked by another writer")]
    Locked {
        /// The locked file.
        path: PathBuf,
    },
    /// `Recorder::create` refuses to overwrite an existing, non-empty file.
    #[error("{path} already exists and is not empty (a recording is never overwritten)")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file holds an interrupted session that must be recovered before this operation.
    #[error("the file holds an interrupted session at offset {session_offset}: run `rec recover` first")]
    NeedsRecovery {
        /// Offset of the interrupted session's start record.
        session_offset: u64,
    },
    /// Recovery cannot be sure what is a torn tail and what is damage in the middle of the
    /// file: it refused, and left the file byte for byte as it was.
    #[error("cannot recover safely: {reason} (at offset {offset}); the file was left untouched")]
    Unrecoverable {
        /// Where the problem is.
        offset: u64,
        /// What is damaged.
        reason: String,
    },
    /// An invalid argument from the caller (not from the file).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No stream of that name in the session.
    #[error("no stream named {0}")]
    NoSuchStream(String),
    /// No session matches the given position or id.
    #[error("no session {0}")]
    NoSuchSession(String),
    /// A frame index beyond the end of a replay.
    #[error("frame index {index} out of range (replay has {len} frames)")]
    IndexOutOfRange {
        /// Requested index.
        index: u64,
        /// Number of frames.
        len: u64,
    },
    /// A limit of the format was reached.
    #[error("format limit reached: {0}")]
    LimitExceeded(String),
    /// Encoding a value with bincode failed.
    #[error("could not encode value: {0}")]
    Encode(String),
    /// Decoding a payload with bincode failed.
    #[error("could not decode payload of frame at offset {offset}: {reason}")]
    Decode {
        /// Offset of the frame record.
        offset: u64,
        /// The decoder's message.
        reason: String,
    },
    /// The session reached `max_actions_per_session` and was finished.
    #[error("the session reached its limit of {max} actions and was finished")]
    ActionLimitReached {
        /// The limit.
        max: u64,
    },
    /// The session writer was already finished or failed earlier.
    #[error("the session writer is closed: {0}")]
    Closed(String),
    /// Building Arrow batches or reading and writing a Parquet dataset failed (the message
    /// names the file).
    #[error("dataset: {0}")]
    Dataset(String),
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" on {}", p.display()),
        None => String::new(),
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: None, source }
    }
}

impl Error {
    /// Attach a path to an I/O error that has none.
    pub fn with_path(self, p: &std::path::Path) -> Self {
        match self {
            Error::Io { path: None, source } => Error::Io { path: Some(p.to_path_buf()), source },
            other => other,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

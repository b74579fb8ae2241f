//! All file I/O goes through [`Storage`], so tests can replace the file with an image that
//! simulates power cuts, and fuzzers can run entirely in memory.

use crate::reserve::Reserve;
pub use crate::reserve::RESERVE_STEP;
use std::fs::File;
use std::io;

/// Positional byte storage: the only I/O the writer and recovery perform.
pub trait Storage: Send {
    /// Fills `buf` from `offset`; errors with `UnexpectedEof` past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, growing the storage when needed.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the storage holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends (with zeros) to `len`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Where the zeros at the end of the storage start, searching from `from`: an offset at
    /// or after `from` past which every byte reads as zero, when the storage knows one without
    /// reading them (a file's trailing hole, such as the space a writer reserved ahead);
    /// `None` otherwise.
    fn zeros_from(&self, from: u64) -> Option<u64> {
        let _ = from;
        None
    }
    /// With `true`, asks the storage to grow in large steps ahead of the writes, filling what
    /// lies past the data with zeros (unused space: kind 0 is never a valid record), as the
    /// recorder does while a session records; with `false`, to write exactly what it is given.
    /// A hint: the default ignores it. Whoever turns it on cuts the zeros off when done.
    fn reserve_ahead(&mut self, on: bool) {
        let _ = on;
    }
    /// A second handle that makes this storage's writes durable from another thread while this
    /// one goes on writing (`None`, the default: the storage has no such handle, and only
    /// [`Storage::sync`] makes bytes durable).
    fn sync_handle(&self) -> Option<SyncHandle> {
        None
    }
    /// A read-only view of the whole content: a memory map for files, a copy otherwise.
    /// Recovery reads through it so that it touches only the pages it needs.
    fn view(&self) -> io::Result<View> {
        Ok(View::Bytes(self.read_all()?))
    }
    /// The whole content, for in-memory views (recovery of read-only opens, tests).
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len()?).map_err(|_| io::Error::other("storage larger than memory"))?;
        let mut buf = vec![0u8; len];
        self.read_at(0, &mut buf)?;
        Ok(buf)
    }
}

/// Makes a storage's writes durable from another thread (see [`Storage::sync_handle`]).
pub struct SyncHandle(Box<dyn Fn() -> io::Result<()> + Send + Sync>);

impl SyncHandle {
    /// A handle whose [`SyncHandle::sync`] calls `sync`.
    pub fn new(sync: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> SyncHandle {
        SyncHandle(Box::new(sync))
    }
    /// Makes every write to the storage so far durable. For files (fdatasync through a second
    /// descriptor) Linux reports a write-back error to one caller only, whichever descriptor it
    /// syncs through: whoever calls this must pass an error on.
    pub fn sync(&self) -> io::Result<()> {
        (self.0)()
    }
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHandle")
    }
}

/// Where `file`'s trailing hole starts (its last data ends), searching from `from`: every byte
/// from there to the end reads as zero. Asked of the file system (`lseek` with `SEEK_HOLE` and
/// `SEEK_DATA`, which report unwritten and not yet allocated data as data), so the zeros are
/// not read: a hole's pages would each be allocated and zeroed to be looked at. `None` where
/// the system cannot tell (then the caller reads the bytes).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub(crate) fn trailing_hole(file: &File, from: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut at = libc::off_t::try_from(from).ok()?;
    // Each round passes one hole followed by data; the tail of a recording has few.
    for _ in 0..64 {
        // SAFETY: lseek on a descriptor `file` owns; it moves only this descriptor's offset,
        // which nothing here uses (all reads and writes are positional).
        let hole = unsafe { libc::lseek(fd, at, libc::SEEK_HOLE) };
        if hole < 0 {
            return None;
        }
        // SAFETY: as above.
        let data = unsafe { libc::lseek(fd, hole, libc::SEEK_DATA) };
        if data < 0 {
            let no_data_after = io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
            return no_data_after.then_some(hole as u64);
        }
        at = data;
    }
    None
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub(crate) fn trailing_hole(_file: &File, _from: u64) -> Option<u64> {
    None
}

/// A read-only view of a storage's bytes.
pub enum View {
    /// A memory map of a file.
    Map(memmap2::Mmap),
    /// A copy in memory.
    Bytes(Vec<u8>),
}

impl View {
    /// Asks the OS to start reading these ranges now, in parallel (a hint; no effect on
    /// copies). Recovery uses it for the checkpoints it is about to read, so that a cold cache
    /// costs about one disk round trip instead of one per checkpoint.
    pub fn prefetch(&self, ranges: &[(u64, u64)]) {
        if let View::Map(m) = self {
            for &(offset, len) in ranges {
                let (Ok(o), Ok(l)) = (usize::try_from(offset), usize::try_from(len)) else { continue };
                if o < m.len() {
                    let _ = m.advise_range(memmap2::Advice::WillNeed, o, l.min(m.len() - o));
                }
            }
        }
    }
}

impl std::ops::Deref for View {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            View::Map(m) => m,
            View::Bytes(b) => b,
        }
    }
}

/// A file on disk.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    /// While reserving ahead ([`Storage::reserve_ahead`]).
    reserve: Option<Reserve>,
}

impl FileStorage {
    /// Wraps an open file (the caller handles locking).
    pub fn new(file: File) -> Self {
        FileStorage { file, reserve: None }
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Storage for FileStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(r) = &mut self.reserve {
            r.before_write(&self.file, offset.saturating_add(data.len() as u64));
        }
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if let Some(r) = &mut self.reserve {
            r.before_set_len(len);
        }
        self.file.set_len(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn zeros_from(&self, from: u64) -> Option<u64> {
        trailing_hole(&self.file, from)
    }
    /// See [`crate::reserve`]: the file grows in [`RESERVE_STEP`]s ahead of the writes and a
    /// helper thread brings each step into the page cache as one large folio.
    fn reserve_ahead(&mut self, on: bool) {
        // Dropping a reserve stops its helper.
        self.reserve = if on { Reserve::start(&self.file) } else { None };
    }
    fn sync_handle(&self) -> Option<SyncHandle> {
        let file = self.file.try_clone().ok()?;
        Some(SyncHandle::new(move || file.sync_data()))
    }
    fn view(&self) -> io::Result<View> {
        if self.len()? == 0 {
            return Ok(View::Bytes(Vec::new()));
        }
        // SAFETY: a read-only map of a file this process holds the writer lock of; it is
        // dropped before any truncation, and only bytes below the file length are read.
        let map = unsafe { memmap2::Mmap::map(&self.file) }?;
        Ok(View::Map(map))
    }
}

/// Storage in memory: for fuzzing, tests, and recovering a read-only view.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    /// The bytes.
    pub data: Vec<u8>,
    /// Number of `sync` calls so far.
    pub syncs: u64,
}

impl MemStorage {
    /// Storage holding `data`.
    pub fn new(data: Vec<u8>) -> Self {
        MemStorage { data, syncs: 0 }
    }
}

fn to_index(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let end = start.checked_add(len).ok_or_else(|| io::Error::other("offset too large"))?;
    Ok((start, end))
}

impl Storage for MemStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (start, end) = to_index(offset, buf.len())?;
        if end > self.data.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&self.data[start..end]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let (start, end) = to_index(offset, data.len())?;
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(data);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let (len, _) = to_index(len, 0)?;
        self.data.resize(len, 0);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        Ok(self.data.clone())
    }
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, data)
    }
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        (**self).set_len(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
    fn sync_handle(&self) -> Option<SyncHandle> {
        (**self).sync_handle()
    }
    fn reserve_ahead(&mut self, on: bool) {
        (**self).reserve_ahead(on)
    }
    fn zeros_from(&self, from: u64) -> Option<u64> {
        (**self).zeros_from(from)
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        (**self).read_all()
    }
    fn view(&self) -> io::Result<View> {
        (**self).view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_storage_grows_and_reads() {
        let mut m = MemStorage::default();
        m.write_at(4, b"ab").unwrap();
        assert_eq!(m.data, vec![0, 0, 0, 0, b'a', b'b']);
        let mut buf = [0u8; 2];
        m.read_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"ab");
        assert!(m.read_at(5, &mut buf).is_err());
        m.set_len(1).unwrap();
        assert_eq!(m.len().unwrap(), 1);
    }
}

/// One operation on a [`SimulatedDisk`], in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// Bytes written at an offset.
    Write {
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// Length set.
    SetLen(u64),
    /// Everything before is durable.
    Sync,
}

/// How the operations that were not synced before a power cut reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// None of them.
    DropUnsynced,
    /// The first `n` of them, in order, then the next one torn after `bytes` bytes.
    Torn {
        /// Operations fully persisted.
        n: usize,
        /// Bytes of the next write persisted.
        bytes: usize,
    },
    /// Any subset (out of order), chosen by the bits of `mask` (bit i: pending op i persisted).
    Subset {
        /// Which pending operations reached the disk.
        mask: u64,
    },
}

/// A storage that records every operation, so that a test can build the image a power cut would
/// leave at any moment: synced operations are durable, the others dropped, torn or reordered.
/// Cheap to clone: clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct SimulatedDisk {
    inner: std::sync::Arc<std::sync::Mutex<SimulatedInner>>,
}

#[derive(Debug, Default)]
struct SimulatedInner {
    live: MemStorage,
    history: Vec<DiskOp>,
    /// The step a reserving writer grows the disk in, as [`FileStorage`] does by
    /// [`RESERVE_STEP`] (0: never), and how far it is reserved while it does.
    reserve_step: u64,
    reserved_to: Option<u64>,
}

fn apply(image: &mut Vec<u8>, op: &DiskOp) {
    match op {
        DiskOp::Write { offset, data } => {
            let start = *offset as usize;
            if image.len() < start + data.len() {
                image.resize(start + data.len(), 0);
            }
            image[start..start + data.len()].copy_from_slice(data);
        }
        DiskOp::SetLen(l) => image.resize(*l as usize, 0),
        DiskOp::Sync => {}
    }
}

impl SimulatedDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty disk that, while asked to reserve ahead ([`Storage::reserve_ahead`]), grows
    /// with zeros to a whole `step` past each write before making it, as a [`FileStorage`]
    /// does by [`RESERVE_STEP`]: each growth is an operation of its own, which a power cut may
    /// drop or reorder like any other.
    pub fn reserving(step: u64) -> Self {
        let disk = Self::default();
        disk.lock().reserve_step = step;
        disk
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimulatedInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of operations so far (a crash point is any number up to this).
    pub fn ops(&self) -> usize {
        self.lock().history.len()
    }

    /// The operations so far.
    pub fn history(&self) -> Vec<DiskOp> {
        self.lock().history.clone()
    }

    /// The current content, as if every write had reached the disk.
    pub fn live_image(&self) -> Vec<u8> {
        self.lock().live.data.clone()
    }

    /// The image a power cut right after the first `at` operations leaves, under `mode`.
    pub fn crash_image(&self, at: usize, mode: CrashMode) -> Vec<u8> {
        let g = self.lock();
        let ops = &g.history[..at.min(g.history.len())];
        let last_sync = ops.iter().rposition(|o| *o == DiskOp::Sync).map_or(0, |i| i + 1);
        let mut image = Vec::new();
        for op in &ops[..last_sync] {
            apply(&mut image, op);
        }
        let pending = &ops[last_sync..];
        match mode {
            CrashMode::DropUnsynced => {}
            CrashMode::Torn { n, bytes } => {
                for op in pending.iter().take(n) {
                    apply(&mut image, op);
                }
                if let Some(DiskOp::Write { offset, data }) = pending.get(n) {
                    let cut = bytes.min(data.len());
                    apply(&mut image, &DiskOp::Write { offset: *offset, data: data[..cut].to_vec() });
                }
            }
            CrashMode::Subset { mask } => {
                for (i, op) in pending.iter().enumerate() {
                    if i >= 64 || mask & (1 << i) != 0 {
                        apply(&mut image, op);
                    }
                }
            }
        }
        image
    }

    /// Indices of the operations that are syncs.
    pub fn sync_points(&self) -> Vec<usize> {
        self.lock().history.iter().enumerate().filter(|(_, o)| **o == DiskOp::Sync).map(|(i, _)| i + 1).collect()
    }
}

impl Storage for SimulatedDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.lock().live.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut g = self.lock();
        let end = offset.saturating_add(data.len() as u64);
        // As a reserving FileStorage does: grow (with zeros) so that a whole step lies past
        // the write, in an operation of its own.
        if g.reserved_to.is_some_and(|r| end.saturating_add(g.reserve_step) > r) {
            let step = g.reserve_step;
            let target = (end.div_ceil(step) + 1) * step;
            g.history.push(DiskOp::SetLen(target));
            g.live.set_len(target)?;
            g.reserved_to = Some(target);
        }
        g.history.push(DiskOp::Write { offset, data: data.to_vec() });
        g.live.write_at(offset, data)
    }
    fn len(&self) -> io::Result<u64> {
        self.lock().live.len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut g = self.lock();
        g.history.push(DiskOp::SetLen(len));
        if let Some(r) = &mut g.reserved_to {
            *r = len;
        }
        g.live.set_len(len)
    }
    fn reserve_ahead(&mut self, on: bool) {
        let mut g = self.lock();
        g.reserved_to = (on && g.reserve_step > 0).then_some(g.live.data.len() as u64);
    }
    fn sync(&mut self) -> io::Result<()> {
        self.lock().history.push(DiskOp::Sync);
        Ok(())
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        Ok(self.live_image())
    }
}

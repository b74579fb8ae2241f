//! Bounds-checked little-endian reading and writing of fixed-width fields.

use crate::error::{Error, Result};

/// A bounds-checked reader over a byte slice that knows the file offset of its first byte, so
/// every error can name where in the file it happened.
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    /// Reads `buf`, whose first byte lies at file offset `base`, while decoding `what`.
    pub fn new(buf: &'a [u8], base: u64, what: &'static str) -> Self {
        ByteReader { buf, pos: 0, base, what }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// File offset of the next byte.
    pub fn file_offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Position within the slice.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                what: self.what,
                offset: self.file_offset(),
                needed: n as u64,
                available: self.remaining() as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A little-endian `i64`.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// 16 raw bytes (a UUID).
    pub fn bytes16(&mut self) -> Result<[u8; 16]> {
        self.array()
    }
    /// A `u32` length followed by that many bytes.
    pub fn len_bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A `u32` length followed by that many bytes of UTF-8.
    pub fn str(&mut self) -> Result<&'a str> {
        let at = self.file_offset();
        let b = self.len_bytes()?;
        std::str::from_utf8(b).map_err(|e| self.malformed_at(at, format!("string is not UTF-8: {e}")))
    }
    /// A `u32` count followed by that many (key, value) string pairs.
    pub fn string_map(&mut self) -> Result<Vec<(String, String)>> {
        let n = self.u32()? as usize;
        // Each pair needs at least 8 bytes: bounds the allocation by the input.
        if n > self.remaining() / 8 {
            return Err(self.malformed(format!("map claims {n} entries, only {} bytes left", self.remaining())));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.str()?.to_owned();
            let v = self.str()?.to_owned();
            out.push((k, v));
        }
        Ok(out)
    }
    /// Fails unless every byte was consumed.
    pub fn expect_end(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.malformed(format!("{} unexpected trailing bytes", self.remaining())));
        }
        Ok(())
    }
    /// A `Malformed` error at the current position.
    pub fn malformed(&self, reason: String) -> Error {
        self.malformed_at(self.file_offset(), reason)
    }
    fn malformed_at(&self, offset: u64, reason: String) -> Error {
        Error::Malformed { what: self.what, offset, reason }
    }
}

/// Appends a `u32` length and the bytes.
pub fn put_len_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends a string map: `u32` count, then (key, value) strings.
pub fn put_string_map<'a>(out: &mut Vec<u8>, map: impl ExactSizeIterator<Item = (&'a str, &'a str)>) {
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        put_len_bytes(out, k.as_bytes());
        put_len_bytes(out, v.as_bytes());
    }
}

/// Reads a little-endian `u64` at `at` of a slice the caller has bounds-checked.
#[inline]
pub fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads a little-endian `i64` at `at` of a slice the caller has bounds-checked.
#[inline]
pub fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}

/// Reads a little-endian `u32` at `at` of a slice the caller has bounds-checked.
#[inline]
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian `u16` at `at` of a slice the caller has bounds-checked.
#[inline]
pub fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

//! Typed payloads: `T: Serialize` encoded with bincode 2 (standard configuration), decoded with
//! a size limit scaled to the payload, so a hostile length prefix cannot make us allocate
//! gigabytes from a few bytes.

use crate::error::{Error, Result};
use bincode::config::{standard, Configuration};

/// Encodes a value with bincode's standard configuration.
pub fn encode_value<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, standard()).map_err(|e| Error::Encode(e.to_string()))
}

fn decode_limited<T: serde::de::DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    let config: Configuration<_, _, bincode::config::Limit<N>> = standard().with_limit::<N>();
    let (v, used) = bincode::serde::decode_from_slice(bytes, config)?;
    if used != bytes.len() {
        return Err(bincode::error::DecodeError::OtherString(format!("{} trailing bytes after the value", bytes.len() - used)));
    }
    Ok(v)
}

/// Decodes a value from a payload. Decoded containers may claim at most 64 × the payload size
/// (at least 64 KiB) of memory; `offset` names the frame in errors.
pub fn decode_value<T: serde::de::DeserializeOwned>(bytes: &[u8], offset: u64) -> Result<T> {
    const KIB: usize = 1024;
    let n = bytes.len().saturating_mul(64);
    let r = if n <= 64 * KIB {
        decode_limited::<T, { 64 * KIB }>(bytes)
    } else if n <= 4 * KIB * KIB {
        decode_limited::<T, { 4 * KIB * KIB }>(bytes)
    } else if n <= 256 * KIB * KIB {
        decode_limited::<T, { 256 * KIB * KIB }>(bytes)
    } else {
        decode_limited::<T, { 4 * KIB * KIB * KIB }>(bytes)
    };
    r.map_err(|e| Error::Decode { offset, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_lengths() {
        let v = (1u32, "x".to_string(), vec![1.5f64, 2.5]);
        let b = encode_value(&v).unwrap();
        assert_eq!(decode_value::<(u32, String, Vec<f64>)>(&b, 0).unwrap(), v);
        // A varint length claiming 2^60 elements must fail cleanly, not allocate.
        let hostile = [0xFDu8, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(decode_value::<Vec<u64>>(&hostile, 7).is_err());
        assert!(matches!(decode_value::<u8>(&[1, 2], 9), Err(Error::Decode { offset: 9, .. })));
    }
}

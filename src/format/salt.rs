//! Recovering a session's salt from one of its records when its SessionStart is damaged.
//!
//! A record's CRC is CRC32(salt ‖ bytes 4..). CRC32 can be run backwards: given the stored CRC
//! and the bytes after the salt, the register value after the salt follows, and from it the four
//! salt bytes (any 32-bit register value is reached by exactly one 4-byte prefix). So every
//! framed record yields one candidate salt; a second record that validates with the same salt
//! confirms it (a chance match has probability 2⁻³²).

const POLY: u32 = 0xEDB8_8320;

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// For each top byte, the table index whose entry has it (CRC32's table entries have distinct
/// top bytes).
const fn top_index() -> [u8; 256] {
    let t = table();
    let mut r = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        r[(t[i] >> 24) as usize] = i as u8;
        i += 1;
    }
    r
}

static TOP: [u8; 256] = top_index();

/// The salt `s` such that CRC32(s as LE bytes ‖ `rest`) == `crc`.
pub fn infer_salt(rest: &[u8], crc: u32) -> u32 {
    // Undo the final xor, then run the register backwards over `rest`.
    let mut reg = !crc;
    for &b in rest.iter().rev() {
        let idx = TOP[(reg >> 24) as usize];
        reg = ((reg ^ TABLE[usize::from(idx)]) << 8) | u32::from(idx ^ b);
    }
    // `reg` is now the register after the four salt bytes. The table indices of those four
    // steps follow from its top bytes alone; replay them forward from the initial register.
    let mut idxs = [0u8; 4];
    let mut r = reg;
    for slot in idxs.iter_mut().rev() {
        let idx = TOP[(r >> 24) as usize];
        *slot = idx;
        r = (r ^ TABLE[usize::from(idx)]) << 8;
    }
    let mut state = u32::MAX;
    let mut salt = [0u8; 4];
    for (i, &idx) in idxs.iter().enumerate() {
        salt[i] = (state as u8) ^ idx;
        state = TABLE[usize::from(idx)] ^ (state >> 8);
    }
    u32::from_le_bytes(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(salt: u32, rest: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(&salt.to_le_bytes());
        h.update(rest);
        h.finalize()
    }

    #[test]
    fn inverts_the_crc_for_many_salts_and_lengths() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..300usize {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let salt = (x >> 32) as u32;
            let rest: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8 ^ i as u8).collect();
            assert_eq!(infer_salt(&rest, crc(salt, &rest)), salt, "len {len}");
        }
        for salt in [0, 1, u32::MAX, 0x8000_0000] {
            assert_eq!(infer_salt(b"abc", crc(salt, b"abc")), salt);
        }
    }
}

//! Little-endian byte encoding with bounds checks. [`ByteReader`] never panics on short or
//! malformed input: every read returns `None` past the end, so file readers turn any damage
//! into a corruption error instead of an out-of-bounds access.

/// Appends little-endian values to a `Vec<u8>`.
pub trait PutBytes {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_f64(&mut self, v: f64);
    /// A `u32` length followed by the bytes.
    fn put_bytes32(&mut self, b: &[u8]);
    /// A `u16` length followed by the UTF-8 bytes; callers keep names under 64 KiB.
    fn put_str16(&mut self, s: &str);
}

impl PutBytes for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_f64(&mut self, v: f64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes32(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.extend_from_slice(b);
    }
    fn put_str16(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.put_u16(b.len() as u16);
        self.extend_from_slice(b);
    }
}

/// A cursor over a byte slice whose reads fail softly (`None`) instead of panicking.
#[derive(Clone, Copy)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|s| s.try_into().expect("length checked by take"))
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.arr::<1>().map(|a| a[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.arr().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.arr().map(u64::from_le_bytes)
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.arr().map(i32::from_le_bytes)
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.arr().map(i64::from_le_bytes)
    }
    pub fn f64(&mut self) -> Option<f64> {
        self.arr().map(f64::from_le_bytes)
    }
    pub fn bytes32(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

/// CRC-32 (IEEE, as zlib computes it) of a byte slice.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Reads a little-endian `u32` at `at`, or `None` when out of range.
pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    ByteReader::new(buf.get(at..)?).u32()
}

/// Reads a little-endian `u64` at `at`, or `None` when out of range.
pub fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    ByteReader::new(buf.get(at..)?).u64()
}

/// Reads a size such as `1GiB`, `512 MB`, `64k` or a number of bytes (units are powers of
/// 1024), at least `min` bytes.
pub fn parse_size(s: &str, min: usize) -> crate::Result<usize> {
    parse_size_text(s, min).map_err(crate::Error::Invalid)
}

fn parse_size_text(s: &str, min: usize) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 1GiB, 512MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}' is not a size (e.g. 1GiB, 512MiB)")),
    };
    n.checked_mul(mult)
        .filter(|&b| b >= min)
        .ok_or_else(|| format!("size '{s}' is out of range (at least {min} bytes)"))
}

/// How many bytes of `data` equal `b`. Eight bytes at a time in a `u64` (SWAR): a byte of
/// `w ^ pattern` is zero exactly where `data` holds `b`, and `((x & 0x7f..) + 0x7f..) | x` sets
/// a byte's high bit exactly when the byte is not zero (the addition cannot carry between
/// bytes). Per-byte counters in four words are folded before they could overflow. Near the
/// memory's bandwidth, without `unsafe` or target features (a byte loop the compiler turns
/// into vector code ran at a seventh of it: a tenth of a bulk COPY's time went here).
pub fn count_byte(data: &[u8], b: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = ONES * b as u64;
    let mut total = 0;
    // 255 rounds of 32 bytes: each byte counter takes at most 255.
    let mut blocks = data.chunks_exact(255 * 32);
    for block in &mut blocks {
        let mut acc = [0u64; 4];
        for c in block.chunks_exact(32) {
            for (k, a) in acc.iter_mut().enumerate() {
                let mut w = [0u8; 8];
                w.copy_from_slice(&c[k * 8..k * 8 + 8]);
                let x = u64::from_le_bytes(w) ^ pattern;
                let nonzero = ((x & LOW7) + LOW7) | x;
                *a += (!nonzero >> 7) & ONES;
            }
        }
        // The sum of a word's eight byte counters lands in its top byte (at most 8 * 255,
        // so it is taken per word, before another could be added).
        total += acc
            .iter()
            .map(|&a| {
                ((a & 0x00ff_00ff_00ff_00ff) + ((a >> 8) & 0x00ff_00ff_00ff_00ff)).wrapping_mul(0x0001_0001_0001_0001)
                    >> 48
            })
            .sum::<u64>() as usize;
    }
    total + blocks.remainder().iter().filter(|&&x| x == b).count()
}

#[cfg(test)]
mod count_tests {
    #[test]
    fn counts_every_byte_at_any_length_and_alignment() {
        let data: Vec<u8> =
            (0..20_000u32).map(|i| if i % 7 == 0 || i % 255 == 3 { b'\n' } else { (i % 200) as u8 + 20 }).collect();
        for (from, to) in [(0, 0), (0, 31), (1, 33), (5, 8_200), (3, 20_000), (0, 20_000), (7, 16_327)] {
            let s = &data[from..to];
            assert_eq!(super::count_byte(s, b'\n'), s.iter().filter(|&&x| x == b'\n').count(), "{from}..{to}");
        }
        // Every byte a match: each counter reaches its most (255) before it is folded.
        let all = vec![b'"'; 255 * 32 * 3 + 17];
        assert_eq!(super::count_byte(&all, b'"'), all.len());
        assert_eq!(super::count_byte(&all, 0), 0);
        // Bytes next to the one counted (a carry or borrow between bytes would miscount).
        let near: Vec<u8> = (0..40_000u32).map(|i| [b'\t', b'\n', 0x0b, 0x8a, 0xff, 0][(i % 6) as usize]).collect();
        for b in [b'\n', 0, 0xff, 0x8a] {
            assert_eq!(super::count_byte(&near, b), near.iter().filter(|&&x| x == b).count(), "{b}");
        }
    }
}

//! [`BinVec`] and [`StrVec`]: many byte strings in one buffer (`offsets` plus `data`), so a
//! column of strings is two allocations rather than one per value.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinVec {
    offsets: Vec<u32>,
    data: Vec<u8>,
}

impl Default for BinVec {
    fn default() -> Self {
        BinVec { offsets: vec![0], data: Vec::new() }
    }
}

impl BinVec {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        BinVec { offsets, data: Vec::with_capacity(bytes) }
    }
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn push(&mut self, b: &[u8]) {
        self.data.extend_from_slice(b);
        // Offsets are u32: a wrapped one would cut values (and StrVec's UTF-8) apart.
        self.offsets.push(u32::try_from(self.data.len()).expect("a column holds under 4 GiB of values"));
    }
    #[inline]
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    pub fn data_len(&self) -> usize {
        self.data.len()
    }
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Appends values `start..end` of `other`.
    pub fn extend_range(&mut self, other: &BinVec, start: usize, end: usize) {
        for i in start..end {
            self.push(other.get(i));
        }
    }
    /// Builds from raw parts; `None` if the offsets are not monotonic from 0 to `data.len()`.
    pub fn from_parts(offsets: Vec<u32>, data: Vec<u8>) -> Option<Self> {
        if offsets.first() != Some(&0) || *offsets.last()? as usize != data.len() {
            return None;
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return None;
        }
        Some(BinVec { offsets, data })
    }
}

/// A [`BinVec`] whose every value is UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StrVec(BinVec);

impl StrVec {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        StrVec(BinVec::with_capacity(n, bytes))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn push(&mut self, s: &str) {
        self.0.push(s.as_bytes());
    }
    #[inline]
    #[allow(unsafe_code)]
    pub fn get(&self, i: usize) -> &str {
        let b = self.0.get(i);
        debug_assert!(std::str::from_utf8(b).is_ok());
        // SAFETY: a StrVec is made only by `push(&str)`, `FromIterator<&str>` and `from_bin`,
        // which checks every value, and its BinVec is never handed out mutably; so each
        // value's bytes are a whole &str. Checking again on every read cost 12% of a
        // pipeline's time.
        unsafe { std::str::from_utf8_unchecked(b) }
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    pub fn data_len(&self) -> usize {
        self.0.data_len()
    }
    pub fn offsets(&self) -> &[u32] {
        self.0.offsets()
    }
    pub fn data(&self) -> &[u8] {
        self.0.data()
    }
    pub fn as_bin(&self) -> &BinVec {
        &self.0
    }
    /// Builds from raw parts, checking offsets and that every value is UTF-8.
    pub fn from_parts(offsets: Vec<u32>, data: Vec<u8>) -> Option<Self> {
        Self::from_bin(BinVec::from_parts(offsets, data)?)
    }
    pub fn from_bin(b: BinVec) -> Option<Self> {
        let ok = b.iter().all(|v| std::str::from_utf8(v).is_ok());
        ok.then_some(StrVec(b))
    }
}

/// The sorted distinct values of `values` and each value's index among them, or `None` when
/// there are more than `max_distinct`. One hashing pass; a value equal to the previous one
/// (common in grouped data) is not hashed again.
pub fn dictionary(values: &StrVec, max_distinct: usize) -> Option<(Vec<&str>, Vec<u32>)> {
    use std::collections::HashMap;
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut first_seen: Vec<&str> = Vec::new();
    let mut codes = Vec::with_capacity(values.len());
    let mut prev: Option<(&str, u32)> = None;
    for s in values.iter() {
        let code = match prev {
            Some((p, c)) if p == s => c,
            _ => {
                let next = first_seen.len() as u32;
                let c = *ids.entry(s).or_insert(next);
                if c == next {
                    first_seen.push(s);
                    if first_seen.len() > max_distinct {
                        return None;
                    }
                }
                c
            }
        };
        prev = Some((s, code));
        codes.push(code);
    }
    let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
    order.sort_unstable_by_key(|&i| first_seen[i as usize]);
    let mut rank = vec![0u32; order.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    for c in &mut codes {
        *c = rank[*c as usize];
    }
    Some((order.iter().map(|&i| first_seen[i as usize]).collect(), codes))
}

impl<'a> FromIterator<&'a str> for StrVec {
    fn from_iter<T: IntoIterator<Item = &'a str>>(iter: T) -> Self {
        let mut v = StrVec::default();
        for s in iter {
            v.push(s);
        }
        v
    }
}

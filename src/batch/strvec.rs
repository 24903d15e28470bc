//! [`StrVec`]: many strings in one buffer (`offsets` plus `data`), so a text column is two
//! allocations rather than one per value.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrVec {
    offsets: Vec<u32>,
    data: Vec<u8>,
}

impl Default for StrVec {
    fn default() -> Self {
        StrVec { offsets: vec![0], data: Vec::new() }
    }
}

impl StrVec {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        StrVec { offsets, data: Vec::with_capacity(bytes) }
    }
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn push(&mut self, s: &str) {
        self.data.extend_from_slice(s.as_bytes());
        self.offsets.push(self.data.len() as u32);
    }
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        let b = &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize];
        // Every push takes a &str and every decoder validates, so the bytes are UTF-8.
        std::str::from_utf8(b).unwrap_or("")
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
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
    /// Builds from raw parts, checking that offsets are monotonic, in range and that every
    /// value is UTF-8. `None` means the parts are malformed.
    pub fn from_parts(offsets: Vec<u32>, data: Vec<u8>) -> Option<Self> {
        if offsets.first() != Some(&0) || *offsets.last()? as usize != data.len() {
            return None;
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return None;
        }
        let v = StrVec { offsets, data };
        for i in 0..v.len() {
            std::str::from_utf8(&v.data[v.offsets[i] as usize..v.offsets[i + 1] as usize]).ok()?;
        }
        Some(v)
    }
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

//! [`Bitmap`]: a growable bit vector, used as a column's validity (bit set = value present).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    pub fn new_set(len: usize) -> Self {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last = (1u64 << (len % 64)) - 1;
        }
        Bitmap { words, len }
    }
    pub fn new_unset(len: usize) -> Self {
        Bitmap { words: vec![0; len.div_ceil(64)], len }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        let w = &mut self.words[i / 64];
        if v {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
    pub fn push(&mut self, v: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, v);
    }
    /// Appends `n` bits, all `v` (a word at a time).
    pub fn push_n(&mut self, n: usize, v: bool) {
        let end = self.len + n;
        self.words.resize(end.div_ceil(64), 0);
        if v {
            let mut i = self.len;
            while i < end && !i.is_multiple_of(64) {
                self.set(i, true);
                i += 1;
            }
            while i + 64 <= end {
                self.words[i / 64] = u64::MAX;
                i += 64;
            }
            while i < end {
                self.set(i, true);
                i += 1;
            }
        }
        self.len = end;
    }
    /// Appends `other`'s bits (a word at a time). Bits past `len` are always zero, so a
    /// shifted word brings none of them in.
    /// Bits `from..to` as a bitmap of their own (whole words shifted, not bit by bit).
    pub fn range(&self, from: usize, to: usize) -> Bitmap {
        let len = to.saturating_sub(from);
        let (base, shift) = (from / 64, from % 64);
        let word = |k: usize| self.words.get(k).copied().unwrap_or(0);
        let mut words: Vec<u64> =
            (0..len.div_ceil(64))
                .map(|k| {
                    if shift == 0 {
                        word(base + k)
                    } else {
                        word(base + k) >> shift | word(base + k + 1) << (64 - shift)
                    }
                })
                .collect();
        // Bits past the end stay clear, as everywhere else.
        if !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last &= (1u64 << (len % 64)) - 1;
        }
        Bitmap { words, len }
    }
    pub fn append(&mut self, other: &Bitmap) {
        let end = self.len + other.len;
        let (base, shift) = (self.len / 64, self.len % 64);
        self.words.resize(end.div_ceil(64), 0);
        for (k, &w) in other.words.iter().enumerate() {
            if shift == 0 {
                self.words[base + k] = w;
            } else {
                self.words[base + k] |= w << shift;
                if let Some(next) = self.words.get_mut(base + k + 1) {
                    *next |= w >> (64 - shift);
                }
            }
        }
        self.len = end;
    }
    pub fn count_set(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn count_unset(&self) -> usize {
        self.len - self.count_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_words_is_pushing_bits() {
        // Every start offset within a word, lengths across word boundaries, both fills.
        for a in [0usize, 1, 5, 63, 64, 65, 130] {
            for b in [0usize, 1, 3, 63, 64, 65, 200] {
                let bit = |i: usize| (i * 7 + i / 3) % 5 < 2;
                let mut x = Bitmap::default();
                let mut y = Bitmap::default();
                (0..a).for_each(|i| x.push(bit(i)));
                (0..a).for_each(|i| y.push(bit(i)));
                let mut other = Bitmap::default();
                (0..b).for_each(|i| other.push(bit(i + 1000)));
                x.append(&other);
                (0..b).for_each(|i| y.push(bit(i + 1000)));
                assert_eq!(x, y, "append {a} + {b}");
                for v in [true, false] {
                    let (mut p, mut q) = (x.clone(), x.clone());
                    p.push_n(b, v);
                    (0..b).for_each(|_| q.push(v));
                    assert_eq!(p, q, "push_n {a} + {b} of {v}");
                    assert_eq!(p.count_set(), (0..p.len()).filter(|&i| p.get(i)).count());
                }
            }
        }
    }

    #[test]
    fn a_range_is_its_bits() {
        let bit = |i: usize| (i * 7 + i / 3) % 5 < 2;
        let mut all = Bitmap::default();
        (0..300).for_each(|i| all.push(bit(i)));
        for from in [0usize, 1, 31, 63, 64, 65, 128, 200, 300] {
            for to in [from, from + 1, from + 63, from + 64, from + 65, 300] {
                let to = to.min(300);
                let mut want = Bitmap::default();
                (from..to).for_each(|i| want.push(bit(i)));
                // Equal words too: bits past the end are clear.
                assert_eq!(all.range(from, to), want, "{from}..{to}");
            }
        }
    }
}

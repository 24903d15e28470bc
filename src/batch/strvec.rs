//! [`BinVec`] and [`StrVec`]: many byte strings in one buffer (`offsets` plus `data`), so a
//! column of strings is two allocations rather than one per value.

use std::sync::Arc;

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

/// A column of UTF-8 strings, held one of two ways:
/// - plain: the values' bytes one after another ([`BinVec`]);
/// - coded: an index per value into a dictionary shared with other vectors (a datastore
///   file's column dictionary), as the file stores them. Nothing is copied per value, and
///   operators that understand codes (grouping, joins, comparisons with a constant) work on
///   them; any other reader sees the same strings through [`StrVec::get`].
///
/// Every mutation keeps the two ways consistent: pushing onto a coded vector first turns it
/// plain, so a code never outlives the value it stood for.
#[derive(Clone, Debug)]
pub struct StrVec(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Plain(BinVec),
    /// Every code is below `dict.len()` (checked where the vector is made).
    Coded {
        dict: Arc<StrVec>,
        codes: Vec<u32>,
    },
}

impl Default for StrVec {
    fn default() -> Self {
        StrVec(Repr::Plain(BinVec::default()))
    }
}

/// Equal when they hold the same strings, whichever way.
impl PartialEq for StrVec {
    fn eq(&self, other: &StrVec) -> bool {
        match (&self.0, &other.0) {
            (Repr::Plain(a), Repr::Plain(b)) => a == b,
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}
impl Eq for StrVec {}

impl StrVec {
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        StrVec(Repr::Plain(BinVec::with_capacity(n, bytes)))
    }
    /// A coded vector: value *i* is `dict[codes[i]]`. `None` if a code is out of range. The
    /// dictionary's values are distinct (a file's dictionary, or one made by [`dictionary`] or
    /// by merging two): operators take a code for a value, and grouping or DISTINCT by codes
    /// would count a repeated value twice.
    pub fn coded(dict: Arc<StrVec>, codes: Vec<u32>) -> Option<Self> {
        // The greatest code, not a search for a bad one: a reduction the compiler vectorizes.
        if codes.iter().copied().max().is_some_and(|c| c as usize >= dict.len()) {
            return None;
        }
        Some(StrVec(Repr::Coded { dict, codes }))
    }
    /// The dictionary and codes, when the vector is coded.
    pub fn codes(&self) -> Option<(&Arc<StrVec>, &[u32])> {
        match &self.0 {
            Repr::Coded { dict, codes } => Some((dict, codes)),
            Repr::Plain(_) => None,
        }
    }
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Plain(b) => b.len(),
            Repr::Coded { codes, .. } => codes.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The plain bytes to append to, decoding a coded vector first.
    fn plain_mut(&mut self) -> &mut BinVec {
        if let Repr::Coded { dict, codes } = &self.0 {
            let mut b = BinVec::with_capacity(codes.len(), codes.len() * 8);
            codes.iter().for_each(|&c| b.push(dict.get(c as usize).as_bytes()));
            self.0 = Repr::Plain(b);
        }
        match &mut self.0 {
            Repr::Plain(b) => b,
            Repr::Coded { .. } => unreachable!("made plain above"),
        }
    }
    pub fn push(&mut self, s: &str) {
        self.plain_mut().push(s.as_bytes());
    }
    #[inline]
    #[allow(unsafe_code)]
    pub fn get(&self, i: usize) -> &str {
        match &self.0 {
            Repr::Plain(p) => {
                let b = p.get(i);
                debug_assert!(std::str::from_utf8(b).is_ok());
                // SAFETY: a plain StrVec is made only by `push(&str)`, `FromIterator<&str>`
                // and `from_bin`, which checks every value, and its BinVec is never handed out
                // mutably; so each value's bytes are a whole &str. Checking again on every
                // read cost 12% of a pipeline's time.
                unsafe { std::str::from_utf8_unchecked(b) }
            }
            Repr::Coded { dict, codes } => dict.get(codes[i] as usize),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    /// Bytes of all values together (as they would be stored plain).
    pub fn data_len(&self) -> usize {
        match &self.0 {
            Repr::Plain(b) => b.data_len(),
            Repr::Coded { dict, codes } => codes.iter().map(|&c| dict.get(c as usize).len()).sum(),
        }
    }
    /// Bytes this vector holds of its own (a coded one shares its dictionary).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Plain(b) => b.data_len() + 4 * (b.len() + 1),
            Repr::Coded { codes, .. } => 4 * codes.len(),
        }
    }
    /// The values as plain bytes (made for a coded vector).
    pub fn as_bin(&self) -> std::borrow::Cow<'_, BinVec> {
        match &self.0 {
            Repr::Plain(b) => std::borrow::Cow::Borrowed(b),
            Repr::Coded { .. } => {
                let mut v = self.clone();
                v.plain_mut();
                match v.0 {
                    Repr::Plain(b) => std::borrow::Cow::Owned(b),
                    Repr::Coded { .. } => unreachable!("made plain above"),
                }
            }
        }
    }
    /// The values at `idx`, in that order (codes stay codes).
    pub fn take(&self, idx: &[u32]) -> StrVec {
        match &self.0 {
            Repr::Plain(_) => {
                let mut out = StrVec::with_capacity(idx.len(), self.data_len().min(idx.len() * 16));
                idx.iter().for_each(|&i| out.push(self.get(i as usize)));
                out
            }
            Repr::Coded { dict, codes } => {
                StrVec(Repr::Coded { dict: dict.clone(), codes: idx.iter().map(|&i| codes[i as usize]).collect() })
            }
        }
    }
    /// Keeps only values `from..to` (codes in place).
    pub fn keep_range(&mut self, from: usize, to: usize) {
        match &mut self.0 {
            Repr::Coded { codes, .. } => {
                codes.truncate(to);
                codes.drain(..from);
            }
            Repr::Plain(_) => *self = self.take(&(from as u32..to as u32).collect::<Vec<u32>>()),
        }
    }
    /// Appends `other`'s values: codes of the same dictionary are appended as codes.
    pub fn extend(&mut self, other: &StrVec) {
        if let (Repr::Coded { dict: a, codes }, Repr::Coded { dict: b, codes: more }) = (&mut self.0, &other.0)
            && Arc::ptr_eq(a, b)
        {
            codes.extend_from_slice(more);
            return;
        }
        if self.is_empty() && other.codes().is_some() {
            *self = other.clone();
            return;
        }
        if let (Repr::Coded { dict: a, codes }, Repr::Coded { dict: b, codes: more }) = (&mut self.0, &other.0)
            && a.len() + b.len() <= 2 * more.len() + 256
        {
            // Two dictionaries (two pieces of a COPY parsed apart, two files' blocks): one
            // made of both, and `other`'s codes mapped into it. Only while the dictionaries
            // are small beside the rows appended, so that merging costs no more than copying
            // those rows would (and repeated appends stay linear).
            let mut ids: std::collections::HashMap<&str, u32, foldhash::fast::RandomState> = Default::default();
            ids.reserve(a.len() + b.len());
            let mut merged = StrVec::with_capacity(a.len() + b.len(), a.data_len() + b.data_len());
            for s in a.iter() {
                ids.insert(s, merged.len() as u32);
                merged.push(s);
            }
            let map: Vec<u32> = b
                .iter()
                .map(|s| {
                    *ids.entry(s).or_insert_with(|| {
                        merged.push(s);
                        merged.len() as u32 - 1
                    })
                })
                .collect();
            drop(ids);
            codes.extend(more.iter().map(|&c| map[c as usize]));
            *a = Arc::new(merged);
            return;
        }
        let b = self.plain_mut();
        other.iter().for_each(|s| b.push(s.as_bytes()));
    }
    /// Builds from raw parts, checking offsets and that every value is UTF-8.
    pub fn from_parts(offsets: Vec<u32>, data: Vec<u8>) -> Option<Self> {
        Self::from_bin(BinVec::from_parts(offsets, data)?)
    }
    pub fn from_bin(b: BinVec) -> Option<Self> {
        let ok = b.iter().all(|v| std::str::from_utf8(v).is_ok());
        ok.then_some(StrVec(Repr::Plain(b)))
    }
}

/// The sorted distinct values of `values` and each value's index among them, or `None` when
/// there are more than `max_distinct`. One hashing pass; a value equal to the previous one
/// (common in grouped data) is not hashed again.
pub fn dictionary(values: &StrVec, max_distinct: usize) -> Option<(Vec<&str>, Vec<u32>)> {
    let mut first_seen: Vec<&str> = Vec::new();
    let mut codes = Vec::with_capacity(values.len());
    match &values.0 {
        // Coded (and its dictionary not much larger than it): a value's first-seen index is
        // found by its code in an array, nothing hashed or compared. The dictionary's values
        // are distinct, so distinct codes are distinct values.
        Repr::Coded { dict, codes: given } if dict.len() <= 4 * given.len() + 1024 => {
            let mut id = vec![u32::MAX; dict.len()];
            for &c in given {
                let slot = &mut id[c as usize];
                if *slot == u32::MAX {
                    *slot = first_seen.len() as u32;
                    first_seen.push(dict.get(c as usize));
                    if first_seen.len() > max_distinct {
                        return None;
                    }
                }
                codes.push(*slot);
            }
        }
        _ => first_seen_codes(values, max_distinct, &mut first_seen, &mut codes)?,
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

/// [`dictionary`]'s first pass by hashing: the distinct values in the order first seen and
/// each value's index among them; `None` past `max_distinct`.
fn first_seen_codes<'a>(
    values: &'a StrVec,
    max_distinct: usize,
    first_seen: &mut Vec<&'a str>,
    codes: &mut Vec<u32>,
) -> Option<()> {
    let mut ids: std::collections::HashMap<&str, u32, foldhash::fast::RandomState> = Default::default();
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
    Some(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Arc<StrVec> {
        Arc::new(["ALARM", "idle", "running"].into_iter().collect())
    }

    #[test]
    fn coded_values_read_like_plain_ones() {
        let v = StrVec::coded(dict(), vec![2, 2, 0, 1]).unwrap();
        let plain: StrVec = ["running", "running", "ALARM", "idle"].into_iter().collect();
        assert_eq!(v, plain);
        assert_eq!(v.iter().collect::<Vec<_>>(), plain.iter().collect::<Vec<_>>());
        assert_eq!(v.data_len(), plain.data_len());
        assert_eq!(*v.as_bin(), *plain.as_bin());
        assert!(StrVec::coded(dict(), vec![3]).is_none(), "a code past the dictionary is refused");
    }

    #[test]
    fn a_push_makes_a_coded_vector_plain_and_keeps_its_values() {
        let mut v = StrVec::coded(dict(), vec![1, 2]).unwrap();
        v.push("new");
        assert!(v.codes().is_none());
        assert_eq!(v.iter().collect::<Vec<_>>(), ["idle", "running", "new"]);
    }

    /// The dictionary of a coded vector (read from its codes) is the one hashing its
    /// strings finds: sorted distinct values of the rows (not of the whole dictionary).
    #[test]
    fn dictionary_of_codes_is_dictionary_of_strings() {
        let d: Arc<StrVec> = Arc::new(["m3", "m1", "", "m2", "unused"].into_iter().collect());
        let codes = vec![0, 0, 1, 3, 2, 1, 0, 3];
        let coded = StrVec::coded(d, codes).unwrap();
        let plain: StrVec = coded.iter().collect();
        assert!(plain.codes().is_none());
        let (a, b) = (dictionary(&coded, 10).unwrap(), dictionary(&plain, 10).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.0, ["", "m1", "m2", "m3"]);
        assert_eq!(dictionary(&coded, 3), None);
        assert_eq!(dictionary(&plain, 3), None);
    }

    #[test]
    fn take_and_extend_keep_codes_and_merge_small_dictionaries() {
        let d = dict();
        let v = StrVec::coded(d.clone(), vec![0, 1, 2, 1]).unwrap();
        let t = v.take(&[3, 0]);
        assert_eq!(t.codes().map(|(_, c)| c.to_vec()), Some(vec![1, 0]));
        assert_eq!(t.iter().collect::<Vec<_>>(), ["idle", "ALARM"]);
        let mut same = StrVec::coded(d, vec![2]).unwrap();
        same.extend(&t);
        assert_eq!(same.codes().map(|(_, c)| c.to_vec()), Some(vec![2, 1, 0]));
        // Another dictionary: one made of both (each value once), the values kept.
        let mut other = StrVec::coded(Arc::new(["idle", "zz"].into_iter().collect()), vec![1, 0]).unwrap();
        other.extend(&t);
        let (merged, codes) = other.codes().expect("small dictionaries merge");
        assert_eq!(merged.iter().collect::<Vec<_>>(), ["idle", "zz", "ALARM", "running"]);
        assert_eq!(codes, [1, 0, 0, 2]);
        assert_eq!(other.iter().collect::<Vec<_>>(), ["zz", "idle", "idle", "ALARM"]);
        // A dictionary large beside the rows appended is not merged: the values go plain.
        let big: Arc<StrVec> =
            Arc::new((0..400).map(|i| format!("v{i}")).collect::<Vec<_>>().iter().map(|s| s.as_str()).collect());
        let mut plain = StrVec::coded(dict(), vec![0]).unwrap();
        plain.extend(&StrVec::coded(big, vec![399]).unwrap());
        assert!(plain.codes().is_none());
        assert_eq!(plain.iter().collect::<Vec<_>>(), ["ALARM", "v399"]);
        let mut empty = StrVec::default();
        empty.extend(&t);
        assert_eq!(empty.codes().map(|(_, c)| c.len()), Some(2));
    }
}

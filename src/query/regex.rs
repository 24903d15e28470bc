//! Regular expressions for the `~`, `~*`, `!~`, `!~*` operators: PostgreSQL's syntax for the
//! common cases (literals, `.`, bracket classes with ranges and `[:alpha:]`-style names, `\d \w
//! \s` and their negations, anchors, groups, alternation, `* + ? {m,n}` and their lazy forms).
//! Matching backtracks with a step budget, so a pathological pattern ends in an error instead of
//! running forever.

use super::error::{SqlError, SqlResult};

#[derive(Clone, Debug)]
enum Node {
    Char(char),
    Any,
    Class { negated: bool, items: Vec<ClassItem> },
    Start,
    End,
    Alt(Vec<Vec<Node>>),
    Repeat { node: Box<Node>, min: u32, max: u32, lazy: bool },
}

#[derive(Clone, Debug)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
    Named(&'static str),
}

#[derive(Clone, Debug)]
pub(crate) struct Regex {
    seq: Vec<Node>,
    case_insensitive: bool,
}

const STEP_BUDGET: u64 = 5_000_000;

fn bad(msg: &str) -> SqlError {
    SqlError::new("2201B", format!("invalid regular expression: {msg}"))
}

impl Regex {
    pub(crate) fn new(pattern: &str, case_insensitive: bool) -> SqlResult<Regex> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser { c: &chars, i: 0, ci: case_insensitive };
        let alts = p.alternation()?;
        if p.i != chars.len() {
            return Err(bad("parentheses () not balanced"));
        }
        Ok(Regex { seq: vec![Node::Alt(alts)], case_insensitive })
    }

    /// Whether the pattern matches anywhere in `s`.
    pub(crate) fn is_match(&self, s: &str) -> SqlResult<bool> {
        let text: Vec<char> =
            if self.case_insensitive { s.chars().flat_map(char::to_lowercase).collect() } else { s.chars().collect() };
        let m = Matcher { text: &text, steps: std::cell::Cell::new(0) };
        for start in 0..=text.len() {
            if m.seq(&self.seq, start, &mut |_| true) {
                return Ok(true);
            }
            if m.steps.get() > STEP_BUDGET {
                return Err(SqlError::new("54001", "regular expression is too complex to match"));
            }
        }
        Ok(false)
    }
}

struct Parser<'a> {
    c: &'a [char],
    i: usize,
    ci: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn alternation(&mut self) -> SqlResult<Vec<Vec<Node>>> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }
    fn sequence(&mut self) -> SqlResult<Vec<Node>> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            seq.push(self.quantified(atom)?);
        }
        Ok(seq)
    }
    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.c[start..self.i].iter().collect::<String>().parse().ok()
    }
    fn quantified(&mut self, mut atom: Node) -> SqlResult<Node> {
        loop {
            let (min, max) = match self.peek() {
                Some('*') => (0, u32::MAX),
                Some('+') => (1, u32::MAX),
                Some('?') => (0, 1),
                Some('{') if self.c.get(self.i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    self.i += 1;
                    let min = self.number().ok_or_else(|| bad("invalid repetition count(s)"))?;
                    let max = if self.peek() == Some(',') {
                        self.i += 1;
                        if self.peek() == Some('}') {
                            u32::MAX
                        } else {
                            self.number().ok_or_else(|| bad("invalid repetition count(s)"))?
                        }
                    } else {
                        min
                    };
                    if self.peek() != Some('}') || max < min || min > 255 || (max != u32::MAX && max > 255) {
                        return Err(bad("invalid repetition count(s)"));
                    }
                    (min, max)
                }
                _ => return Ok(atom),
            };
            self.i += 1;
            if matches!(atom, Node::Start | Node::End) {
                return Err(bad("quantifier operand invalid"));
            }
            let lazy = self.peek() == Some('?');
            if lazy {
                self.i += 1;
            }
            atom = Node::Repeat { node: Box::new(atom), min, max, lazy };
        }
    }
    fn lit(&self, c: char) -> Node {
        Node::Char(if self.ci { c.to_lowercase().next().unwrap_or(c) } else { c })
    }
    fn atom(&mut self) -> SqlResult<Node> {
        let c = self.peek().ok_or_else(|| bad("unexpected end"))?;
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return Err(bad("quantifier operand invalid")),
            '(' => {
                if self.c.get(self.i..self.i + 2) == Some(&['?', ':']) {
                    self.i += 2;
                }
                let alts = self.alternation()?;
                if self.peek() != Some(')') {
                    return Err(bad("parentheses () not balanced"));
                }
                self.i += 1;
                Node::Alt(alts)
            }
            '[' => self.class()?,
            '\\' => {
                let e = self.peek().ok_or_else(|| bad("invalid escape \\ sequence"))?;
                self.i += 1;
                match e {
                    'd' | 'D' => Node::Class { negated: false, items: vec![ClassItem::Digit(e == 'D')] },
                    'w' | 'W' => Node::Class { negated: false, items: vec![ClassItem::Word(e == 'W')] },
                    's' | 'S' => Node::Class { negated: false, items: vec![ClassItem::Space(e == 'S')] },
                    'n' => Node::Char('\n'),
                    't' => Node::Char('\t'),
                    c if c.is_ascii_alphanumeric() => return Err(bad("invalid escape \\ sequence")),
                    c => self.lit(c),
                }
            }
            c => self.lit(c),
        })
    }
    fn class(&mut self) -> SqlResult<Node> {
        let negated = self.peek() == Some('^');
        if negated {
            self.i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek().ok_or_else(|| bad("brackets [] not balanced"))?;
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            if c == '[' && self.peek() == Some(':') {
                let rest: String = self.c[self.i + 1..].iter().collect();
                let end = rest.find(":]").ok_or_else(|| bad("brackets [] not balanced"))?;
                let name = match &rest[..end] {
                    "alpha" => "alpha",
                    "digit" => "digit",
                    "alnum" => "alnum",
                    "upper" => "upper",
                    "lower" => "lower",
                    "space" => "space",
                    "punct" => "punct",
                    "xdigit" => "xdigit",
                    _ => return Err(bad("invalid character class")),
                };
                self.i += 1 + end + 2;
                items.push(ClassItem::Named(name));
                continue;
            }
            let c = if c == '\\' {
                let e = self.peek().ok_or_else(|| bad("brackets [] not balanced"))?;
                self.i += 1;
                match e {
                    'd' => {
                        items.push(ClassItem::Digit(false));
                        continue;
                    }
                    'w' => {
                        items.push(ClassItem::Word(false));
                        continue;
                    }
                    's' => {
                        items.push(ClassItem::Space(false));
                        continue;
                    }
                    e => e,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.c.get(self.i + 1).is_some_and(|&n| n != ']') {
                let hi = self.c[self.i + 1];
                self.i += 2;
                if hi < c {
                    return Err(bad("invalid character range"));
                }
                items.push(ClassItem::Range(c, hi));
            } else {
                items.push(ClassItem::Range(c, c));
            }
        }
        if self.ci {
            let mut extra = Vec::new();
            for it in &items {
                if let ClassItem::Range(a, b) = it
                    && a == b
                {
                    let l = a.to_lowercase().next().unwrap_or(*a);
                    extra.push(ClassItem::Range(l, l));
                } else if let ClassItem::Range(a, b) = it
                    && a.is_ascii_uppercase()
                    && b.is_ascii_uppercase()
                {
                    extra.push(ClassItem::Range(a.to_ascii_lowercase(), b.to_ascii_lowercase()));
                }
            }
            items.extend(extra);
        }
        Ok(Node::Class { negated, items })
    }
}

fn class_has(items: &[ClassItem], c: char) -> bool {
    items.iter().any(|it| match *it {
        ClassItem::Range(a, b) => a <= c && c <= b,
        ClassItem::Digit(neg) => c.is_ascii_digit() != neg,
        ClassItem::Word(neg) => (c.is_alphanumeric() || c == '_') != neg,
        ClassItem::Space(neg) => c.is_whitespace() != neg,
        ClassItem::Named(n) => match n {
            "alpha" => c.is_alphabetic(),
            "digit" => c.is_ascii_digit(),
            "alnum" => c.is_alphanumeric(),
            "upper" => c.is_uppercase(),
            "lower" => c.is_lowercase(),
            "space" => c.is_whitespace(),
            "punct" => c.is_ascii_punctuation(),
            _ => c.is_ascii_hexdigit(),
        },
    })
}

struct Matcher<'t> {
    text: &'t [char],
    steps: std::cell::Cell<u64>,
}

impl Matcher<'_> {
    /// Counts a step; false once the budget is spent (every path then fails).
    fn step(&self) -> bool {
        let s = self.steps.get() + 1;
        self.steps.set(s);
        s <= STEP_BUDGET
    }

    fn single(&self, node: &Node, pos: usize) -> bool {
        match node {
            Node::Char(c) => self.text.get(pos) == Some(c),
            Node::Any => pos < self.text.len(),
            Node::Class { negated, items } => self.text.get(pos).is_some_and(|&c| class_has(items, c) != *negated),
            _ => false,
        }
    }

    /// Matches `seq` at `pos`, then asks `k` whether what follows matches from where it ended.
    fn seq(&self, seq: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        if !self.step() {
            return false;
        }
        let Some((first, rest)) = seq.split_first() else { return k(pos) };
        match first {
            Node::Char(_) | Node::Any | Node::Class { .. } => self.single(first, pos) && self.seq(rest, pos + 1, k),
            Node::Start => pos == 0 && self.seq(rest, pos, k),
            Node::End => pos == self.text.len() && self.seq(rest, pos, k),
            Node::Alt(alts) => {
                for a in alts {
                    if self.seq(a, pos, &mut |p| self.seq(rest, p, &mut *k)) {
                        return true;
                    }
                }
                false
            }
            Node::Repeat { node, min, max, lazy } => {
                if let Node::Char(_) | Node::Any | Node::Class { .. } = node.as_ref() {
                    // One character per repetition: count the run, then try lengths in order,
                    // without recursing once per character.
                    let mut n = 0u32;
                    while n < *max && self.single(node, pos + n as usize) {
                        n += 1;
                    }
                    if n < *min {
                        return false;
                    }
                    if *lazy {
                        (*min..=n).any(|j| self.step() && self.seq(rest, pos + j as usize, &mut *k))
                    } else {
                        (*min..=n).rev().any(|j| self.step() && self.seq(rest, pos + j as usize, &mut *k))
                    }
                } else {
                    self.repeat(node, *min, *max, *lazy, 0, pos, rest, k)
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &self,
        node: &Node,
        min: u32,
        max: u32,
        lazy: bool,
        count: u32,
        pos: usize,
        rest: &[Node],
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if !self.step() {
            return false;
        }
        if lazy && count >= min && self.seq(rest, pos, k) {
            return true;
        }
        // One more repetition, then the others; an empty repetition past the minimum makes no
        // progress and is not tried.
        if count < max
            && self.seq(std::slice::from_ref(node), pos, &mut |p| {
                !(p == pos && count >= min) && self.repeat(node, min, max, lazy, count + 1, p, rest, &mut *k)
            })
        {
            return true;
        }
        !lazy && count >= min && self.seq(rest, pos, k)
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn m(p: &str, s: &str) -> bool {
        Regex::new(p, false).unwrap().is_match(s).unwrap()
    }

    #[test]
    fn matches_like_postgres() {
        assert!(m("^(machines)$", "machines"));
        assert!(!m("^(machines)$", "machines2"));
        assert!(m("^(mach.*)$", "machines"));
        assert!(m("^pg_toast", "pg_toast_1"));
        assert!(!m("^pg_toast", "xpg_toast"));
        assert!(m("M-\\d{4}", "id M-0042 x"));
        assert!(!m("M-\\d{4}$", "M-042"));
        assert!(m("a(b|cd)+e", "xacdbcde"));
        assert!(m("^[a-c[:digit:]]+$", "ab12c"));
        assert!(!m("^[^a-c]+$", "xyzb"));
        assert!(m("colou?r", "color"));
        assert!(m("^(a|ab)(c|bcd)(d*)$", "abcd"));
        assert!(m("", "anything"));
        assert!(Regex::new("TEMP", true).unwrap().is_match("temperature").unwrap());
        assert!(Regex::new("[A-Z]+", true).unwrap().is_match("abc").unwrap());
    }

    #[test]
    fn rejects_bad_patterns_and_bounds_work() {
        for p in ["(a", "a)", "[a", "*a", "a{3,2}", "\\q"] {
            assert_eq!(Regex::new(p, false).unwrap_err().sqlstate, "2201B", "{p}");
        }
        let long = "a".repeat(100_000);
        assert!(m("^a*$", &long));
        // Exponential backtracking ends in a clear error (or an answer), never a hang.
        let r = Regex::new("^(a|aa)*b$", false).unwrap().is_match(&"a".repeat(60));
        assert!(matches!(&r, Ok(false)) || r.unwrap_err().sqlstate == "54001");
    }
}

//! A compiled rule condition over test results, evaluated on row bitmaps.

use super::bitset::Bitset;

/// Index of a test in the compiled plan.
pub(crate) type TestId = u32;

/// A boolean expression over test results (leaves are test ids once compiled).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr<L = TestId> {
    /// The rows where a test holds.
    Test(L),
    /// Every row.
    True,
    /// No row.
    False,
    /// Rows where the inner expression does not hold.
    Not(Box<Expr<L>>),
    /// Rows where every part holds.
    And(Vec<Expr<L>>),
    /// Rows where any part holds.
    Or(Vec<Expr<L>>),
    /// Rows where at least `n` parts hold.
    AtLeast(usize, Vec<Expr<L>>),
}

impl<L> Expr<L> {
    /// The same expression with every leaf replaced by `f(leaf)`.
    pub(crate) fn map_tests<M>(self, f: &mut dyn FnMut(L) -> M) -> Expr<M> {
        let all = |parts: Vec<Expr<L>>, f: &mut dyn FnMut(L) -> M| -> Vec<Expr<M>> {
            parts.into_iter().map(|p| p.map_tests(f)).collect()
        };
        match self {
            Expr::Test(l) => Expr::Test(f(l)),
            Expr::True => Expr::True,
            Expr::False => Expr::False,
            Expr::Not(x) => Expr::Not(Box::new(x.map_tests(f))),
            Expr::And(p) => Expr::And(all(p, f)),
            Expr::Or(p) => Expr::Or(all(p, f)),
            Expr::AtLeast(n, p) => Expr::AtLeast(n, all(p, f)),
        }
    }

    /// Calls `f` on every leaf, in place.
    pub(crate) fn leaves_mut(&mut self, f: &mut impl FnMut(&mut L)) {
        match self {
            Expr::Test(l) => f(l),
            Expr::True | Expr::False => {}
            Expr::Not(x) => x.leaves_mut(f),
            Expr::And(p) | Expr::Or(p) | Expr::AtLeast(_, p) => {
                p.iter_mut().for_each(|x| x.leaves_mut(f));
            }
        }
    }

    /// Simplifies constants away.
    pub(crate) fn simplify(self) -> Expr<L> {
        match self {
            Expr::Not(inner) => match inner.simplify() {
                Expr::True => Expr::False,
                Expr::False => Expr::True,
                Expr::Not(x) => *x,
                other => Expr::Not(Box::new(other)),
            },
            Expr::And(parts) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts.into_iter().map(Expr::simplify) {
                    match p {
                        Expr::False => return Expr::False,
                        Expr::True => {}
                        Expr::And(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                match out.len() {
                    0 => Expr::True,
                    1 => out.pop().unwrap_or(Expr::True),
                    _ => Expr::And(out),
                }
            }
            Expr::Or(parts) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts.into_iter().map(Expr::simplify) {
                    match p {
                        Expr::True => return Expr::True,
                        Expr::False => {}
                        Expr::Or(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                match out.len() {
                    0 => Expr::False,
                    1 => out.pop().unwrap_or(Expr::False),
                    _ => Expr::Or(out),
                }
            }
            Expr::AtLeast(n, parts) => {
                let parts: Vec<Expr<L>> = parts.into_iter().map(Expr::simplify).collect();
                if n == 0 {
                    Expr::True
                } else if n > parts.len() {
                    Expr::False
                } else if n == 1 {
                    Expr::Or(parts).simplify()
                } else if n == parts.len() {
                    Expr::And(parts).simplify()
                } else {
                    Expr::AtLeast(n, parts)
                }
            }
            other => other,
        }
    }
}

/// The result of evaluating an expression on a batch, without allocating for the
/// common all-clear and all-set cases.
#[derive(Debug, Clone)]
pub(crate) enum Rows<'a> {
    /// No row.
    None,
    /// Every row.
    All,
    /// Borrowed test result.
    Borrowed(&'a Bitset),
    /// Computed.
    Owned(Bitset),
}

impl<'a> Rows<'a> {
    fn into_owned(self, len: usize) -> Bitset {
        match self {
            Rows::None => Bitset::empty(len),
            Rows::All => Bitset::full(len),
            Rows::Borrowed(b) => b.clone(),
            Rows::Owned(b) => b,
        }
    }

    fn normalized(self) -> Rows<'a> {
        match self {
            Rows::Owned(b) if b.is_empty() => Rows::None,
            other => other,
        }
    }

    /// Whether no row is set.
    pub(crate) fn is_none(&self) -> bool {
        matches!(self, Rows::None)
    }

    /// As a bitmap.
    pub(crate) fn into_bitset(self, len: usize) -> Bitset {
        self.into_owned(len)
    }
}

/// Evaluates `expr` given each test's rows (`None` where a test holds nowhere).
pub(crate) fn eval<'a>(expr: &Expr, hits: &'a [Option<Bitset>], len: usize) -> Rows<'a> {
    match expr {
        Expr::Test(t) => match hits.get(*t as usize) {
            Some(Some(b)) => Rows::Borrowed(b),
            _ => Rows::None,
        },
        Expr::True => Rows::All,
        Expr::False => Rows::None,
        Expr::Not(x) => match eval(x, hits, len) {
            Rows::None => Rows::All,
            Rows::All => Rows::None,
            other => {
                let mut b = other.into_owned(len);
                b.invert();
                Rows::Owned(b).normalized()
            }
        },
        Expr::And(parts) => {
            // Evaluate the cheap, selective parts first: a clear result ends it.
            let mut acc: Option<Rows<'a>> = None;
            for p in parts {
                let r = eval(p, hits, len);
                acc = Some(match (acc, r) {
                    (_, Rows::None) => return Rows::None,
                    (None, r) => r,
                    (Some(Rows::All), r) => r,
                    (Some(a), Rows::All) => a,
                    (Some(a), r) => {
                        let mut b = a.into_owned(len);
                        match &r {
                            Rows::Borrowed(x) => b.and_with(x),
                            Rows::Owned(x) => b.and_with(x),
                            _ => {}
                        }
                        let out = Rows::Owned(b).normalized();
                        if out.is_none() {
                            return Rows::None;
                        }
                        out
                    }
                });
            }
            acc.unwrap_or(Rows::All)
        }
        Expr::Or(parts) => {
            let mut acc = Rows::None;
            for p in parts {
                let r = eval(p, hits, len);
                acc = match (acc, r) {
                    (_, Rows::All) => return Rows::All,
                    (a, Rows::None) => a,
                    (Rows::None, r) => r,
                    (a, r) => {
                        let mut b = a.into_owned(len);
                        match &r {
                            Rows::Borrowed(x) => b.or_with(x),
                            Rows::Owned(x) => b.or_with(x),
                            _ => {}
                        }
                        Rows::Owned(b)
                    }
                };
            }
            acc
        }
        Expr::AtLeast(n, parts) => {
            let mut counts = vec![0usize; len];
            for p in parts {
                match eval(p, hits, len) {
                    Rows::None => {}
                    Rows::All => counts.iter_mut().for_each(|c| *c += 1),
                    other => {
                        for row in other.into_owned(len).rows() {
                            if let Some(c) = counts.get_mut(row) {
                                *c += 1;
                            }
                        }
                    }
                }
            }
            let mut b = Bitset::empty(len);
            for (row, c) in counts.iter().enumerate() {
                if c >= n {
                    b.set(row);
                }
            }
            Rows::Owned(b).normalized()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(len: usize, rows: &[usize]) -> Option<Bitset> {
        let mut b = Bitset::empty(len);
        rows.iter().for_each(|r| b.set(*r));
        Some(b)
    }

    #[test]
    fn and_or_not_at_least() {
        let hits = vec![bits(4, &[0, 1]), bits(4, &[1, 2]), None];
        let rows = |e: &Expr| eval(e, &hits, 4).into_bitset(4).rows().collect::<Vec<_>>();
        assert_eq!(
            rows(&Expr::And(vec![Expr::Test(0), Expr::Test(1)])),
            vec![1]
        );
        assert_eq!(
            rows(&Expr::Or(vec![Expr::Test(0), Expr::Test(1)])),
            vec![0, 1, 2]
        );
        assert_eq!(rows(&Expr::Not(Box::new(Expr::Test(0)))), vec![2, 3]);
        assert_eq!(rows(&Expr::Not(Box::new(Expr::Test(2)))), vec![0, 1, 2, 3]);
        assert_eq!(
            rows(&Expr::And(vec![Expr::Test(2), Expr::Test(0)])),
            Vec::<usize>::new()
        );
        let two = Expr::AtLeast(2, vec![Expr::Test(0), Expr::Test(1), Expr::Test(2)]);
        assert_eq!(rows(&two), vec![1]);
    }

    #[test]
    fn simplify_folds_constants() {
        let e = Expr::And(vec![Expr::True, Expr::Or(vec![Expr::False, Expr::Test(3)])]);
        assert_eq!(e.simplify(), Expr::Test(3));
        assert_eq!(
            Expr::<TestId>::Not(Box::new(Expr::False)).simplify(),
            Expr::True
        );
        assert_eq!(
            Expr::AtLeast(3, vec![Expr::Test(1)]).simplify(),
            Expr::False
        );
    }
}

//! A bounded line diff, to show in a 🔐 what an edit would write: the old
//! and new text the agent sent (a whole file or one hunk) as `-`/`+`/` `
//! lines, long unchanged runs folded, at most a given number of lines with
//! a count of what was left out. Pure; no I/O.

/// Unchanged lines kept on each side of a change.
const CONTEXT: usize = 3;

/// Above this many cells (old lines × new lines left after the common
/// head and tail) the texts are not aligned line by line: the old lines are
/// shown removed and the new ones added, which is still exact, only longer.
const MAX_ALIGN_CELLS: usize = 250_000;

/// One rendered diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// At most the lines asked for, each starting with `-`, `+`, ` ` or
    /// `⋯` (a folded unchanged run).
    pub lines: Vec<String>,
    pub added: usize,
    pub removed: usize,
    /// Lines of the full rendering that did not fit.
    pub left_out: usize,
}

/// Renders the change from `old` (`None`: a new file) to `new` in at most
/// `max_lines` lines.
pub fn show(old: Option<&str>, new: &str, max_lines: usize) -> Shown {
    let old_lines: Vec<&str> = old.map(split).unwrap_or_default();
    let new_lines: Vec<&str> = split(new);
    let ops = align(&old_lines, &new_lines);
    let added = ops.iter().filter(|op| matches!(op, Op::Insert(_))).count();
    let removed = ops.iter().filter(|op| matches!(op, Op::Delete(_))).count();
    let all = fold(&ops);
    let left_out = all.len().saturating_sub(max_lines);
    Shown {
        lines: all.into_iter().take(max_lines).collect(),
        added,
        removed,
        left_out,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Delete(&'a str),
    Insert(&'a str),
}

/// Lines without their line breaks; an empty text has none.
fn split(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The edit script from `old` to `new`: the common head and tail as they
/// are, the middle by longest common subsequence when it is small enough.
fn align<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op<'a>> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_mid, new_mid) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut ops: Vec<Op<'a>> = old[..head].iter().map(|line| Op::Same(line)).collect();
    if old_mid.len().saturating_mul(new_mid.len()) <= MAX_ALIGN_CELLS {
        ops.extend(lcs(old_mid, new_mid));
    } else {
        ops.extend(old_mid.iter().map(|line| Op::Delete(line)));
        ops.extend(new_mid.iter().map(|line| Op::Insert(line)));
    }
    ops.extend(old[old.len() - tail..].iter().map(|line| Op::Same(line)));
    ops
}

/// A longest-common-subsequence alignment (dynamic programming over the
/// suffixes), deletions before insertions where both fit.
fn lcs<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (old.len(), new.len());
    // table[i][j]: the LCS length of old[i..] and new[j..].
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if old[i] == new[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push(Op::Same(old[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || table[at(i + 1, j)] >= table[at(i, j + 1)]) {
            ops.push(Op::Delete(old[i]));
            i += 1;
        } else {
            ops.push(Op::Insert(new[j]));
            j += 1;
        }
    }
    ops
}

/// The lines of `ops`, unchanged runs longer than the context on both
/// sides of a change folded into one `⋯` line.
fn fold(ops: &[Op<'_>]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut index = 0;
    while index < ops.len() {
        let Op::Same(_) = ops[index] else {
            lines.push(match ops[index] {
                Op::Delete(line) => format!("-{line}"),
                Op::Insert(line) => format!("+{line}"),
                Op::Same(line) => format!(" {line}"),
            });
            index += 1;
            continue;
        };
        let end = ops[index..]
            .iter()
            .position(|op| !matches!(op, Op::Same(_)))
            .map_or(ops.len(), |offset| index + offset);
        let run = &ops[index..end];
        // Context before the next change and after the previous one.
        let keep_before = if end < ops.len() { CONTEXT } else { 0 };
        let keep_after = if index > 0 { CONTEXT } else { 0 };
        let same = |op: &Op<'_>| match op {
            Op::Same(line) => format!(" {line}"),
            _ => unreachable!("a run of unchanged lines"),
        };
        if run.len() > keep_after + keep_before + 1 {
            lines.extend(run[..keep_after].iter().map(same));
            let folded = run.len() - keep_after - keep_before;
            lines.push(format!(
                "⋯ {folded} unchanged line{}",
                if folded == 1 { "" } else { "s" }
            ));
            lines.extend(run[run.len() - keep_before..].iter().map(same));
        } else {
            lines.extend(run.iter().map(same));
        }
        index = end;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_all_added_and_a_change_is_aligned() {
        let shown = show(None, "a\nb\n", 60);
        assert_eq!(shown.lines, ["+a", "+b"]);
        assert_eq!((shown.added, shown.removed, shown.left_out), (2, 0, 0));
        let shown = show(Some("fn a() {}\nkeep\n"), "fn moved() {}\nkeep\n", 60);
        assert_eq!(shown.lines, ["-fn a() {}", "+fn moved() {}", " keep"]);
        let shown = show(Some("x\ny\nz\n"), "x\nnew\ny\nz\n", 60);
        assert_eq!(shown.lines, [" x", "+new", " y", " z"]);
        let shown = show(Some("gone\n"), "", 60);
        assert_eq!(shown.lines, ["-gone"]);
    }

    #[test]
    fn long_unchanged_runs_are_folded_around_the_change() {
        let old: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let new = old.replace("line 50\n", "line fifty\n");
        let shown = show(Some(&old), &new, 60);
        assert_eq!(
            shown.lines,
            [
                "⋯ 47 unchanged lines",
                " line 47",
                " line 48",
                " line 49",
                "-line 50",
                "+line fifty",
                " line 51",
                " line 52",
                " line 53",
                "⋯ 46 unchanged lines",
            ]
        );
    }

    #[test]
    fn at_most_the_lines_asked_for_and_the_rest_is_counted() {
        let new: String = (0..500).map(|n| format!("{n}\n")).collect();
        let shown = show(None, &new, 60);
        assert_eq!(shown.lines.len(), 60);
        assert_eq!(shown.left_out, 440);
        assert_eq!(shown.added, 500);
        // Too large to align: still exact, old lines out, new lines in.
        let old: String = (0..1000).map(|n| format!("old {n}\n")).collect();
        let new: String = (0..1000).map(|n| format!("new {n}\n")).collect();
        let shown = show(Some(&old), &new, 5);
        assert_eq!((shown.added, shown.removed), (1000, 1000));
        assert_eq!(shown.lines, ["-old 0", "-old 1", "-old 2", "-old 3", "-old 4"]);
    }
}

//! SQL statement text shared by the database parsers (PostgreSQL, MySQL):
//! literals replaced by `?`, for privacy (no customer data, no passwords in
//! `ALTER USER ... PASSWORD '...'`) and aggregation (one shape per query).

/// The statement's verb (its first keyword, upper case, from a fixed list:
/// a bounded label for metrics), "OTHER" for anything else. Leading blanks,
/// comments and parentheses are skipped.
pub fn verb(statement: &str) -> &'static str {
    const VERBS: &[&str] = &[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "REPLACE",
        "WITH",
        "VALUES",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "END",
        "ABORT",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "RENAME",
        "GRANT",
        "REVOKE",
        "SET",
        "SHOW",
        "RESET",
        "USE",
        "DESCRIBE",
        "DESC",
        "EXPLAIN",
        "ANALYZE",
        "VACUUM",
        "COPY",
        "CALL",
        "EXECUTE",
        "PREPARE",
        "DEALLOCATE",
        "DECLARE",
        "FETCH",
        "CLOSE",
        "MOVE",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "LOCK",
        "UNLOCK",
        "LOAD",
        "DO",
        "DISCARD",
        "CHECKPOINT",
        "REINDEX",
        "CLUSTER",
        "COMMENT",
        "REFRESH",
        "OPTIMIZE",
        "FLUSH",
        "KILL",
        "HANDLER",
    ];
    let b = statement.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() || c == b'(' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_end(b, i),
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = comment_end(b, i + 2),
            _ => break,
        }
    }
    let end = b[i..]
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .map_or(b.len(), |p| i + p);
    let word = &b[i..end];
    VERBS
        .iter()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("OTHER")
}

/// `statement` with every literal replaced by `?`: quoted strings ('...'
/// with '' and backslash escapes, E'...', N'...', x'...', b'...'), dollar-
/// quoted strings ($$...$$, $tag$...$tag$) and numbers (integers, decimals,
/// exponents, 0x hex). Identifiers (bare, "quoted", `backquoted`),
/// keywords, operators, comments and bind parameters ($1, ?, :name) stay.
/// An unterminated literal (a statement cut at its length limit) is
/// replaced to the end.
pub fn normalize(statement: &str) -> String {
    let b = statement.as_bytes();
    let mut out = String::with_capacity(statement.len());
    let mut i = 0;
    // Start of the text not yet copied.
    let mut copied = 0;
    let replace = |out: &mut String, copied: &mut usize, from: usize, to: usize| {
        out.push_str(&statement[*copied..from]);
        out.push('?');
        *copied = to;
    };
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        match c {
            b'\'' => {
                // A prefix letter (E, N, X, B, U&) belongs to the literal.
                let start = literal_prefix(b, i);
                let end = quoted_end(b, i + 1);
                replace(&mut out, &mut copied, start, end);
                i = end;
            }
            b'"' | b'`' => i = delimited_end(b, i + 1, c),
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_end(b, i),
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = comment_end(b, i + 2),
            b'$' if !prev_ident => match dollar_tag(b, i) {
                Some(tag_end) => {
                    let tag = &b[i..tag_end];
                    let end = find(b, tag_end, tag).map_or(b.len(), |p| p + tag.len());
                    replace(&mut out, &mut copied, i, end);
                    i = end;
                }
                // $1: a bind parameter
                None => i = ident_end(b, i + 1),
            },
            b'0'..=b'9' if !prev_ident => {
                let end = number_end(b, i);
                replace(&mut out, &mut copied, i, end);
                i = end;
            }
            b'.' if !prev_ident && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = number_end(b, i);
                replace(&mut out, &mut copied, i, end);
                i = end;
            }
            c if is_ident(c) => i = ident_end(b, i),
            _ => i += 1,
        }
    }
    out.push_str(&statement[copied.min(statement.len())..]);
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (is_ident(b[i]) || b[i] == b'$') {
        i += 1;
    }
    i
}

/// Where a literal starting with the quote at `q` really starts: E'..',
/// N'..', X'..', B'..' and U&'..' take their prefix along (a prefix letter
/// that is the end of a longer word is not one).
fn literal_prefix(b: &[u8], q: usize) -> usize {
    let at = |i: usize| b.get(i).map(u8::to_ascii_lowercase);
    let word_start = |i: usize| i == 0 || !is_ident(b[i - 1]);
    if q >= 2 && at(q - 1) == Some(b'&') && at(q - 2) == Some(b'u') && word_start(q - 2) {
        return q - 2;
    }
    if q >= 1 && matches!(at(q - 1), Some(b'e' | b'n' | b'x' | b'b')) && word_start(q - 1) {
        return q - 1;
    }
    q
}

/// End (after the closing quote) of a '...' literal whose text starts at
/// `i`: '' and a backslash escape the next character.
fn quoted_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// End of a "..." or `...` identifier (doubled delimiter escapes).
fn delimited_end(b: &[u8], mut i: usize, d: u8) -> usize {
    while i < b.len() {
        if b[i] == d {
            if b.get(i + 1) == Some(&d) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

fn comment_end(b: &[u8], i: usize) -> usize {
    find(b, i, b"*/").map_or(b.len(), |p| p + 2)
}

/// `$$` or `$tag$` at `i`: the end of the opening tag.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len()
        && (b[j].is_ascii_alphabetic() || b[j] == b'_' || (j > i + 1 && b[j].is_ascii_digit()))
    {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::{normalize, verb};

    #[test]
    fn verbs_are_a_bounded_vocabulary() {
        for (sql, want) in [
            ("select 1", "SELECT"),
            ("  /* hint */ INSERT INTO t VALUES (1)", "INSERT"),
            ("-- a comment\nupdate t set a = 1", "UPDATE"),
            ("(SELECT 1) UNION (SELECT 2)", "SELECT"),
            ("with x as (select 1) select * from x", "WITH"),
            ("BEGIN", "BEGIN"),
            ("frobnicate the table", "OTHER"),
            ("", "OTHER"),
            ("SELECTED", "OTHER"),
        ] {
            assert_eq!(verb(sql), want, "{sql:?}");
        }
    }

    #[test]
    fn literals_become_placeholders() {
        for (sql, want) in [
            (
                "SELECT * FROM t WHERE id = 42",
                "SELECT * FROM t WHERE id = ?",
            ),
            (
                "select name from users where email='a@b.c' and age > 3.5e2",
                "select name from users where email=? and age > ?",
            ),
            (
                "INSERT INTO t2 VALUES (1, 'it''s', -0.5, .25)",
                "INSERT INTO t2 VALUES (?, ?, -?, ?)",
            ),
            (
                "SELECT E'a\\'b', N'x', X'0A', b'01', U&'d'",
                "SELECT ?, ?, ?, ?, ?",
            ),
            ("SELECT 'a\\'b' FROM t1", "SELECT ? FROM t1"),
            (
                "ALTER USER bob PASSWORD 'secret'",
                "ALTER USER bob PASSWORD ?",
            ),
            ("SELECT $$body$$, $fn$ x'y $fn$", "SELECT ?, ?"),
            (
                "SELECT 0xFF, col1, t2.c3 FROM t2",
                "SELECT ?, col1, t2.c3 FROM t2",
            ),
            (
                "SELECT $1, ?, :name FROM t WHERE a = $2",
                "SELECT $1, ?, :name FROM t WHERE a = $2",
            ),
            (
                r#"SELECT "col 1", `x'y` FROM "t""1""#,
                r#"SELECT "col 1", `x'y` FROM "t""1""#,
            ),
            (
                "SELECT 1 -- it's 2\n, 3 /* 'x' 4 */",
                "SELECT ? -- it's 2\n, ? /* 'x' 4 */",
            ),
            ("SELECT 1 # it's\n", "SELECT ? # it's\n"),
            ("SELECT 'cut at the lim", "SELECT ?"),
            ("SELECT café, 'été'", "SELECT café, ?"),
            ("BEGIN;", "BEGIN;"),
            ("", ""),
        ] {
            assert_eq!(normalize(sql), want, "{sql:?}");
        }
    }

    #[test]
    fn any_input_is_safe() {
        // Every prefix of statements with every kind of literal: no panic,
        // and no literal text left.
        let s = "SELECT E'x\\'', $t$ $ $t$, 0x1F, 'a''b', \"q\"\"\", 1e+5 -- c\n/* d";
        for end in 0..=s.len() {
            if let Some(p) = s.get(..end) {
                let n = normalize(p);
                assert!(!n.contains("a''b") && !n.contains("1e+5"), "{p:?} -> {n:?}");
            }
        }
    }
}

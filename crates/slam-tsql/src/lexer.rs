//! A small T-SQL tokenizer for the checks a grammar cannot make.
//!
//! It knows just enough to never mistake text inside a string, a comment or a
//! bracketed name for code: `'…'` and `N'…'` with doubled quotes, `"…"`, `[…]`,
//! `-- …` and nested `/* … */`. Everything else becomes words, variables (`@x`),
//! system functions (`@@x`) and single-character symbols, each with its line and
//! column (1-based), so that a rule can look at the tokens around a keyword.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A keyword or an identifier (upper- and lower-case alike).
    Word,
    /// `@name`.
    Variable,
    /// `@@name`.
    SystemFunction,
    /// A string literal, quotes included.
    Text,
    /// A number.
    Number,
    /// `[name]` or `"name"`.
    QuotedName,
    /// Any other single character: `;`, `(`, `,`, `=`, …
    Symbol,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Token<'_> {
    /// Whether this is the word `word`, case-insensitively.
    pub(crate) fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(word)
    }

    /// Whether this is the symbol `c`.
    pub(crate) fn is_symbol(&self, c: char) -> bool {
        self.kind == Kind::Symbol && self.text.starts_with(c)
    }
}

/// Splits `script` into tokens, dropping white space and comments. An unclosed
/// string, name or comment runs to the end of the script (the grammar reports it).
pub(crate) fn tokens(script: &str) -> Vec<Token<'_>> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    while i < bytes.len() {
        let start = i;
        let (token_line, column) = (line, script[line_start..start].chars().count() + 1);
        let c = bytes[i];
        let kind = match c {
            b'\n' => {
                i += 1;
                line += 1;
                line_start = i;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if bytes[i] == b'\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' | b'"' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                i = skip_quoted(bytes, i + 1, close, &mut line, &mut line_start);
                if c == b'\'' { Kind::Text } else { Kind::QuotedName }
            }
            // N'…': a string one character later.
            b'N' | b'n' if bytes.get(i + 1) == Some(&b'\'') => {
                i = skip_quoted(bytes, i + 2, b'\'', &mut line, &mut line_start);
                Kind::Text
            }
            b'@' => {
                let system = bytes.get(i + 1) == Some(&b'@');
                i += if system { 2 } else { 1 };
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                if system { Kind::SystemFunction } else { Kind::Variable }
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            c if is_word_byte(c) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                // One character, whole (it may be multi-byte).
                i += script[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Symbol
            }
        };
        out.push(Token { kind, text: &script[start..i], line: token_line, column });
    }
    out
}

/// The index just past the closing `close` of a quoted text whose first byte after
/// the opening quote is at `i`; a doubled `close` is an escaped one. Counts lines.
fn skip_quoted(bytes: &[u8], mut i: usize, close: u8, line: &mut usize, line_start: &mut usize) -> usize {
    loop {
        match bytes.get(i) {
            None => return i,
            Some(&b) if b == close && bytes.get(i + 1) == Some(&close) => i += 2,
            Some(&b) if b == close => return i + 1,
            Some(&b'\n') => {
                *line += 1;
                *line_start = i + 1;
                i += 1;
            }
            Some(_) => i += 1,
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'#' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_comments_and_names_hide_their_contents() {
        let script = "SELECT N'it''s @@x -- no', [a;b] /* @@y /* nested */ ; */ -- @@z\n FROM t; @@SPID @v";
        let kinds: Vec<(Kind, &str)> = tokens(script).iter().map(|t| (t.kind, t.text)).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Word, "SELECT"),
                (Kind::Text, "N'it''s @@x -- no'"),
                (Kind::Symbol, ","),
                (Kind::QuotedName, "[a;b]"),
                (Kind::Word, "FROM"),
                (Kind::Word, "t"),
                (Kind::Symbol, ";"),
                (Kind::SystemFunction, "@@SPID"),
                (Kind::Variable, "@v"),
            ]
        );
        let spid = tokens(script).into_iter().find(|t| t.text == "@@SPID").unwrap();
        assert_eq!((spid.line, spid.column), (2, 10));
    }
}

//! Our scripts, cut into batches the way sqlcmd cuts them.
//!
//! `GO` and `$(NAME)` are not T-SQL: SSMS and sqlcmd act on them before anything
//! reaches SQL Server, which only ever sees one batch at a time. `slam install-sql`
//! runs the scripts in `sql/` through a driver that sends exactly what it is given,
//! so [`prepare`] does sqlcmd's part first: it splits a script on `GO`, substitutes
//! the scripting variables, applies `:setvar`, and refuses every sqlcmd command it
//! does not carry out, so that a script never runs differently under `slam` than
//! under sqlcmd. It is pure (no I/O, no environment) so that every rule is tested
//! here, on the scripts themselves too.
//!
//! The rules, as sqlcmd's documentation states them
//! (<https://learn.microsoft.com/sql/tools/sqlcmd/sqlcmd-commands> and
//! <https://learn.microsoft.com/sql/tools/sqlcmd/sqlcmd-use-scripting-variables>):
//! - `GO [count]` alone on its line (white space and a trailing `-- comment`
//!   allowed) ends a batch, never inside a block comment (nested, as SQL Server
//!   nests them), a string or a quoted name that spans lines; `count` runs the
//!   batch that many times;
//! - sqlcmd commands are recognised only at the start of a line, case-insensitively;
//!   `:setvar NAME value` and `:setvar NAME "value"` define a variable, `:setvar
//!   NAME` removes it, `:on error exit` is accepted (it is what `slam` does anyway);
//!   every other command (`:r`, `:connect`, `:out`, `:!!`, `:on error ignore`, and
//!   `EXIT`, `QUIT`, `RESET`, `ED`, `!!` which sqlcmd knows without the colon) is
//!   refused, since running the script without it would not do what it says;
//! - variable names are case-insensitive ("Variable names are case insensitive",
//!   sqlcmd-commands), and a variable set by `:setvar` wins over one given from
//!   outside ("Variable precedence (low to high): … 4. sqlcmd -v X=Y, 5. :Setvar X
//!   Y", sqlcmd-use-scripting-variables): the map given to [`prepare`] plays the part
//!   of `sqlcmd -v`, and the environment plays none;
//! - `$(NAME)` is replaced everywhere in a batch, inside strings and comments too,
//!   as the text sqlcmd sends; a reference to a variable that is not defined stops
//!   the script, as under `sqlcmd -b`. What a variable holds is not read again for
//!   references, nor for strings or comments.
//!
//! A batch that holds only white space and comments is dropped. A command line
//! stays in its batch as an empty line, so that line `n` of a batch is line
//! `first_line + n - 1` of the script, which is how a SQL Server error's line is
//! found in the file.

use std::collections::BTreeMap;

/// One batch, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The text, variables substituted; commands left as empty lines.
    pub text: String,
    /// The 1-based line of the script where `text` starts (line 1 of the batch).
    pub first_line: usize,
    /// How many times to run it (`GO 3`); 1 for a plain `GO` or the end of the script.
    pub repeat: u32,
}

/// Why a script cannot be prepared; nothing of it should run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// `$(NAME)` with no value from the caller nor from `:setvar`.
    #[error(
        "line {line}: the scripting variable {name} is not defined (pass it, as with sqlcmd -v {name}=..., or set it \
         with :setvar before this line)"
    )]
    UndefinedVariable {
        /// The name as written in the script.
        name: String,
        /// The 1-based line of the reference.
        line: usize,
    },
    /// `$(` not followed by a variable name and `)`.
    #[error("line {line}: `$(` must start a variable reference `$(NAME)` (letters, digits, `_` and `-`)")]
    BadVariableReference {
        /// The 1-based line.
        line: usize,
    },
    /// A sqlcmd command `slam` does not carry out.
    #[error("line {line}: the sqlcmd command {command} is not supported here (only :setvar and :on error exit are)")]
    UnsupportedCommand {
        /// The command as written, e.g. `:r` or `:on error ignore`.
        command: String,
        /// The 1-based line.
        line: usize,
    },
    /// A `:setvar` that sqlcmd would refuse.
    #[error("line {line}: {problem} (write :setvar NAME value, or :setvar NAME \"value with spaces\")")]
    BadSetvar {
        /// What is wrong.
        problem: &'static str,
        /// The 1-based line.
        line: usize,
    },
    /// A line that starts with `GO` but is not a batch separator.
    #[error("line {line}: a batch separator is GO alone on its line, optionally with a positive count (GO 3)")]
    BadGo {
        /// The 1-based line.
        line: usize,
    },
    /// A variable given by the caller whose name sqlcmd would not accept.
    #[error("the scripting variable name {name:?} is not valid (letters, digits, `_` and `-`, starting with a letter)")]
    BadVariableName {
        /// The name as given.
        name: String,
    },
    /// Two variables given by the caller whose names differ only in case.
    #[error("the scripting variables {first} and {second} are the same variable: names are case-insensitive")]
    DuplicateVariable {
        /// One name as given.
        first: String,
        /// The other.
        second: String,
    },
}

/// Splits `script` into the batches sqlcmd would send, with `variables` (as
/// `sqlcmd -v NAME=value` gives them) and the script's own `:setvar` substituted.
pub fn prepare(script: &str, variables: &BTreeMap<String, String>) -> Result<Vec<Batch>, ScriptError> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut given_names: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in variables {
        if !valid_name(name) {
            return Err(ScriptError::BadVariableName { name: name.clone() });
        }
        let key = name.to_ascii_uppercase();
        if let Some(first) = given_names.insert(key.clone(), name) {
            return Err(ScriptError::DuplicateVariable { first: first.to_string(), second: name.clone() });
        }
        values.insert(key, value.clone());
    }

    let script = script.strip_prefix('\u{feff}').unwrap_or(script);
    let mut batches = Vec::new();
    let mut current = Pending::starting_at(1);
    let mut state = State::Code;
    for (index, line) in script.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let content = line.trim_end_matches(['\n', '\r']);
        let ending = &line[content.len()..];
        if state == State::Code {
            if let Some(repeat) = go(content, number)? {
                current.finish(repeat, &mut batches);
                current = Pending::starting_at(number + 1);
                continue;
            }
            if command(content, number, &mut values)? {
                current.text.push_str(ending);
                continue;
            }
        }
        scan(content, &mut state, &mut current.has_code);
        current.text.push_str(&substitute(content, number, &values)?);
        current.text.push_str(ending);
    }
    current.finish(1, &mut batches);
    Ok(batches)
}

/// The batch being read.
struct Pending {
    text: String,
    first_line: usize,
    has_code: bool,
}

impl Pending {
    fn starting_at(first_line: usize) -> Self {
        Self { text: String::new(), first_line, has_code: false }
    }

    /// Keeps the batch unless it holds only white space and comments.
    fn finish(&mut self, repeat: u32, batches: &mut Vec<Batch>) {
        if self.has_code {
            batches.push(Batch { text: std::mem::take(&mut self.text), first_line: self.first_line, repeat });
        }
    }
}

/// Where the scanner is at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Code (a `--` comment ends with its line).
    Code,
    /// Inside `'…'`, `"…"` or `[…]`, waiting for this closing byte.
    Quoted(u8),
    /// Inside `/* … */`, this deep.
    Comment(usize),
}

/// Follows strings, quoted names and comments through one line (without its line
/// ending), and notes whether it holds anything but white space and comments.
fn scan(line: &str, state: &mut State, has_code: &mut bool) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        match *state {
            State::Comment(depth) => {
                if bytes[i] == b'/' && next == Some(b'*') {
                    *state = State::Comment(depth + 1);
                    i += 2;
                } else if bytes[i] == b'*' && next == Some(b'/') {
                    *state = if depth <= 1 { State::Code } else { State::Comment(depth - 1) };
                    i += 2;
                } else {
                    i += 1;
                }
            }
            State::Quoted(close) => {
                if bytes[i] == close && next == Some(close) {
                    i += 2;
                } else {
                    if bytes[i] == close {
                        *state = State::Code;
                    }
                    i += 1;
                }
            }
            State::Code => match bytes[i] {
                b'-' if next == Some(b'-') => return,
                b'/' if next == Some(b'*') => {
                    *state = State::Comment(1);
                    i += 2;
                }
                b'\'' | b'"' | b'[' => {
                    *state = State::Quoted(if bytes[i] == b'[' { b']' } else { bytes[i] });
                    *has_code = true;
                    i += 1;
                }
                b if b.is_ascii_whitespace() => i += 1,
                _ => {
                    *has_code = true;
                    i += 1;
                }
            },
        }
    }
}

/// `Some(count)` when `line` is a batch separator; an error when it starts with
/// the word `GO` but is not one.
fn go(line: &str, number: usize) -> Result<Option<u32>, ScriptError> {
    let trimmed = line.trim_start();
    let Some(rest) = trimmed.get(..2).filter(|w| w.eq_ignore_ascii_case("GO")).map(|_| &trimmed[2..]) else {
        return Ok(None);
    };
    if rest.bytes().next().is_some_and(is_word_byte) {
        return Ok(None); // GOTO, a name starting with GO
    }
    let rest = rest.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = rest[digits..].trim_start();
    if !(tail.is_empty() || tail.starts_with("--")) {
        return Err(ScriptError::BadGo { line: number });
    }
    if digits == 0 {
        return Ok(Some(1));
    }
    match rest[..digits].parse::<u32>() {
        Ok(count) if count > 0 => Ok(Some(count)),
        _ => Err(ScriptError::BadGo { line: number }),
    }
}

/// Carries out a sqlcmd command on `line`; `true` when the line was one.
fn command(line: &str, number: usize, values: &mut BTreeMap<String, String>) -> Result<bool, ScriptError> {
    let trimmed = line.trim_start();
    let unsupported = |command: &str| ScriptError::UnsupportedCommand { command: command.to_string(), line: number };
    if trimmed.starts_with("!!") {
        return Err(unsupported("!!"));
    }
    if let Some(after_colon) = trimmed.strip_prefix(':') {
        if after_colon.starts_with("!!") {
            return Err(unsupported(":!!"));
        }
        let name_len = after_colon.bytes().take_while(u8::is_ascii_alphabetic).count();
        if name_len == 0 {
            return Ok(false); // not a command (`::` is T-SQL's scope qualifier)
        }
        let (name, args) = after_colon.split_at(name_len);
        if name.eq_ignore_ascii_case("setvar") {
            setvar(args, number, values)?;
            return Ok(true);
        }
        if name.eq_ignore_ascii_case("on") {
            let words: Vec<&str> = without_comment(args).split_whitespace().collect();
            let exit =
                matches!(words.as_slice(), [e, x] if e.eq_ignore_ascii_case("error") && x.eq_ignore_ascii_case("exit"));
            if exit {
                return Ok(true);
            }
            let mut written = format!(":{name}");
            for w in words {
                written.push(' ');
                written.push_str(w);
            }
            return Err(unsupported(&written));
        }
        return Err(unsupported(&format!(":{name}")));
    }
    // What sqlcmd also knows without the colon, as osql did.
    let word_len = trimmed.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (word, rest) = trimmed.split_at(word_len);
    let alone = rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || c == '(');
    if alone && ["EXIT", "QUIT", "RESET", "ED"].iter().any(|c| word.eq_ignore_ascii_case(c)) {
        return Err(unsupported(word));
    }
    Ok(false)
}

/// `:setvar NAME`, `:setvar NAME value` or `:setvar NAME "value"` (`""` for a
/// quote), each with an optional trailing `-- comment`; `args` follows `:setvar`.
fn setvar(args: &str, number: usize, values: &mut BTreeMap<String, String>) -> Result<(), ScriptError> {
    let bad = |problem| ScriptError::BadSetvar { problem, line: number };
    if !args.is_empty() && !args.starts_with(char::is_whitespace) {
        return Err(bad("`:setvar` must be followed by a space and a variable name"));
    }
    let args = args.trim_start();
    let name_end = args.find(char::is_whitespace).unwrap_or(args.len());
    let (name, rest) = args.split_at(name_end);
    if name.is_empty() {
        return Err(bad("`:setvar` needs a variable name"));
    }
    if !valid_name(name) {
        return Err(bad("a variable name has letters, digits, `_` and `-`, and starts with a letter"));
    }
    let key = name.to_ascii_uppercase();
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with("--") {
        // sqlcmd: `:setvar NAME` with no value removes the variable.
        values.remove(&key);
        return Ok(());
    }
    let (value, after) = if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|&(_, d)| d == '"') {
                    chars.next();
                    value.push('"');
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                value.push(c);
            }
        }
        let Some(end) = end else { return Err(bad("the value's closing `\"` is missing")) };
        (value, &quoted[end..])
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if rest[..end].contains('"') {
            return Err(bad("a value with a `\"` in it must be quoted, the quote doubled"));
        }
        (rest[..end].to_string(), &rest[end..])
    };
    let after = after.trim_start();
    if !(after.is_empty() || after.starts_with("--")) {
        return Err(bad("only a `-- comment` may follow the value"));
    }
    let value = substitute(&value, number, values)?;
    values.insert(key, value);
    Ok(())
}

/// `text` before a `--` comment.
fn without_comment(text: &str) -> &str {
    text.find("--").map_or(text, |i| &text[..i])
}

/// `line` with each `$(NAME)` replaced by its value.
fn substitute(line: &str, number: usize, values: &BTreeMap<String, String>) -> Result<String, ScriptError> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name = after.find(')').map(|end| &after[..end]).filter(|name| valid_name(name));
        let Some(name) = name else { return Err(ScriptError::BadVariableReference { line: number }) };
        let Some(value) = values.get(&name.to_ascii_uppercase()) else {
            return Err(ScriptError::UndefinedVariable { name: name.to_string(), line: number });
        };
        out.push_str(value);
        rest = &after[name.len() + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A scripting variable's name: an ASCII letter, then letters, digits, `_` and `-`
/// (sqlcmd's own rule, which also rules out spaces and quotes).
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A byte that continues a T-SQL word (as the gate's lexer reads words).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'#' || b == b'@' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn split(script: &str) -> Vec<Batch> {
        prepare(script, &BTreeMap::new()).unwrap()
    }

    fn texts(script: &str) -> Vec<String> {
        split(script).into_iter().map(|b| b.text).collect()
    }

    fn error(script: &str) -> ScriptError {
        prepare(script, &BTreeMap::new()).unwrap_err()
    }

    #[test]
    fn go_alone_on_its_line_separates_batches() {
        let batches = split("SELECT 1;\nGO\nSELECT 2;\n  go  \nSELECT 3;\nGo -- the end\nSELECT 4;");
        let found: Vec<(&str, usize, u32)> =
            batches.iter().map(|b| (b.text.as_str(), b.first_line, b.repeat)).collect();
        assert_eq!(found, [("SELECT 1;\n", 1, 1), ("SELECT 2;\n", 3, 1), ("SELECT 3;\n", 5, 1), ("SELECT 4;", 7, 1)]);
    }

    #[test]
    fn go_with_a_count_repeats_the_batch() {
        let batches = split("INSERT t DEFAULT VALUES;\nGO 3\nSELECT 1;\nGO 2 -- twice\nSELECT 2;\nGO\t5--x\n");
        let repeats: Vec<u32> = batches.iter().map(|b| b.repeat).collect();
        assert_eq!(repeats, [3, 2, 5]);
    }

    #[test]
    fn a_line_that_only_starts_like_go_is_code_or_an_error() {
        assert_eq!(texts("GOTO done;\ndone:\nGO\n"), ["GOTO done;\ndone:\n"]);
        assert_eq!(texts("SELECT 1 AS go_on;\n"), ["SELECT 1 AS go_on;\n"]);
        for bad in ["GO;", "GO 0", "GO -1", "GO 3 4", "GO x", "GO 99999999999", "GO /* c */"] {
            let script = format!("SELECT 1;\n{bad}\n");
            assert_eq!(prepare(&script, &BTreeMap::new()), Err(ScriptError::BadGo { line: 2 }), "{bad}");
        }
    }

    #[test]
    fn go_inside_comments_strings_and_names_is_text() {
        let script = "SELECT 1; /* a comment\nGO\n/* nested\nGO\n*/ still inside\nGO\n*/\nSELECT 'a string\nGO\n', [a\nGO\nname], \"b\nGO\n\";\n-- GO\nGO\nSELECT 2;\n";
        let batches = split(script);
        assert_eq!(batches.len(), 2, "{batches:#?}");
        assert_eq!(batches[0].text.matches("GO\n").count(), 7);
        assert_eq!((batches[1].text.as_str(), batches[1].first_line), ("SELECT 2;\n", 17));
    }

    #[test]
    fn doubled_quotes_do_not_end_a_string() {
        let script = "SELECT N'it''s\nGO\n'';\nstill a string';\nGO\nSELECT ']]\nGO\n', [x]]\nGO\n];\nGO\n";
        assert_eq!(split(script).len(), 2);
    }

    #[test]
    fn batches_of_only_white_space_and_comments_are_dropped() {
        let script = "\n  \nGO\n-- a comment\n/* another\n GO */\nGO\nGO\nSELECT 1;\nGO\n\n-- trailing\n";
        let batches = split(script);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].first_line, 9);
        assert!(split("").is_empty());
        assert!(split("/* unclosed\nGO\n").is_empty());
    }

    #[test]
    fn lines_of_a_batch_keep_their_numbers() {
        let script = "SELECT 1;\nGO\n-- header\n:setvar X 1\n\nSELECT $(X);\r\nGO\r\n";
        let batches = split(script);
        assert_eq!(batches[1].first_line, 3);
        assert_eq!(batches[1].text, "-- header\n\n\nSELECT 1;\r\n");
        let select = batches[1].text.lines().position(|l| l.starts_with("SELECT")).unwrap();
        assert_eq!(batches[1].first_line + select, 6);
        // A byte order mark is not part of the first batch.
        assert_eq!(texts("\u{feff}SELECT 1;\n"), ["SELECT 1;\n"]);
    }

    #[test]
    fn variables_are_substituted_everywhere() {
        let given = vars(&[("Account", r"NT SERVICE\SpeedifulSLAM"), ("db", "Sales")]);
        let script = "-- for $(ACCOUNT)\nDECLARE @w SYSNAME = N'$(account)'; /* $(Db) */ USE [$(DB)];\nGO\n";
        let batches = prepare(script, &given).unwrap();
        assert_eq!(
            batches[0].text,
            "-- for NT SERVICE\\SpeedifulSLAM\nDECLARE @w SYSNAME = N'NT SERVICE\\SpeedifulSLAM'; /* Sales */ USE [Sales];\n"
        );
        // What a variable holds is neither read again nor lexed.
        let given = vars(&[("A", "$(B)"), ("Q", "'\nGO")]);
        let batches = prepare("SELECT N'$(A)', $(Q)\nGO\nSELECT 2;\n", &given).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].text, "SELECT N'$(B)', '\nGO\n");
        // An empty value is a value.
        assert_eq!(prepare("SELECT N'$(E)';", &vars(&[("E", "")])).unwrap()[0].text, "SELECT N'';");
    }

    #[test]
    fn an_undefined_variable_is_named_with_its_line() {
        let script = "SELECT 1;\nGO\nSELECT N'$(Missing)';\n";
        assert_eq!(error(script), ScriptError::UndefinedVariable { name: "Missing".to_string(), line: 3 });
        let message = error(script).to_string();
        assert!(message.contains("line 3") && message.contains("Missing"), "{message}");
        for bad in ["SELECT '$(';", "SELECT $(a b);", "SELECT $();", "SELECT $(1x);", "SELECT $(x"] {
            assert_eq!(error(bad), ScriptError::BadVariableReference { line: 1 }, "{bad}");
        }
        // `$` alone, or `(` after something else, is T-SQL.
        assert_eq!(texts("SELECT $1.5, N'$' + N'(';"), ["SELECT $1.5, N'$' + N'(';"]);
    }

    #[test]
    fn setvar_defines_and_wins_over_the_given_value() {
        let given = vars(&[("Who", "given")]);
        let script = "SELECT N'$(WHO)';\n:setvar who scripted\nSELECT N'$(Who)';\n:SETVAR Who \"with \"\"quotes\"\" and -- dashes\" -- a comment\nSELECT N'$(who)';\n";
        let text = &prepare(script, &given).unwrap()[0].text;
        assert_eq!(text, "SELECT N'given';\n\nSELECT N'scripted';\n\nSELECT N'with \"quotes\" and -- dashes';\n");
        // Unquoted values run to white space; a value may use other variables.
        let text =
            &prepare(":setvar A x--y -- comment\n  :setvar B \"$(a)!\"\nSELECT '$(B)';", &given).unwrap()[0].text;
        assert_eq!(text, "\n\nSELECT 'x--y!';");
        // `:setvar NAME` alone removes the variable, even one given from outside.
        assert_eq!(
            prepare(":setvar Who\nSELECT '$(Who)';", &given),
            Err(ScriptError::UndefinedVariable { name: "Who".to_string(), line: 2 })
        );
        assert_eq!(prepare(":setvar E \"\"\nSELECT '$(E)';", &given).unwrap()[0].text, "\nSELECT '';");
    }

    #[test]
    fn a_bad_setvar_is_refused() {
        for bad in [":setvar", ":setvar 1x y", ":setvar X \"open", ":setvar X a b", ":setvar X a\"b", ":setvarX 1"] {
            let found = error(bad);
            assert!(
                matches!(
                    found,
                    ScriptError::BadSetvar { line: 1, .. } | ScriptError::UnsupportedCommand { line: 1, .. }
                ),
                "{bad}: {found:?}"
            );
        }
    }

    #[test]
    fn commands_other_than_setvar_and_on_error_exit_are_refused() {
        assert_eq!(texts(":on error exit\nSELECT 1;\n:On Error EXIT -- as always\n"), ["\nSELECT 1;\n\n"]);
        let cases = [
            (":on error ignore", ":on error ignore"),
            (":r other.sql", ":r"),
            ("  :connect server", ":connect"),
            (":out file.txt", ":out"),
            (":!! dir", ":!!"),
            ("!! dir", "!!"),
            (":exit", ":exit"),
            ("EXIT(SELECT 1)", "EXIT"),
            ("quit", "quit"),
            ("RESET", "RESET"),
            ("ED", "ED"),
            (":listvar", ":listvar"),
        ];
        for (line, command) in cases {
            let script = format!("SELECT 1;\n{line}\n");
            assert_eq!(
                prepare(&script, &BTreeMap::new()),
                Err(ScriptError::UnsupportedCommand { command: command.to_string(), line: 2 }),
                "{line}"
            );
        }
        // Only at the start of a line, outside comments and strings; `::` is T-SQL.
        let script = "SELECT 1; :r x\n/*\n:r x\n*/ SELECT '\n:connect y\n', ed.x\nFROM t AS\ned;\nGRANT SELECT ON SCHEMA\n::dbo TO r;\n";
        assert_eq!(split(script).len(), 1);
    }

    #[test]
    fn given_names_must_be_valid_and_distinct() {
        assert_eq!(
            prepare("SELECT 1;", &vars(&[("A B", "x")])),
            Err(ScriptError::BadVariableName { name: "A B".to_string() })
        );
        assert!(matches!(
            prepare("SELECT 1;", &vars(&[("Name", "x"), ("NAME", "y")])),
            Err(ScriptError::DuplicateVariable { .. })
        ));
    }
}

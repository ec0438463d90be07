//! The T-SQL gate: every script SLAM ships, and every statement its SQL Server
//! store sends, goes through [`check`] in `cargo test`.
//!
//! Nothing here can run T-SQL, so a script that does not parse would first fail
//! on a DBA's server. The gate parses with a real T-SQL grammar (tree-sitter-mssql)
//! and adds the checks a grammar cannot make, each a mistake SQL Server reports only
//! when the script runs:
//! - an unknown `@@name` (the grammar takes any `@@x` for a variable);
//! - a `CREATE PROCEDURE`, `FUNCTION`, `VIEW` or `TRIGGER` that is not alone in its
//!   batch (a missing `GO` makes the next statement part of the procedure);
//! - a procedure parameter whose default is not a constant;
//! - `THROW` or a common table expression (`WITH x AS (…)`) not preceded by `;`
//!   (or the start of a block), and a `MERGE` not ended by `;`.
//!
//! The grammar lacks a few security statements (`ADD SIGNATURE`, `DROP SIGNATURE`,
//! `CREATE USER … FROM CERTIFICATE`). Each is replaced by `PRINT 0;` padded to the
//! same length before parsing, so positions stay right; they must end with `;`.

use crate::lexer::{self, Kind, Token};
use tree_sitter::{Node, Parser};

/// One problem found in a script, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based, in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

/// The system functions SQL Server knows (`@@…`), upper-case.
const SYSTEM_FUNCTIONS: &[&str] = &[
    "@@CONNECTIONS",
    "@@CPU_BUSY",
    "@@CURSOR_ROWS",
    "@@DATEFIRST",
    "@@DBTS",
    "@@DEF_SORTORDER_ID",
    "@@DEFAULT_LANGID",
    "@@ERROR",
    "@@FETCH_STATUS",
    "@@IDENTITY",
    "@@IDLE",
    "@@IO_BUSY",
    "@@LANGID",
    "@@LANGUAGE",
    "@@LOCK_TIMEOUT",
    "@@MAX_CONNECTIONS",
    "@@MAX_PRECISION",
    "@@MICROSOFTVERSION",
    "@@NESTLEVEL",
    "@@OPTIONS",
    "@@PACK_RECEIVED",
    "@@PACK_SENT",
    "@@PACKET_ERRORS",
    "@@PROCID",
    "@@REMSERVER",
    "@@ROWCOUNT",
    "@@SERVERNAME",
    "@@SERVICENAME",
    "@@SPID",
    "@@TEXTSIZE",
    "@@TIMETICKS",
    "@@TOTAL_ERRORS",
    "@@TOTAL_READ",
    "@@TOTAL_WRITE",
    "@@TRANCOUNT",
    "@@VERSION",
];

/// Statements the grammar lacks, as the words they start with.
const UNPARSED_STATEMENTS: &[&[&str]] = &[
    &["ADD", "SIGNATURE"],
    &["ADD", "COUNTER", "SIGNATURE"],
    &["DROP", "SIGNATURE"],
    &["DROP", "COUNTER", "SIGNATURE"],
];

/// Kinds of `CREATE` that must be alone in their batch.
const ALONE_IN_BATCH: &[&str] = &["create_procedure", "create_function", "create_view", "create_trigger"];

/// Checks `script`; an empty list means it passed.
pub fn check(script: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let prepared = blank_unparsed_statements(script, &mut problems);
    let mut parser = Parser::new();
    if let Err(e) = parser.set_language(&tree_sitter_mssql::LANGUAGE.into()) {
        problems.push(Problem { line: 1, column: 1, message: format!("the T-SQL grammar cannot be loaded: {e}") });
        return problems;
    }
    let Some(tree) = parser.parse(&prepared, None) else {
        problems.push(Problem { line: 1, column: 1, message: "the parser gave up".to_string() });
        return problems;
    };
    let root = tree.root_node();
    syntax_errors(root, &prepared, &mut problems);
    batches(root, &mut problems);
    constant_defaults(root, &prepared, &mut problems);
    merge_terminated(root, &mut problems);
    let tokens = lexer::tokens(script);
    system_functions(&tokens, &mut problems);
    terminated_before(&tokens, &mut problems);
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup();
    problems
}

fn at(node: Node<'_>, message: String) -> Problem {
    let p = node.start_position();
    Problem { line: p.row + 1, column: p.column + 1, message }
}

fn at_token(token: &Token<'_>, message: String) -> Problem {
    Problem { line: token.line, column: token.column, message }
}

/// Replaces each statement the grammar lacks by `PRINT 0;` and spaces (newlines
/// kept), up to its `;`.
fn blank_unparsed_statements(script: &str, problems: &mut Vec<Problem>) -> String {
    let tokens = lexer::tokens(script);
    let mut out = script.to_string();
    let offset = |t: &Token<'_>| t.text.as_ptr() as usize - script.as_ptr() as usize;
    let mut i = 0;
    while i < tokens.len() {
        let starts =
            |words: &[&str]| words.iter().enumerate().all(|(k, w)| tokens.get(i + k).is_some_and(|t| t.is_word(w)));
        let create_user_from_certificate = starts(&["CREATE", "USER"])
            && tokens[i..].iter().take_while(|t| !t.is_symbol(';')).any(|t| t.is_word("CERTIFICATE"));
        if UNPARSED_STATEMENTS.iter().any(|words| starts(words)) || create_user_from_certificate {
            let Some(end) = tokens[i..].iter().position(|t| t.is_symbol(';')).map(|k| i + k) else {
                problems.push(at_token(&tokens[i], "end this statement with `;`".to_string()));
                return out;
            };
            let (from, to) = (offset(&tokens[i]), offset(&tokens[end]) + 1);
            let blanked: String =
                script[from..to].chars().map(|c| if c == '\n' || c == '\r' { c } else { ' ' }).collect();
            let mut replacement = String::from("PRINT 0;");
            replacement.push_str(blanked.get(replacement.len()..).unwrap_or(""));
            if replacement.len() == to - from {
                out.replace_range(from..to, &replacement);
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// ERROR and MISSING nodes, reported at the innermost one.
fn syntax_errors(node: Node<'_>, source: &str, problems: &mut Vec<Problem>) {
    if !node.has_error() {
        return;
    }
    if node.is_missing() {
        problems.push(at(node, format!("syntax error: `{}` is missing here", node.kind())));
        return;
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    let inner = children.iter().any(|c| c.has_error());
    if node.is_error() && !inner {
        let text: String = source[node.byte_range()].split_whitespace().collect::<Vec<_>>().join(" ");
        let shown: String = text.chars().take(60).collect();
        problems.push(at(node, format!("syntax error near `{shown}`")));
    }
    for child in children {
        syntax_errors(child, source, problems);
    }
}

/// Each batch holding a CREATE PROCEDURE (etc.) holds only that, and no such
/// CREATE contains another (what a missing `GO` looks like to the grammar).
fn batches(root: Node<'_>, problems: &mut Vec<Problem>) {
    let mut cursor = root.walk();
    for batch in root.children(&mut cursor).filter(|n| n.kind() == "batch") {
        let mut inner = batch.walk();
        let statements: Vec<Node<'_>> = batch.children(&mut inner).filter(|n| n.kind() == "statement").collect();
        for statement in &statements {
            let Some(create) = statement.child(0).filter(|c| ALONE_IN_BATCH.contains(&c.kind())) else { continue };
            if statements.len() > 1 {
                problems.push(at(
                    create,
                    format!("a {} must be alone in its batch: put `GO` before and after it", create.kind()),
                ));
            }
            if let Some(nested) = find_descendant(create, &|n| ALONE_IN_BATCH.contains(&n.kind())) {
                problems.push(at(nested, "a CREATE inside another CREATE: a `GO` is missing before it".to_string()));
            }
        }
    }
}

fn find_descendant<'t>(node: Node<'t>, wanted: &dyn Fn(Node<'t>) -> bool) -> Option<Node<'t>> {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if wanted(child) {
            return Some(child);
        }
        if let Some(found) = find_descendant(child, wanted) {
            return Some(found);
        }
    }
    None
}

fn each_node<'t>(node: Node<'t>, f: &mut dyn FnMut(Node<'t>)) {
    f(node);
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        each_node(child, f);
    }
}

/// A procedure parameter's default must be a literal, a negative number or NULL.
fn constant_defaults(root: Node<'_>, source: &str, problems: &mut Vec<Problem>) {
    each_node(root, &mut |node| {
        if node.kind() != "create_procedure" {
            return;
        }
        let mut cursor = node.walk();
        let Some(arguments) = node.children(&mut cursor).find(|c| c.kind() == "function_arguments") else { return };
        let mut cursor = arguments.walk();
        for argument in arguments.children(&mut cursor).filter(|c| c.kind() == "function_argument") {
            let mut inner = argument.walk();
            let parts: Vec<Node<'_>> = argument.children(&mut inner).collect();
            let Some(equals) = parts.iter().position(|p| p.kind() == "=") else { continue };
            let Some(default) = parts.get(equals + 1) else { continue };
            let constant = match default.kind() {
                "literal" => true,
                "unary_expression" => default.child(1).is_some_and(|c| c.kind() == "literal"),
                _ => false,
            };
            if !constant {
                let name = parts.first().map_or("", |p| &source[p.byte_range()]);
                problems.push(at(
                    *default,
                    format!("the default of {name} must be a constant or NULL (SQL Server refuses expressions there)"),
                ));
            }
        }
    });
}

/// A MERGE statement must end with `;`.
fn merge_terminated(root: Node<'_>, problems: &mut Vec<Problem>) {
    each_node(root, &mut |node| {
        if node.kind() == "merge"
            && let Some(statement) = node.parent().filter(|p| p.kind() == "statement")
            && statement.next_sibling().is_none_or(|s| s.kind() != ";")
        {
            problems.push(at(node, "end a MERGE statement with `;`".to_string()));
        }
    });
}

/// Every `@@name` is one SQL Server knows.
fn system_functions(tokens: &[Token<'_>], problems: &mut Vec<Problem>) {
    for token in tokens.iter().filter(|t| t.kind == Kind::SystemFunction) {
        let upper = token.text.to_ascii_uppercase();
        if !SYSTEM_FUNCTIONS.contains(&upper.as_str()) {
            problems.push(at_token(token, format!("`{}` is not a SQL Server system function", token.text)));
        }
    }
}

/// `THROW` and a CTE's `WITH` must follow a `;`, the start of a block or batch.
fn terminated_before(tokens: &[Token<'_>], problems: &mut Vec<Problem>) {
    for (i, token) in tokens.iter().enumerate() {
        let what = if token.is_word("THROW") {
            "THROW"
        } else if token.is_word("WITH") && starts_cte(&tokens[i + 1..]) {
            "a common table expression (WITH … AS)"
        } else {
            continue;
        };
        let previous = i.checked_sub(1).map(|p| &tokens[p]);
        let ok = match previous {
            None => true,
            Some(p) if p.is_symbol(';') || p.is_word("BEGIN") || p.is_word("GO") => true,
            // BEGIN TRY / BEGIN CATCH open a block too.
            Some(p) if p.is_word("TRY") || p.is_word("CATCH") => {
                i.checked_sub(2).is_some_and(|q| tokens[q].is_word("BEGIN"))
            }
            Some(_) => false,
        };
        if !ok {
            problems.push(at_token(token, format!("end the statement before {what} with `;`")));
        }
    }
}

/// After `WITH`: `name [(columns)] AS (`.
fn starts_cte(rest: &[Token<'_>]) -> bool {
    let mut i = 0;
    if !rest.first().is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedName)) {
        return false;
    }
    i += 1;
    if rest.get(i).is_some_and(|t| t.is_symbol('(')) {
        match rest[i..].iter().position(|t| t.is_symbol(')')) {
            Some(close) => i += close + 1,
            None => return false,
        }
    }
    rest.get(i).is_some_and(|t| t.is_word("AS")) && rest.get(i + 1).is_some_and(|t| t.is_symbol('('))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(script: &str) -> Vec<String> {
        check(script).into_iter().map(|p| p.to_string()).collect()
    }

    const VALID: &str = "SET NOCOUNT ON;
GO
CREATE OR ALTER PROCEDURE dbo.p
    @a NVARCHAR(4000) = N'login', -- comment with @@NOPE
    @b INT = -1,
    @c BIT = NULL
AS
BEGIN
    IF @@TRANCOUNT > 0
    BEGIN
        THROW 50601, N'in a transaction', 1;
    END;
    WITH x AS (SELECT 1 AS n) SELECT n FROM x;
    BEGIN TRY
        SELECT 1;
    END TRY
    BEGIN CATCH
        THROW;
    END CATCH;
END;
GO
ADD SIGNATURE TO dbo.p BY CERTIFICATE c
    WITH PASSWORD = 'x';
GO
CREATE USER u FROM CERTIFICATE c;
GO
";

    #[test]
    fn a_valid_script_passes() {
        assert_eq!(messages(VALID), Vec::<String>::new());
    }

    #[test]
    fn each_rule_catches_its_mistake() {
        let cases: &[(&str, &str)] = &[
            ("SELECT (1;\n", "syntax error"),
            ("CRAETE TABLE t (a INT);\n", "syntax error"),
            ("SELECT @@TRANCOUT;\n", "`@@TRANCOUT` is not a SQL Server system function"),
            ("SELECT 1;\nCREATE PROCEDURE dbo.p AS SELECT 1;\nGO\n", "alone in its batch"),
            ("CREATE PROCEDURE dbo.p AS SELECT 1;\nCREATE PROCEDURE dbo.q AS SELECT 2;\nGO\n", "a `GO` is missing"),
            ("CREATE PROCEDURE dbo.p @a DATETIME2 = GETDATE() AS SELECT @a;\nGO\n", "must be a constant"),
            ("BEGIN\nSELECT 1\nTHROW 50000, N'x', 1;\nEND;\n", "before THROW"),
            ("SELECT 1\nWITH x AS (SELECT 1 AS n) SELECT n FROM x;\n", "before a common table expression"),
            ("ADD SIGNATURE TO dbo.p BY CERTIFICATE c WITH PASSWORD = 'x'\nGO\n", "end this statement with `;`"),
        ];
        for (script, expected) in cases {
            let found = messages(script);
            assert!(found.iter().any(|m| m.contains(expected)), "{script:?} should report {expected:?}: {found:?}");
        }
    }

    #[test]
    fn problems_point_at_the_right_line() {
        let script = "SELECT 1;\nSELECT 2;\nSELECT @@NOPE;\n";
        let problems = check(script);
        assert_eq!((problems[0].line, problems[0].column), (3, 8), "{problems:?}");
        // Blanked statements keep the lines after them where they were.
        let script = "ADD SIGNATURE TO dbo.p\n BY CERTIFICATE c;\nSELECT @@NOPE;\n";
        assert_eq!(check(script)[0].line, 3);
    }
}

/// A procedure as a script defines it: what the contract test compares with the
/// catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureDefinition {
    /// The name without schema, e.g. `SLAM_setup_jwt`.
    pub name: String,
    /// The schema, e.g. `dbo`.
    pub schema: String,
    /// Parameters in order.
    pub params: Vec<ParameterDefinition>,
    /// The whole `CREATE … PROCEDURE` text.
    pub text: String,
}

/// One parameter of a [`ProcedureDefinition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDefinition {
    /// With `@`.
    pub name: String,
    /// As written, upper-cased, e.g. `NVARCHAR(4000)`.
    pub ty: String,
    /// The default as written, or `None` (required).
    pub default: Option<String>,
}

/// Every procedure `script` creates, as the grammar reads it.
pub fn procedures(script: &str) -> Vec<ProcedureDefinition> {
    let mut problems = Vec::new();
    let prepared = blank_unparsed_statements(script, &mut problems);
    let mut parser = Parser::new();
    if parser.set_language(&tree_sitter_mssql::LANGUAGE.into()).is_err() {
        return Vec::new();
    }
    let Some(tree) = parser.parse(&prepared, None) else { return Vec::new() };
    let text = |n: Node<'_>| prepared[n.byte_range()].to_string();
    let mut found = Vec::new();
    each_node(tree.root_node(), &mut |node| {
        if node.kind() != "create_procedure" {
            return;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        let Some(reference) = children.iter().find(|c| c.kind() == "object_reference") else { return };
        let mut inner = reference.walk();
        let parts: Vec<String> =
            reference.children(&mut inner).filter(|c| c.kind() == "identifier").map(&text).collect();
        let (schema, name) = match parts.as_slice() {
            [schema, name] => (schema.clone(), name.clone()),
            [name] => ("dbo".to_string(), name.clone()),
            _ => return,
        };
        let mut params = Vec::new();
        if let Some(arguments) = children.iter().find(|c| c.kind() == "function_arguments") {
            let mut cursor = arguments.walk();
            for argument in arguments.children(&mut cursor).filter(|c| c.kind() == "function_argument") {
                let mut inner = argument.walk();
                let parts: Vec<Node<'_>> = argument.children(&mut inner).collect();
                let equals = parts.iter().position(|p| p.kind() == "=");
                let ty_end = equals.unwrap_or(parts.len());
                let ty: Vec<String> = parts.get(1..ty_end).unwrap_or_default().iter().map(|p| text(*p)).collect();
                params.push(ParameterDefinition {
                    name: parts.first().map(|p| text(*p)).unwrap_or_default(),
                    ty: ty.join(" ").to_ascii_uppercase().replace(' ', ""),
                    default: equals.and_then(|e| parts.get(e + 1)).map(|d| text(*d)),
                });
            }
        }
        found.push(ProcedureDefinition { name, schema, params, text: text(node) });
    });
    found
}

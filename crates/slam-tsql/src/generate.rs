//! The SLAM procedures, written from the catalogue.
//!
//! Every procedure does the same five things: check its own parameters (collecting
//! every problem), refuse an open transaction if it changes anything, build the
//! request, call `master.dbo.xp_slam`, and `THROW` what comes back. Written by hand,
//! nine copies of that would drift from each other and from the catalogue; written
//! from [`slam_protocol::catalogue`], a new parameter is one edit there. The output
//! is committed in `sql/slam-install.sql` between markers, where a DBA reads it like
//! any other script, and a test fails when it is stale (`SLAM_BLESS=1 cargo test -p
//! slam-tsql` rewrites it). `SLAM_help` is generated the same way.

use slam_protocol::catalogue::{OPERATIONS, Operation, Param, ParamDefault, ParamType};
use slam_protocol::{ErrorCode, PROTOCOL_VERSION};
use std::fmt::Write as _;

/// A part of a script between two marker lines, written by this module.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The line before the generated text.
    pub begin: &'static str,
    /// The line after it.
    pub end: &'static str,
}

/// The procedures of `sql/slam-install.sql`: see [`generated_block`].
pub const PROCEDURES: Section = Section {
    begin: "-- <generated from slam_protocol::catalogue: edit the catalogue, then SLAM_BLESS=1 cargo test -p slam-tsql>",
    end: "-- </generated>",
};

/// The names of the SLAM procedures, in the security batch of `sql/slam-install.sql`
/// and in `sql/slam-uninstall.sql`: see [`procedure_list_block`].
pub const PROCEDURE_LIST: Section = Section {
    begin: "-- <generated list of the SLAM procedures: SLAM_BLESS=1 cargo test -p slam-tsql>",
    end: "-- </generated list>",
};

/// Which files hold which generated sections, and what each must hold.
pub fn sections() -> [(&'static str, Section, String); 3] {
    [
        ("slam-install.sql", PROCEDURES, generated_block()),
        ("slam-install.sql", PROCEDURE_LIST, procedure_list_block()),
        ("slam-uninstall.sql", PROCEDURE_LIST, procedure_list_block()),
    ]
}

/// The procedure every request goes through.
pub const XP: &str = "master.dbo.xp_slam";

/// A T-SQL Unicode literal of `text`.
pub fn literal(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

/// The operations that have a T-SQL procedure, in catalogue order.
pub fn procedures() -> impl Iterator<Item = (&'static Operation, &'static str)> {
    OPERATIONS.iter().filter_map(|op| op.procedure.map(|name| (op, name)))
}

/// Everything between the [`PROCEDURES`] markers: each procedure in its own batch,
/// then `SLAM_help`.
pub fn generated_block() -> String {
    let mut out = String::new();
    for (op, name) in procedures() {
        out.push_str(&procedure(op, name));
        out.push_str("GO\n\n");
    }
    out.push_str(&help_procedure());
    out.push_str("GO\n");
    out
}

/// Everything between the [`PROCEDURE_LIST`] markers: the exact names SLAM writes,
/// and whether each calls the XP and so is signed. The install script signs and
/// grants only these (a pattern such as `SLAM_%` would also sign a procedure someone
/// else created under that name, letting it call `xp_slam` for any database); the
/// uninstall script drops only these.
pub fn procedure_list_block() -> String {
    let mut rows: Vec<String> = procedures().map(|(_, name)| format!("    ({}, 1)", literal(name))).collect();
    rows.push(format!("    ({}, 0)", literal("SLAM_help")));
    format!("INSERT INTO @slam_procedures (name, is_signed)\nVALUES\n{};\n", rows.join(",\n"))
}

/// `script` with `section`'s text replaced by `block`; `None` without its markers.
pub fn with_block(script: &str, section: Section, block: &str) -> Option<String> {
    let (start, end) = block_range(script, section)?;
    Some(format!("{}{block}{}", &script[..start], &script[end..]))
}

/// The text of `section` currently in `script`.
pub fn current_block(script: &str, section: Section) -> Option<&str> {
    let (start, end) = block_range(script, section)?;
    Some(&script[start..end])
}

fn block_range(script: &str, section: Section) -> Option<(usize, usize)> {
    let start = script.find(section.begin)? + section.begin.len();
    let start = start + script[start..].find('\n')? + 1;
    let end = start + script[start..].find(section.end)?;
    Some((start, end))
}

fn param_comment(p: &Param) -> String {
    let secret = if p.secret { " (secret: never logged, echoed or returned)" } else { "" };
    let limit = match p.ty {
        ParamType::Text { max_chars } => format!(" [at most {max_chars} characters]"),
        _ => String::new(),
    };
    format!("{}{secret}{limit}", p.description)
}

/// One procedure.
pub fn procedure(op: &Operation, name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "-- {name}: {}.", op.description);
    let _ = writeln!(s, "CREATE OR ALTER PROCEDURE dbo.{name}");
    for (i, p) in op.params.iter().enumerate() {
        let default = p.default.sql().map(|d| format!(" = {d}")).unwrap_or_default();
        let comma = if i + 1 < op.params.len() { "," } else { "" };
        let _ = writeln!(s, "    {} {}{default}{comma} -- {}", p.sql_name(), p.ty.sql(), param_comment(p));
    }
    s.push_str("AS\nBEGIN\n    SET NOCOUNT ON;\n    SET XACT_ABORT ON;\n\n");

    // 1. Validation: every problem collected, then one THROW.
    s.push_str(
        "    -- Every problem is collected first, so one run shows them all.\n    DECLARE @problems TABLE (\n        \
         id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,\n        number INT NOT NULL,\n        message NVARCHAR(1000) \
         NOT NULL\n    );\n",
    );
    for p in op.params.iter().filter(|p| p.default == ParamDefault::Required) {
        let message = format!("{} is required: {}.", p.sql_name(), p.description);
        let blank = match p.ty {
            ParamType::Text { .. } => format!(" OR LTRIM(RTRIM({})) = N''", p.sql_name()),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "    IF {name} IS NULL{blank}\n        INSERT INTO @problems (number, message) VALUES ({}, {});",
            ErrorCode::TsqlParametersInvalid.number(),
            literal(&message),
            name = p.sql_name(),
        );
    }
    if op.changes_state {
        let message = format!(
            "{name} cannot run inside a transaction: SLAM's worker writes through its own connection, and would \
             wait on this transaction's locks while this session waits on it, a deadlock SQL Server cannot detect. \
             COMMIT or ROLLBACK first. @@TRANCOUNT = "
        );
        let _ = writeln!(
            s,
            "    -- The worker writes through its own connection: inside a transaction this session would wait on\n    \
             -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.\n    \
             IF @@TRANCOUNT > 0\n        INSERT INTO @problems (number, message)\n        VALUES ({}, {} + \
             CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');",
            ErrorCode::TsqlInTransaction.number(),
            literal(&message),
        );
    }
    let _ = writeln!(
        s,
        "    IF EXISTS (SELECT 1 FROM @problems)\n    BEGIN\n        DECLARE @problem_number INT = (SELECT \
         MAX(number) FROM @problems);\n        DECLARE @problem_text NVARCHAR(2048) = {};\n        SELECT \
         @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;\n        \
         THROW @problem_number, @problem_text, 1;\n    END;\n",
        literal(&format!("{name}: nothing was done:"))
    );

    // 2. The request.
    let args = if op.params.is_empty() {
        "JSON_QUERY(N'{}')".to_string()
    } else {
        let list: Vec<String> = op.params.iter().map(|p| format!("{} AS [{}]", p.sql_name(), p.name)).collect();
        format!("JSON_QUERY((SELECT {} FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES))", list.join(", "))
    };
    let _ = writeln!(
        s,
        "    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.\n    \
         DECLARE @request NVARCHAR(MAX) = (\n        SELECT\n            {PROTOCOL_VERSION} AS [version],\n            \
         CONVERT(NVARCHAR(36), NEWID()) AS [id],\n            {} AS [operation],\n            {args} AS [args],\n            \
         JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], \
         @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]\n        \
         FOR JSON PATH, WITHOUT_ARRAY_WRAPPER\n    );\n",
        literal(op.name)
    );

    // 3. The call, and 4. what comes back.
    let not_installed =
        format!("{XP} is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.");
    let not_permitted = format!(
        "{name} may not run {XP}: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run \
         sql/slam-install.sql in this database."
    );
    let _ = writeln!(
        s,
        "    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);\n    BEGIN TRY\n        EXEC @rc = \
         {XP} @request, @error_number OUTPUT, @error_message OUTPUT;\n    END TRY\n    BEGIN CATCH\n        SELECT \
         @rc = -1,\n            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN {nf} WHEN 229 THEN {np} ELSE {xf} \
         END,\n            @error_message = CASE ERROR_NUMBER()\n                WHEN 2812 THEN {}\n                WHEN \
         229 THEN {}\n                ELSE {} + ERROR_MESSAGE() END;\n    END CATCH;\n    -- The XP's return code and \
         OUTPUT parameters decide, never its messages: THROW at severity 16\n    -- fails a SQL Agent step and is \
         caught by TRY...CATCH.\n    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0\n    BEGIN\n        DECLARE @number \
         INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE {xf} END;\n        DECLARE @text \
         NVARCHAR(2048) = LEFT(ISNULL(@error_message, {} + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);\n        THROW \
         @number, @text, 1;\n    END;\n    RETURN 0;\nEND;",
        literal(&not_installed),
        literal(&not_permitted),
        literal(&format!("{name}: calling {XP} failed: ")),
        literal(&format!("{XP} failed without a message; return code ")),
        nf = ErrorCode::XpNotInstalled.number(),
        np = ErrorCode::XpNotPermitted.number(),
        xf = ErrorCode::XpFailed.number(),
    );
    s
}

/// `SLAM_help`: every procedure and parameter, from the catalogue, as one result
/// set (usable with `INSERT ... EXEC`), each row carrying the installed version.
pub fn help_procedure() -> String {
    let mut rows = Vec::new();
    let mut push = |order: usize, position: usize, procedure: &str, p: Option<&Param>, description: &str| {
        let cell = |v: Option<String>| v.unwrap_or_else(|| "NULL".to_string());
        let (name, ty, default, required, secret) = match p {
            Some(p) => (
                Some(literal(&p.sql_name())),
                Some(literal(&p.ty.sql())),
                Some(literal(&p.default.sql().unwrap_or_else(|| "(required)".to_string()))),
                u8::from(p.default == ParamDefault::Required),
                u8::from(p.secret),
            ),
            None => (None, None, None, 0, 0),
        };
        rows.push(format!(
            "        ({order}, {position}, {}, {}, {}, {}, {required}, {secret}, {})",
            literal(procedure),
            cell(name),
            cell(ty),
            cell(default),
            literal(description)
        ));
    };
    let mut order = 0;
    for (op, name) in procedures() {
        order += 1;
        push(order, 0, name, None, op.description);
        for (i, p) in op.params.iter().enumerate() {
            push(order, i + 1, name, Some(p), &param_comment(p));
        }
    }
    push(order + 1, 0, "SLAM_help", None, "Lists every SLAM procedure and parameter, with the installed version");
    format!(
        "-- SLAM_help: every SLAM procedure and parameter, with the installed version.\nCREATE OR ALTER PROCEDURE \
         dbo.SLAM_help\nAS\nBEGIN\n    SET NOCOUNT ON;\n    SELECT\n        help.procedure_name,\n        \
         help.parameter_name,\n        help.parameter_type,\n        help.default_value,\n        \
         CONVERT(BIT, help.is_required) AS is_required,\n        CONVERT(BIT, help.is_secret) AS is_secret,\n        \
         help.description,\n        {} AS slam_version\n    FROM (VALUES\n{}\n    ) AS help (procedure_order, \
         parameter_order, procedure_name, parameter_name, parameter_type, default_value, is_required, is_secret, \
         description)\n    ORDER BY help.procedure_order, help.parameter_order;\n    RETURN 0;\nEND;\n",
        literal(&format!("{} (protocol {PROTOCOL_VERSION})", env!("CARGO_PKG_VERSION"))),
        rows.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_procedures_pass_the_gate() {
        let block = generated_block();
        let problems = crate::check(&block);
        assert!(problems.is_empty(), "{problems:?}\n{block}");
    }

    #[test]
    fn quotes_are_doubled_and_markers_round_trip() {
        assert_eq!(literal("it's"), "N'it''s'");
        let (b, e) = (PROCEDURES.begin, PROCEDURES.end);
        let (lb, le) = (PROCEDURE_LIST.begin, PROCEDURE_LIST.end);
        let script = format!("A\n{b}\nold\n{e}\nB\n{lb}\nold list\n{le}\nC\n");
        let replaced = with_block(&script, PROCEDURES, "new\n").unwrap();
        let replaced = with_block(&replaced, PROCEDURE_LIST, "new list\n").unwrap();
        assert_eq!(replaced, format!("A\n{b}\nnew\n{e}\nB\n{lb}\nnew list\n{le}\nC\n"));
        assert_eq!(current_block(&replaced, PROCEDURES), Some("new\n"));
        assert_eq!(current_block(&replaced, PROCEDURE_LIST), Some("new list\n"));
    }
}

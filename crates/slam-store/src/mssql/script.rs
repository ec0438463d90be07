//! Runs SLAM's install scripts on SQL Server, batch by batch, for `slam install-sql`.
//!
//! The scripts are written for SSMS and sqlcmd; `slam_tsql::script` splits them
//! the way sqlcmd does, and this module sends each batch on one session and stops
//! at the first error, naming the script line it came from (SQL Server numbers
//! lines from the start of the batch). After a script, a report query says what
//! is now in place, because tiberius does not hand `PRINT` messages to callers.

use super::{SqlServerSettings, connect_tcp};
use std::time::Duration;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// One batch of a script, where it starts, and how many times to run it (`GO n`).
#[derive(Debug, Clone, Copy)]
pub struct ScriptBatch<'a> {
    /// The batch's text.
    pub text: &'a str,
    /// Its first line in the script (1-based).
    pub first_line: usize,
    /// How many times it runs.
    pub repeat: u32,
}

/// Why a script stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// No session: network, TLS, or the login refused.
    #[error("cannot connect to {server} (database {database}): {source}")]
    Connect {
        /// The server.
        server: String,
        /// The database asked for.
        database: String,
        /// Why.
        #[source]
        source: crate::BackendError,
    },
    /// SQL Server refused a batch; nothing after it ran.
    #[error("line {line}: Msg {number}, Level {class}, State {state}: {message}")]
    Refused {
        /// The script line the error points at.
        line: usize,
        /// SQL Server's error number.
        number: u32,
        /// Its severity.
        class: u8,
        /// Its state.
        state: u8,
        /// Its message.
        message: String,
    },
    /// The session failed while a batch ran (connection lost, timeout).
    #[error("the batch starting at line {line} did not finish: {source}")]
    Broken {
        /// The batch's first line.
        line: usize,
        /// Why.
        #[source]
        source: tiberius::error::Error,
    },
}

/// What the report query of a script returned: `(item, value)` pairs.
pub type Report = Vec<(String, String)>;

/// Runs `batches` in `database` on one session, calling `progress(done, total)`
/// after each, then runs `report` (a query of two `NVARCHAR` columns, given the
/// worker's account as `@P1`) and returns its rows. Statements wait for locks as long as they must (no `LOCK_TIMEOUT`):
/// an install is run by a person who can see it wait; the command timeout still
/// bounds each batch.
pub fn run_script(
    settings: &SqlServerSettings,
    database: &str,
    batches: &[ScriptBatch<'_>],
    report: &str,
    worker_account: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, ScriptError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        ScriptError::Connect { server: settings.server.to_string(), database: database.into(), source: Box::new(e) }
    })?;
    runtime.block_on(async {
        let connect_error = |source: crate::BackendError| ScriptError::Connect {
            server: settings.server.to_string(),
            database: database.into(),
            source,
        };
        let config = settings.tiberius_config(Some(database));
        let tcp = tokio::time::timeout(settings.connect_timeout, connect_tcp(&config))
            .await
            .map_err(|_| connect_error(format!("no answer within {:?}", settings.connect_timeout).into()))?
            .map_err(|e| connect_error(Box::new(e)))?;
        let mut client =
            tiberius::Client::connect(config, tcp.compat_write()).await.map_err(|e| connect_error(Box::new(e)))?;
        for (index, batch) in batches.iter().enumerate() {
            for _ in 0..batch.repeat.max(1) {
                let result = match client.simple_query(batch.text).await {
                    Ok(stream) => stream.into_results().await.map(drop),
                    Err(e) => Err(e),
                };
                result.map_err(|e| batch_error(batch, e))?;
            }
            progress(index + 1, batches.len());
        }
        let line = batches.last().map_or(1, |b| b.first_line);
        let rows = client
            .query(report, &[&worker_account])
            .await
            .map_err(|source| ScriptError::Broken { line, source })?
            .into_first_result()
            .await
            .map_err(|source| ScriptError::Broken { line, source })?;
        Ok(rows
            .iter()
            .map(|row| {
                let item = row.get::<&str, _>(0).unwrap_or("").to_string();
                let value = row.get::<&str, _>(1).unwrap_or("").to_string();
                (item, value)
            })
            .collect())
    })
}

fn batch_error(batch: &ScriptBatch<'_>, error: tiberius::error::Error) -> ScriptError {
    match error {
        tiberius::error::Error::Server(e) => ScriptError::Refused {
            line: batch.first_line + usize::try_from(e.line()).unwrap_or(1).max(1) - 1,
            number: e.code(),
            class: e.class(),
            state: e.state(),
            message: e.message().to_string(),
        },
        other => ScriptError::Broken { line: batch.first_line, source: other },
    }
}

/// After `slam-master.sql`: the extended procedure and the worker's login.
pub const MASTER_REPORT: &str = "SELECT N'master.dbo.xp_slam' AS Item, COALESCE((SELECT TOP (1) dll_name FROM \
    sys.extended_procedures WHERE name = N'xp_slam'), N'NOT registered') AS Value \
    UNION ALL SELECT N'worker login ' + @P1, CASE WHEN @P1 = N'' THEN N'not made (SQL authentication)' \
    WHEN SUSER_ID(@P1) IS NULL THEN N'missing' ELSE N'present' END;";

/// After `slam-install.sql`: the tables, procedures (and how many are signed) and
/// the worker's database user.
pub const DATABASE_REPORT: &str = "SELECT N'tables' AS Item, CAST(COUNT(*) AS NVARCHAR(20)) AS Value FROM sys.tables \
    WHERE name IN (N'SLAM_Settings', N'SLAM_Connections', N'SLAM_Log') \
    UNION ALL SELECT N'procedures', CAST(COUNT(*) AS NVARCHAR(20)) FROM sys.procedures WHERE name LIKE N'SLAM[_]%' \
    UNION ALL SELECT N'signed procedures', CAST(COUNT(DISTINCT p.object_id) AS NVARCHAR(20)) FROM sys.procedures AS p \
    JOIN sys.crypt_properties AS c ON c.major_id = p.object_id WHERE p.name LIKE N'SLAM[_]%' \
    UNION ALL SELECT N'worker user', COALESCE((SELECT TOP (1) name FROM sys.database_principals \
    WHERE name = N'SLAM_worker'), N'none');";

/// A script's wait for its batches, as sqlcmd's default (no limit) would be too
/// long for a stuck install: a batch may take this long.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_queries_pass_the_t_sql_gate() {
        for report in [MASTER_REPORT, DATABASE_REPORT] {
            let problems = slam_tsql::check(report);
            assert!(problems.is_empty(), "{problems:?}\n{report}");
        }
    }
}

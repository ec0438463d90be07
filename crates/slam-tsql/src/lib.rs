//! The T-SQL side of SLAM, as far as Rust can hold it.
//!
//! No SQL Server runs where SLAM is built and tested, so two things keep the
//! scripts in `sql/` honest:
//! - [`check`] parses a script with a real T-SQL grammar and adds the checks a
//!   grammar cannot make (see [`gate`]); every script in `sql/`, and every statement
//!   the SQL Server store will send, passes it in `cargo test`;
//! - [`generate`] writes the SLAM procedures and `SLAM_help` from the one catalogue
//!   of operations, so the T-SQL cannot drift from what the worker dispatches.
//!
//! [`script`] cuts a script into batches as sqlcmd does (`GO`, `$(NAME)`,
//! `:setvar`), for `slam install-sql`, which sends them one at a time.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod gate;
pub mod generate;
mod lexer;
pub mod script;

pub use gate::{ParameterDefinition, Problem, ProcedureDefinition, check, procedures};

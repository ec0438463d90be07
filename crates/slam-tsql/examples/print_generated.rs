//! Prints the generated procedures (what `sql/slam-install.sql` holds between its markers).
fn main() {
    print!("{}", slam_tsql::generate::generated_block());
}

//! Human output helpers shared by the commands.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};

/// The house style: a header underlined, columns aligned, no other lines.
const STYLE: TableStyle = NOTHING.header_separator(LineStyle::none().fill('─').junction(' '));

/// A table in the house style, with a header row.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_style(STYLE).set_content_arrangement(ContentArrangement::Dynamic).set_header(header);
    table
}

/// Writes a line to stdout. A closed pipe (`cumulo ... | head`) ends the process quietly, as
/// Unix tools do, instead of panicking as `println!` would.
pub fn say_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n"))
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` that survives a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => { $crate::render::say_line(format_args!($($arg)*)) };
}
pub(crate) use say;

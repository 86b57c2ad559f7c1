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

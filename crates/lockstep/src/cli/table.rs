//! Plain-text tables and field lists for people.

/// Columns padded to their widest cell, two spaces apart, with a header row.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    /// The table as text, or `empty` when it has no rows.
    pub fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }

        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self, empty: &str) {
        print!("{}", self.render(empty));
    }
}

/// Text from the server as it may safely reach a terminal: control characters (escape
/// sequences, carriage returns, line breaks) are shown as `\u{…}` instead of acting.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// `Label:  value` lines, values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!(
            "{key:<width$}  {value}",
            value = printable(value),
            key = format!("{key}:"),
            width = width + 1
        );
    }
}

/// An optional value as table text.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_on_the_widest_cell_including_wide_characters() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["shop".into(), "Shop".into()]);
        table.row(vec!["café-prod".into(), "Café".into()]);
        assert_eq!(
            table.render("none"),
            "ID         NAME\nshop       Shop\ncafé-prod  Café\n"
        );
    }

    #[test]
    fn control_characters_from_the_server_never_reach_the_terminal_raw() {
        let shown = printable("\u{1b}[31mred\r\nfake line");
        assert!(!shown.chars().any(char::is_control));
        assert!(shown.contains("red") && shown.contains("fake line"));
        assert_eq!(printable("plain ü 🚀"), "plain ü 🚀");
    }

    #[test]
    fn an_empty_table_prints_its_empty_message_instead_of_a_header() {
        assert_eq!(
            Table::new(&["ID"]).render("No instances."),
            "No instances.\n"
        );
    }
}

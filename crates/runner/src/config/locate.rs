//! Where a key is in the config file: the full key as an operator writes it
//! and its line, found by walking the file's spanned TOML tree.

use super::PathPart;

/// Line number (1-based) of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Line numbers of many offsets in one text: the newlines found once, each
/// offset then a binary search, so placing every `[[pipelines]]` entry of a
/// large file stays linear in its size (counting from the start each time
/// made validation quadratic).
pub struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        Self { newlines: text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(at, _)| at).collect() }
    }

    /// Line number (1-based) of a byte offset, as `line_of` gives it.
    pub fn line(&self, offset: usize) -> usize {
        self.newlines.partition_point(|newline| *newline < offset) + 1
    }
}

/// The full key of `path` as an operator writes it (`sources.shop.poll_interval`,
/// `pipelines.shop-to-crm.sink`; an array element without a name as `[N]`)
/// and the line it is on: the key's own line, or, for a key that is not in
/// the file (a missing one), the line of the table that should hold it.
pub fn locate(text: &str, path: &[PathPart]) -> (Option<String>, Option<usize>) {
    use toml::de::{DeTable, DeValue};
    if path.is_empty() {
        return (None, None);
    }
    let mut shown = String::new();
    let mut line = None;
    let root = DeTable::parse(text).ok();
    let mut table: Option<&DeTable<'_>> = root.as_ref().map(|root| root.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    for part in path {
        match part {
            PathPart::Key(key) => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push_str(key);
                let found = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref().as_ref() == key.as_str()));
                table = None;
                array = None;
                if let Some((spanned_key, value)) = found {
                    line = Some(line_of(text, spanned_key.span().start));
                    match value.get_ref() {
                        DeValue::Table(inner) => table = Some(inner),
                        DeValue::Array(items) => array = Some(&items[..]),
                        _ => {}
                    }
                }
            }
            PathPart::Index(index) => {
                let element = array.and_then(|items| items.get(*index));
                let name = element.and_then(|e| e.get_ref().as_table()).and_then(|t| {
                    t.iter().find(|(k, _)| k.get_ref().as_ref() == "name").and_then(|(_, v)| v.get_ref().as_str())
                });
                match name {
                    Some(name) => {
                        shown.push('.');
                        shown.push_str(name);
                    }
                    None => shown.push_str(&format!("[{index}]")),
                }
                table = element.and_then(|e| e.get_ref().as_table());
                array = None;
                if let Some(element) = element {
                    line = Some(line_of(text, element.span().start));
                }
            }
        }
    }
    (Some(shown), line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_agrees_with_counting() {
        let text = "a\nbb\n\nccc\n";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(index.line(offset), line_of(text, offset), "offset {offset}");
        }
    }
}

//! What an image id may be: the one check that the input, the inventory
//! and the listing all apply.

/// The longest id accepted. VOD ids are 32 hex characters; 64 leaves room
/// for other id schemes without letting a stray blob through.
pub const MAX_ID_LEN: usize = 64;

/// Checks one id. `Err` is the reason it is rejected.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty id".to_owned());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("longer than {MAX_ID_LEN} characters ({} bytes)", id.len()));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        let what = match c {
            ' ' => "a space".to_owned(),
            '\n' | '\r' => "a line break".to_owned(),
            c if c.is_control() => format!("a control character ({:?})", c),
            c => format!("{c:?}"),
        };
        return Err(format!("contains {what}; an id has only A-Z a-z 0-9 _ -"));
    }
    Ok(())
}
